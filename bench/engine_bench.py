"""Adaptive engine benchmark: Jalon vs catsim vs a replica of Pix's flash algorithm.

    python -m bench.engine_bench            # full run (5,000 simulees), ~6–8 min on 2 cores
    python -m bench.engine_bench --quick    # 1,000 simulees (or JALON_BENCH_QUICK=1)

Same reference bank (500 items, a ~ N(1.2, 0.25), b ~ N(0, 1), c ~ N(0.25, 0.02) for 3PL) and
the same simulees (θ ~ N(0, 1)) for every engine. Prints one table per measure, then the
issue's targets with PASS/MISS. Jalon's exposure-controlled configuration is `EXPOSED`
(priced exposure control, max exposure 0.25); progressive-restricted and restricted are
printed next to it for comparison.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench.common import arguments
from engine.calibration import calibrate
from engine.config import ContentRules, EngineConfig, Exposure, Stopping
from engine.pool import ItemPool
from engine.selection import ExposureLedger, top_k
from engine.session import Session, next_step
from engine.simulation import (
    SimulationResult,
    exposure_summary,
    reference_pool,
    simulate,
)

LENGTHS = (5, 10, 20, 30)
BANK_SEED = 20241
THETA_SEED = 7
SIM_SEED = 11
MAX_EXPOSURE = 0.25
#: Jalon's exposure-controlled configuration (what the targets with exposure control judge)
EXPOSED = Exposure.PRICED


@dataclass
class Run:
    name: str
    estimates: np.ndarray  # simulees × max length (NaN after a test ends)
    items: list[list[int]]
    seconds: float


def _pad(rows: list[list[float]], width: int) -> np.ndarray:
    out = np.full((len(rows), width), np.nan)
    for k, r in enumerate(rows):
        out[k, : len(r)] = r[:width]
    return out


def jalon_run(name: str, pool: ItemPool, thetas: np.ndarray, config: EngineConfig) -> Run:
    t = time.perf_counter()
    res: SimulationResult = simulate(pool, thetas, config, SIM_SEED)
    idx = [[pool.index[i] for i in test] for test in res.items]
    return Run(name, _pad(res.estimates, 30), idx, time.perf_counter() - t)


def pix_run(pool: ItemPool, thetas: np.ndarray, length: int = 30) -> Run:
    """Pix flash replica: 2PL EAP on 80 points from −9 step 18/80, N(last, 1.5) prior, step
    capped at ±0.5 (|θ| < 1) or ±50 % of |θ|, Fisher information, geometric top-5 p = 0.51."""
    rng = np.random.default_rng(SIM_SEED)
    samples = -9.0 + np.arange(80) * 18.0 / 80.0
    a, b = pool.a, pool.b
    est = np.full((thetas.size, length), np.nan)
    items: list[list[int]] = []
    t = time.perf_counter()
    for k, theta in enumerate(thetas):
        used = np.zeros(a.size, dtype=bool)
        loglik = np.zeros(80)
        capacity = 0.0
        seq: list[int] = []
        for step in range(length):
            p_cap = 1.0 / (1.0 + np.exp(-a * (capacity - b)))
            info = np.where(used, -np.inf, a * a * p_cap * (1 - p_cap))
            top = top_k(info, 5)
            w = 0.51 * 0.49 ** np.arange(top.size)
            i = int(top[rng.choice(top.size, p=w / w.sum())])
            used[i] = True
            seq.append(i)
            correct = rng.random() < 1.0 / (1.0 + np.exp(-a[i] * (theta - b[i])))
            p = 1.0 / (1.0 + np.exp(-a[i] * (samples - b[i])))
            loglik += np.log(p if correct else 1.0 - p)
            prior = np.exp(-0.5 * (samples - capacity) ** 2 / 1.5)
            post = np.exp(loglik - loglik.max()) * prior
            nxt = float(samples @ post / post.sum())
            gap = 0.5 if abs(capacity) < 1 else 0.5 * abs(capacity)
            capacity = min(max(nxt, capacity - gap), capacity + gap)
            est[k, step] = capacity
        items.append(seq)
    return Run("Pix replica", est, items, time.perf_counter() - t)


def catsim_run(
    name: str, pool: ItemPool, thetas: np.ndarray, r_max: float = 1.0, length: int = 30
) -> Run:
    """catsim 0.21: MaxInfoSelector(r_max) + NumericalSearchEstimator (MLE, Dodd's heuristic
    for constant patterns), exposure rates refreshed after each simulee as its Simulator does."""
    from catsim.estimation import NumericalSearchEstimator
    from catsim.item_bank import ItemBank
    from catsim.selection import MaxInfoSelector

    rng = np.random.default_rng(SIM_SEED)
    with contextlib.redirect_stdout(io.StringIO()):  # its validator prints an empty line
        bank = ItemBank(np.column_stack([pool.a, pool.b, pool.c, pool.d]))
    selector = MaxInfoSelector(r_max)
    estimator = NumericalSearchEstimator()
    counts = np.zeros(len(pool))
    est = np.full((thetas.size, length), np.nan)
    items: list[list[int]] = []
    t = time.perf_counter()
    for k, theta in enumerate(thetas):
        administered: list[int] = []
        answers: list[bool] = []
        th = 0.0
        for step in range(length):
            chosen = selector.select(item_bank=bank, administered_items=administered, est_theta=th)
            assert chosen is not None, "catsim ran out of items"
            i = int(chosen)
            p = pool.c[i] + (1 - pool.c[i]) / (1 + np.exp(-pool.a[i] * (theta - pool.b[i])))
            administered.append(i)
            answers.append(bool(rng.random() < p))
            th = float(
                estimator.estimate(
                    item_bank=bank,
                    administered_items=administered,
                    response_vector=answers,
                    est_theta=th,
                )
            )
            est[k, step] = th
        counts[administered] += 1
        bank.items[:, 4] = counts / (k + 1)
        items.append(administered)
    return Run(name, est, items, time.perf_counter() - t)


def _accuracy(run: Run, thetas: np.ndarray) -> list[str]:
    cells = []
    for length in LENGTHS:
        e = run.estimates[:, length - 1]
        ok = np.isfinite(e)
        err = e[ok] - thetas[ok]
        r = float(np.corrcoef(e[ok], thetas[ok])[0, 1])
        cells.append(f"{np.sqrt(np.mean(err**2)):.3f}/{np.mean(err):+.3f}/{r:.3f}")
    return cells


def _rare_share(items: list[list[int]], n_items: int, rate: float = 0.01) -> float:
    """Share of the bank served to fewer than `rate` of the tests (unused items included)."""
    counts = np.zeros(n_items)
    for test in items:
        counts[test] += 1
    return float(np.mean(counts < rate * max(len(items), 1)))


def _usage(run: Run, n_items: int, length: int = 20) -> str:
    first = [t[:length] for t in run.items]
    s = exposure_summary([[str(i) for i in t] for t in first], n_items)
    rare = _rare_share(first, n_items)
    return f"{s.max_rate:.3f}  {s.unused_share:6.1%}  {rare:6.1%}  {s.overlap:.3f}"


@dataclass
class Latency:
    label: str
    items: int
    p50: float  # µs
    p99: float  # µs
    start_p50: float = float("nan")  # Session construction (per test, or per stateless request)
    start_p99: float = float("nan")
    replay_p50: float = float("nan")  # next_step after 19 stored answers (stateless request)
    replay_p99: float = float("nan")


def _latency_configs() -> dict[str, EngineConfig]:
    return {
        "Jalon max-info (default)": EngineConfig(stopping=Stopping.fixed(30)),
        f"Jalon {EXPOSED.value} {MAX_EXPOSURE} (exposure-controlled)": EngineConfig(
            stopping=Stopping.fixed(30), exposure=EXPOSED, max_exposure=MAX_EXPOSURE
        ),
        f"Jalon progressive-restricted {MAX_EXPOSURE}": EngineConfig(
            stopping=Stopping.fixed(30),
            exposure=Exposure.PROGRESSIVE_RESTRICTED,
            max_exposure=MAX_EXPOSURE,
        ),
    }


def _latency(sizes: tuple[int, ...], quick: bool) -> list[Latency]:
    """select + update per answer (timed together with the simulee's answer draw, as since the
    first version of this bench), Session construction, and a stateless `next_step` replay."""
    rows: list[Latency] = []
    for n in sizes:
        pool = reference_pool(n, "2PL", np.random.default_rng(BANK_SEED))
        _ = pool.info_table, pool.index, pool.parameters  # built once per bank version, at load
        sessions = 300 if n > 10_000 else 1000  # 6,000–20,000 answers: a stable p99
        if quick:
            sessions //= 3
        for label, cfg in _latency_configs().items():
            rng = np.random.default_rng(1)
            ledger = ExposureLedger.empty(n)
            samples = []
            starts = []
            replays = []
            for _ in range(sessions):
                ledger.sessions += 1
                t0 = time.perf_counter_ns()
                s = Session(pool, cfg, rng, exposure=ledger, track_exposure=True)
                starts.append(time.perf_counter_ns() - t0)
                theta = rng.normal()
                for _ in range(20):
                    t0 = time.perf_counter_ns()
                    i = s.select_index()
                    assert i is not None
                    p = pool.answer_probability(i, theta)[1]
                    s.record_index(i, int(rng.random() < p))
                    samples.append(time.perf_counter_ns() - t0)
                answers = [(pool.ids[i], y) for i, y in zip(s.items, s.scores, strict=True)]
                t0 = time.perf_counter_ns()
                next_step(pool, answers[:19], cfg, np.random.default_rng(0), exposure=ledger)
                replays.append(time.perf_counter_ns() - t0)
            us, st, rp = (np.array(x) / 1e3 for x in (samples, starts, replays))
            rows.append(
                Latency(
                    label,
                    n,
                    float(np.percentile(us, 50)),
                    float(np.percentile(us, 99)),
                    float(np.percentile(st, 50)),
                    float(np.percentile(st, 99)),
                    float(np.percentile(rp, 50)),
                    float(np.percentile(rp, 99)),
                )
            )
        rows.append(_catsim_latency(pool, 20 if n > 10_000 else 100))
    return rows


def _catsim_latency(pool: ItemPool, calls: int) -> Latency:
    from catsim.item_bank import ItemBank
    from catsim.selection import MaxInfoSelector

    with contextlib.redirect_stdout(io.StringIO()):  # its validator prints an empty line
        bank = ItemBank(np.column_stack([pool.a, pool.b, pool.c, pool.d]))
    sel = MaxInfoSelector()
    rng = np.random.default_rng(2)
    samples = []
    for _ in range(calls):
        administered = [int(x) for x in rng.choice(len(pool), 10, replace=False)]
        t0 = time.perf_counter_ns()
        sel.select(item_bank=bank, administered_items=administered, est_theta=float(rng.normal()))
        samples.append(time.perf_counter_ns() - t0)
    us = np.array(samples) / 1e3
    return Latency(
        "catsim MaxInfo (selection alone)",
        len(pool),
        float(np.percentile(us, 50)),
        float(np.percentile(us, 99)),
    )


def _rmse(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.sqrt(np.mean((u - v) ** 2)))


@dataclass
class Calibration:
    lines: list[str]
    seconds: float
    girth_seconds: float
    rmse_a: float
    rmse_b: float
    girth_rmse_a: float
    girth_rmse_b: float
    lsat_da: float | None
    lsat_dd: float | None


def _calibration() -> Calibration:
    import girth

    out = []
    rng = np.random.default_rng(3)
    a = rng.normal(1.2, 0.25, 40)
    b = rng.normal(0.0, 1.0, 40)
    theta = rng.normal(0.0, 1.0, 5000)
    y = (rng.random((5000, 40)) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(float)
    t = time.perf_counter()
    res = calibrate(y)
    tj = time.perf_counter() - t
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = girth.twopl_mml(y.T.astype(int))
    tg = time.perf_counter() - t
    ra, rb = _rmse(res.a, a), _rmse(res.b, b)
    ga, gb = _rmse(g["Discrimination"], a), _rmse(g["Difficulty"], b)
    out.append(
        f"  {'Jalon MML-EM':<14} {tj:6.2f} s   RMSE a {ra:.4f}   b {rb:.4f}"
        f"   ({res.iterations} EM iterations)"
    )
    out.append(f"  {'girth 0.8':<14} {tg:6.2f} s   RMSE a {ga:.4f}   b {gb:.4f}")
    default = Path(__file__).resolve().parents[1] / "tests" / "engine" / "data" / "lsat7.csv"
    lsat = Path(os.environ.get("JALON_LSAT7", str(default)))
    data = np.loadtxt(lsat, delimiter=",", skiprows=1) if lsat.exists() else None
    da = dd = None
    if data is not None:
        ref_a = np.array([0.988, 1.081, 1.706, 0.765, 0.736])
        ref_d = np.array([1.856, 0.808, 1.804, 0.486, 1.855])
        r = calibrate(data[:, :5], weights=data[:, 5], tol=1e-6)
        da = float(np.max(np.abs(r.a - ref_a)))
        dd = float(np.max(np.abs(r.intercepts - ref_d)))
        out.append(f"  LSAT7 2PL vs mirt: max |Δa| {da:.4f}, max |Δd| {dd:.4f}")
    else:
        out.append(f"  LSAT7: {lsat} not found (set JALON_LSAT7)")
    return Calibration(out, tj, tg, ra, rb, ga, gb, da, dd)


@dataclass
class SeRun:
    name: str
    mean: float
    median: float
    reached: float
    rmse: float
    max_rate: float
    unused: float
    rare: float


def _se_run(pool: ItemPool, thetas: np.ndarray, config: EngineConfig, name: str) -> SeRun:
    res = simulate(pool, thetas, config, SIM_SEED)
    lengths = np.array([len(e) for e in res.estimates])
    final = np.array([e[-1] for e in res.estimates])
    reached = np.array([s[-1] < 0.3 for s in res.standard_errors])
    s = exposure_summary(res.items, len(pool))
    rare = _rare_share([[pool.index[i] for i in t] for t in res.items], len(pool))
    return SeRun(
        name,
        float(lengths.mean()),
        float(np.median(lengths)),
        float(reached.mean()),
        float(np.sqrt(np.mean((final - thetas) ** 2))),
        s.max_rate,
        s.unused_share,
        rare,
    )


def _at(run: Run, thetas: np.ndarray, length: int) -> tuple[float, float]:
    e = run.estimates[:, length - 1]
    ok = np.isfinite(e)
    err = e[ok] - thetas[ok]
    return float(np.sqrt(np.mean(err**2))), float(np.mean(err))


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    args = arguments(
        __doc__,
        "1,000 simulees instead of 5,000",
        lambda parser: parser.add_argument("--simulees", type=int, default=None),
    )
    quick = args.quick
    n_sim = args.simulees or (1000 if quick else 5000)
    thetas = np.random.default_rng(THETA_SEED).normal(0.0, 1.0, n_sim)
    pool2 = reference_pool(500, "2PL", np.random.default_rng(BANK_SEED))
    pool3 = reference_pool(500, "3PL", np.random.default_rng(BANK_SEED))
    free = ContentRules.off()
    fixed = Stopping.fixed(30)
    plain = EngineConfig(rules=free, stopping=fixed)
    exposed = replace(plain, exposure=EXPOSED, max_exposure=MAX_EXPOSURE)
    progressive = replace(exposed, exposure=Exposure.PROGRESSIVE_RESTRICTED)
    t0 = time.perf_counter()
    print(f"Jalon adaptive engine benchmark — {n_sim} simulees θ ~ N(0, 1), bank of 500 items")
    print("cells: RMSE/bias/correlation after 5, 10, 20, 30 items; exposure figures over the")
    print("first 20 items (max exposure rate, unused items, items served to < 1 % of tests,")
    print("mean test overlap)\n")
    jalon_2pl = jalon_run("Jalon EAP max-info", pool2, thetas, plain)
    jalon_exp = jalon_run(f"Jalon {EXPOSED.value} 0.25", pool2, thetas, exposed)
    jalon_3pl = jalon_run("Jalon EAP max-info", pool3, thetas, plain)
    runs = [
        ("2PL", jalon_2pl),
        ("2PL", catsim_run("catsim MaxInfo+MLE", pool2, thetas)),
        ("2PL", pix_run(pool2, thetas)),
        ("2PL", jalon_exp),
        ("2PL", jalon_run("Jalon prog.-restr. 0.25", pool2, thetas, progressive)),
        ("2PL", catsim_run("catsim r_max 0.25", pool2, thetas, r_max=MAX_EXPOSURE)),
        ("3PL", jalon_3pl),
        ("3PL", catsim_run("catsim MaxInfo+MLE", pool3, thetas)),
    ]
    head = f"{'model':<5} {'engine':<26}" + "".join(f"{'@' + str(n):>21}" for n in LENGTHS)
    print(head + f"   {'maxexp':>6} {'unused':>7} {'<1%':>7} {'overlap':>7}  {'time':>6}")
    for model, run in runs:
        cells = "".join(f"{c:>21}" for c in _accuracy(run, thetas))
        print(f"{model:<5} {run.name:<26}{cells}   {_usage(run, 500)}  {run.seconds:5.0f}s")

    se_cfg = EngineConfig(
        rules=free,
        stopping=Stopping(min_length=1, max_length=40, se_threshold=0.3),
        max_exposure=MAX_EXPOSURE,
    )
    print("\nItems to reach SE < 0.3 (2PL, exposure target 0.25, at most 40 items)")
    se_runs = [
        _se_run(pool2, thetas, replace(se_cfg, exposure=e), e.value)
        for e in (EXPOSED, Exposure.RESTRICTED, Exposure.PROGRESSIVE_RESTRICTED)
    ]
    se_runs.append(_se_run(pool2, thetas, se_cfg, "none (no exposure control)"))
    for r in se_runs:
        print(
            f"  Jalon {r.name:<28} mean {r.mean:.2f} items, median {r.median:.0f}, reached "
            f"{r.reached:.1%}, RMSE at stop {r.rmse:.3f}, max exposure {r.max_rate:.3f}, "
            f"unused {r.unused:.1%}, < 1 % {r.rare:.1%}"
        )

    print("\nCalibration, 2PL, 40 items × 5,000 persons")
    cal = _calibration()
    for line in cal.lines:
        print(line)

    print("\nLatency (µs): select + update per answer over 20-item tests; session start (per")
    print("test, and per stateless request); next_step replaying 19 stored answers")
    load = os.getloadavg()[0]
    print(f"(machine load average {load:.2f} on {os.cpu_count()} CPUs when this section began)")
    print(
        f"  {'engine':<44} {'items':>6} {'p50':>6} {'p99':>6}   {'start p50/p99':>13}"
        f"   {'replay p50/p99':>14}"
    )
    lat = _latency((500, 5000, 50000), quick)
    for row in lat:
        extra = ""
        if np.isfinite(row.start_p50):
            extra = (
                f"   {row.start_p50:>6.0f}/{row.start_p99:<6.0f}"
                f"   {row.replay_p50:>7.0f}/{row.replay_p99:<6.0f}"
            )
        print(f"  {row.label:<44} {row.items:>6} {row.p50:>6.0f} {row.p99:>6.0f}{extra}")

    # -- the targets ---------------------------------------------------------------
    def p99(label_start: str, n: int) -> float:
        return next(r.p99 for r in lat if r.label.startswith(label_start) and r.items == n)

    at = {n: _at(jalon_2pl, thetas, n) for n in LENGTHS}
    worst_bias = max(abs(b) for _, b in at.values())
    exp_rmse, _ = _at(jalon_exp, thetas, 20)
    exp_use = exposure_summary([[str(i) for i in t[:20]] for t in jalon_exp.items], 500)
    rmse3, _ = _at(jalon_3pl, thetas, 20)
    se_exp = se_runs[0]
    d_p99 = (p99("Jalon max-info", 5000), p99("Jalon max-info", 50000))
    e_p99 = (p99(f"Jalon {EXPOSED.value}", 5000), p99(f"Jalon {EXPOSED.value}", 50000))
    lsat = max(cal.lsat_da or np.inf, cal.lsat_dd or np.inf)
    targets = [
        (
            "2PL RMSE@20, no exposure control",
            "≤ 0.295, |bias| ≤ 0.02 at 5/10/20/30",
            f"{at[20][0]:.3f}, max |bias| {worst_bias:.3f}",
            at[20][0] <= 0.295 and worst_bias <= 0.02,
        ),
        (
            f"2PL RMSE@20, max exposure ≤ 0.25 ({EXPOSED.value})",
            "≤ 0.31, unused ≤ 25 %",
            f"{exp_rmse:.3f}, max exp. {exp_use.max_rate:.3f}, unused {exp_use.unused_share:.1%}",
            exp_rmse <= 0.31 and exp_use.max_rate <= 0.25 and exp_use.unused_share <= 0.25,
        ),
        ("3PL RMSE@20, no exposure control", "≤ 0.38", f"{rmse3:.3f}", rmse3 <= 0.38),
        (
            f"items to SE < 0.3, 2PL, max exp. 0.25 ({EXPOSED.value})",
            "≤ 20 on average",
            f"{se_exp.mean:.2f}, max exp. {se_exp.max_rate:.3f}, unused {se_exp.unused:.1%}",
            se_exp.mean <= 20 and se_exp.max_rate <= 0.25,
        ),
        (
            "select + update p99, default (max-info)",
            "≤ 100 µs at 5k, ≤ 1 ms at 50k",
            f"{d_p99[0]:.0f} µs, {d_p99[1]:.0f} µs",
            d_p99[0] <= 100 and d_p99[1] <= 1000,
        ),
        (
            f"select + update p99, {EXPOSED.value} 0.25",
            "≤ 100 µs at 5k, ≤ 1 ms at 50k",
            f"{e_p99[0]:.0f} µs, {e_p99[1]:.0f} µs",
            e_p99[0] <= 100 and e_p99[1] <= 1000,
        ),
        (
            "LSAT7 2PL vs mirt",
            "within 0.01",
            f"max |Δa| {cal.lsat_da or np.nan:.4f}, |Δd| {cal.lsat_dd or np.nan:.4f}",
            lsat <= 0.01,
        ),
        (
            "calibration 40 items × 5,000, 2PL",
            "≤ 1 s, RMSE ≤ girth's",
            f"{cal.seconds:.2f} s; a {cal.rmse_a:.4f} (girth {cal.girth_rmse_a:.4f}), "
            f"b {cal.rmse_b:.4f} (girth {cal.girth_rmse_b:.4f})",
            cal.seconds <= 1.0
            and cal.rmse_a <= cal.girth_rmse_a + 5e-4
            and cal.rmse_b <= cal.girth_rmse_b + 5e-4,
        ),
    ]
    print(f"\nTargets{' (quick run: 1,000 simulees)' if quick else ''}")
    print(f"  {'measure':<50} {'target':<36} {'measured':<52} verdict")
    for name, target, measured, ok in targets:
        print(f"  {name:<50} {target:<36} {measured:<52} {_verdict(ok)}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
