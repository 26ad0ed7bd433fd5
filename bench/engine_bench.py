"""Adaptive engine benchmark: Jalon vs catsim vs a replica of Pix's flash algorithm.

    python -m bench.engine_bench            # full run (5,000 simulees), ~6–8 min on 2 cores
    python -m bench.engine_bench --quick    # 1,000 simulees (or JALON_BENCH_QUICK=1)

Same reference bank (500 items, a ~ N(1.2, 0.25), b ~ N(0, 1), c ~ N(0.25, 0.02) for 3PL) and
the same simulees (θ ~ N(0, 1)) for every engine. Prints one table per measure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.calibration import calibrate
from engine.config import ContentRules, EngineConfig, Exposure, Stopping
from engine.pool import ItemPool
from engine.selection import ExposureLedger, top_k
from engine.session import Session
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
            i = int(selector.select(item_bank=bank, administered_items=administered, est_theta=th))
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


def _usage(run: Run, n_items: int, length: int = 20) -> str:
    s = exposure_summary([[str(i) for i in t[:length]] for t in run.items], n_items)
    return f"{s.max_rate:.3f}  {s.unused_share:6.1%}  {s.overlap:.3f}"


def _latency(sizes: tuple[int, ...], quick: bool) -> list[tuple[str, int, float, float]]:
    rows: list[tuple[str, int, float, float]] = []
    configs: dict[str, EngineConfig] = {
        "Jalon max-info (default)": EngineConfig(stopping=Stopping.fixed(30)),
        "Jalon progressive-restricted": EngineConfig(
            stopping=Stopping.fixed(30), exposure=Exposure.PROGRESSIVE_RESTRICTED, max_exposure=0.25
        ),
    }
    for n in sizes:
        pool = reference_pool(n, "2PL", np.random.default_rng(BANK_SEED))
        _ = pool.info_table, pool.index  # built once per bank version, at load
        sessions = 60 if n > 10_000 else 150
        if quick:
            sessions //= 3
        for label, cfg in configs.items():
            rng = np.random.default_rng(1)
            ledger = ExposureLedger.empty(n)
            samples = []
            for _ in range(sessions):
                ledger.sessions += 1
                s = Session(pool, cfg, rng, exposure=ledger, track_exposure=True)
                theta = rng.normal()
                for _ in range(20):
                    t0 = time.perf_counter_ns()
                    i = s.select_index()
                    assert i is not None
                    p = pool.answer_probability(i, theta)[1]
                    s.record_index(i, int(rng.random() < p))
                    samples.append(time.perf_counter_ns() - t0)
            us = np.array(samples) / 1e3
            rows.append((label, n, float(np.percentile(us, 50)), float(np.percentile(us, 99))))
        rows.append(_catsim_latency(pool, 20 if n > 10_000 else 100))
    return rows


def _catsim_latency(pool: ItemPool, calls: int) -> tuple[str, int, float, float]:
    from catsim.item_bank import ItemBank
    from catsim.selection import MaxInfoSelector

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
    return (
        "catsim MaxInfo (selection alone)",
        len(pool),
        float(np.percentile(us, 50)),
        float(np.percentile(us, 99)),
    )


def _rmse(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.sqrt(np.mean((u - v) ** 2)))


def _calibration() -> list[str]:
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
    out.append(
        f"  {'Jalon MML-EM':<14} {tj:6.2f} s   RMSE a {_rmse(res.a, a):.3f}"
        f"   b {_rmse(res.b, b):.3f}"
        f"   ({res.iterations} EM iterations)"
    )
    out.append(
        f"  {'girth 0.8':<14} {tg:6.2f} s   RMSE a {_rmse(g['Discrimination'], a):.3f}"
        f"   b {_rmse(g['Difficulty'], b):.3f}"
    )
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "lsat7.csv"
    lsat = Path(os.environ.get("JALON_LSAT7", str(default)))
    data = np.loadtxt(lsat, delimiter=",", skiprows=1) if lsat.exists() else None
    if data is not None:
        ref_a = np.array([0.988, 1.081, 1.706, 0.765, 0.736])
        ref_d = np.array([1.856, 0.808, 1.804, 0.486, 1.855])
        r = calibrate(data[:, :5], weights=data[:, 5], tol=1e-6)
        out.append(
            f"  LSAT7 2PL vs mirt: max |Δa| {np.max(np.abs(r.a - ref_a)):.4f}, "
            f"max |Δd| {np.max(np.abs(r.intercepts - ref_d)):.4f}"
        )
    return out


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 simulees instead of 5,000")
    parser.add_argument("--simulees", type=int, default=None)
    args = parser.parse_args()
    quick = args.quick or os.environ.get("JALON_BENCH_QUICK") == "1"
    n_sim = args.simulees or (1000 if quick else 5000)
    thetas = np.random.default_rng(THETA_SEED).normal(0.0, 1.0, n_sim)
    pool2 = reference_pool(500, "2PL", np.random.default_rng(BANK_SEED))
    pool3 = reference_pool(500, "3PL", np.random.default_rng(BANK_SEED))
    free = ContentRules.off()
    fixed = Stopping.fixed(30)
    exposed = EngineConfig(
        rules=free, stopping=fixed, exposure=Exposure.PROGRESSIVE_RESTRICTED, max_exposure=0.25
    )
    t0 = time.perf_counter()
    print(f"Jalon adaptive engine benchmark — {n_sim} simulees θ ~ N(0, 1), bank of 500 items")
    print("cells: RMSE/bias/correlation after 5, 10, 20, 30 items; exposure figures over the")
    print("first 20 items (max exposure rate, unused items, mean test overlap)\n")
    runs = [
        (
            "2PL",
            jalon_run(
                "Jalon EAP max-info", pool2, thetas, EngineConfig(rules=free, stopping=fixed)
            ),
        ),
        ("2PL", catsim_run("catsim MaxInfo+MLE", pool2, thetas)),
        ("2PL", pix_run(pool2, thetas)),
        ("2PL", jalon_run("Jalon prog.-restr. 0.25", pool2, thetas, exposed)),
        ("2PL", catsim_run("catsim r_max 0.25", pool2, thetas, r_max=0.25)),
        (
            "3PL",
            jalon_run(
                "Jalon EAP max-info", pool3, thetas, EngineConfig(rules=free, stopping=fixed)
            ),
        ),
        ("3PL", catsim_run("catsim MaxInfo+MLE", pool3, thetas)),
    ]
    head = f"{'model':<5} {'engine':<26}" + "".join(f"{'@' + str(n):>21}" for n in LENGTHS)
    print(head + f"   {'maxexp':>6} {'unused':>7} {'overlap':>7}  {'time':>6}")
    for model, run in runs:
        cells = "".join(f"{c:>21}" for c in _accuracy(run, thetas))
        print(f"{model:<5} {run.name:<26}{cells}   {_usage(run, 500)}  {run.seconds:5.0f}s")

    se_cfg = EngineConfig(
        rules=free,
        stopping=Stopping(min_length=1, max_length=40, se_threshold=0.3),
        max_exposure=0.25,
    )
    print("\nItems to reach SE < 0.3 (2PL, exposure target 0.25, at most 40 items)")
    for exposure in (Exposure.RESTRICTED, Exposure.PROGRESSIVE_RESTRICTED):
        res = simulate(pool2, thetas, replace(se_cfg, exposure=exposure), SIM_SEED)
        lengths = np.array([len(e) for e in res.estimates])
        final = np.array([e[-1] for e in res.estimates])
        reached = np.array([s[-1] < 0.3 for s in res.standard_errors])
        s = exposure_summary(res.items, 500)
        print(
            f"  Jalon {exposure.value:<24} mean {lengths.mean():.1f} items, median "
            f"{np.median(lengths):.0f}, reached {reached.mean():.1%}, RMSE at stop "
            f"{np.sqrt(np.mean((final - thetas) ** 2)):.3f}, max exposure {s.max_rate:.3f}, "
            f"unused {s.unused_share:.1%}"
        )

    print("\nCalibration, 2PL, 40 items × 5,000 persons")
    for line in _calibration():
        print(line)

    print("\nselect + update latency (µs), 20-item tests")
    print(f"  {'engine':<36} {'items':>7} {'p50':>9} {'p99':>9}")
    for label, n, p50, p99 in _latency((500, 5000, 50000), quick):
        print(f"  {label:<36} {n:>7} {p50:>9.0f} {p99:>9.0f}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
