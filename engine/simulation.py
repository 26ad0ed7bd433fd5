"""Simulated adaptive tests and the figures that judge them (pure functions, seeded).

Simulees answer at random from the model at their true ability. Exposure is tracked across
simulees in one `ExposureLedger`, as it would be across participants in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.config import ContentRules, EngineConfig, Exposure
from engine.pool import ItemPool
from engine.selection import ExposureLedger
from engine.session import Session

FloatArray = NDArray[np.float64]


class ModelKind(StrEnum):
    """Parametric families of the reference banks."""

    TWO_PL = "2PL"
    THREE_PL = "3PL"


def reference_pool(
    n_items: int, model: ModelKind | str, rng: np.random.Generator, *, competences: int = 0
) -> ItemPool:
    """The issue's reference bank: a ~ N(1.2, 0.25), b ~ N(0, 1), and c ~ N(0.25, 0.02) for
    3PL. Discriminations are floored at 0.2 so every item is valid. With `competences` > 0,
    items are spread round-robin over that many competences, with 4 items per tube and 2 per
    skill, to exercise the content rules."""
    a = np.maximum(rng.normal(1.2, 0.25, n_items), 0.2)
    b = rng.normal(0.0, 1.0, n_items)
    c = (
        np.clip(rng.normal(0.25, 0.02, n_items), 0.0, 0.49)
        if ModelKind(model) is ModelKind.THREE_PL
        else np.zeros(n_items)
    )
    records: list[dict[str, object]] = []
    for i in range(n_items):
        rec: dict[str, object] = {"id": f"i{i:05d}", "a": a[i], "b": b[i], "c": c[i]}
        if competences:
            k = i % competences
            j = i // competences
            rec.update(competence=f"c{k}", tube=f"c{k}-t{j // 4}", skill=f"c{k}-s{j // 2}")
        records.append(rec)
    return ItemPool.from_records(records)


@dataclass
class SimulationResult:
    """Per simulee: estimates and standard errors after each scored item, and served item ids."""

    estimates: list[list[float]]
    standard_errors: list[list[float]]
    items: list[list[str]]
    exposure: ExposureLedger = field(repr=False)


def simulate(
    pool: ItemPool,
    thetas: ArrayLike,
    config: EngineConfig,
    seed: int,
    *,
    exposure: ExposureLedger | None = None,
    sessions: list[Session] | None = None,
) -> SimulationResult:
    """Run one adaptive test per true ability in `thetas`, in order, reproducibly from `seed`.

    If `sessions` is a list, the finished Session objects are appended to it (for rule checks).
    """
    rng = np.random.default_rng(seed)
    ledger = exposure or ExposureLedger.empty(len(pool))
    est: list[list[float]] = []
    ses: list[list[float]] = []
    served: list[list[str]] = []
    for theta in np.asarray(thetas, dtype=np.float64):
        ledger.sessions += 1
        s = Session(pool, config, rng, exposure=ledger, track_exposure=True)
        while True:
            step_reason = config.stopping.reason(s.answered, s.se)
            if step_reason is not None:
                break
            i = s.select_index()
            if i is None:
                break
            probs = pool.answer_probability(i, float(theta))
            score = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), "right"))
            s.record_index(i, min(score, probs.size - 1))
        est.append(list(s.estimates))
        ses.append(list(s.standard_errors))
        served.append([pool.ids[i] for i in s.items])
        if sessions is not None:
            sessions.append(s)
    return SimulationResult(est, ses, served, ledger)


def _at(result: SimulationResult, length: int) -> FloatArray:
    return np.array([e[min(length, len(e)) - 1] if e else 0.0 for e in result.estimates])


def rmse_at(result: SimulationResult, thetas: ArrayLike, length: int) -> float:
    """Root mean squared error of the estimates after `length` items (or the last one)."""
    err = _at(result, length) - np.asarray(thetas)
    return float(np.sqrt(np.mean(err**2)))


def bias_at(result: SimulationResult, thetas: ArrayLike, length: int) -> float:
    """Mean signed error of the estimates after `length` items."""
    return float(np.mean(_at(result, length) - np.asarray(thetas)))


def correlation_at(result: SimulationResult, thetas: ArrayLike, length: int) -> float:
    """Pearson correlation between estimates after `length` items and true abilities."""
    return float(np.corrcoef(_at(result, length), np.asarray(thetas))[0, 1])


@dataclass(frozen=True)
class ExposureSummary:
    """Bank usage over a simulation: max exposure rate, unused share, mean test overlap."""

    max_rate: float
    unused_share: float
    overlap: float


def exposure_summary(items: Sequence[Sequence[str]], n_items: int) -> ExposureSummary:
    """Exposure figures of the served tests, over a bank of `n_items`.

    Overlap is the expected share of items two random tests have in common, estimated as
    Σ C(count_i, 2) / (C(N, 2) · mean length) (Chen, Ankenmann & Spray, 2003).
    """
    n = len(items)
    counts: dict[str, int] = {}
    for test in items:
        for item_id in test:
            counts[item_id] = counts.get(item_id, 0) + 1
    c = np.array(list(counts.values()), dtype=np.float64)
    mean_len = float(np.mean([len(t) for t in items])) if n else 0.0
    pairs = n * (n - 1) / 2
    overlap = float(np.sum(c * (c - 1) / 2) / (pairs * mean_len)) if pairs and mean_len else 0.0
    return ExposureSummary(
        max_rate=float(c.max() / n) if n and c.size else 0.0,
        unused_share=1.0 - len(counts) / n_items,
        overlap=overlap,
    )


def content_rule_violations(
    pool: ItemPool, items: Sequence[Sequence[int]], rules: ContentRules
) -> int:
    """Number of rule breaches in served item sequences (indices), for the switched-on rules.

    Counts repeated items, repeated tubes and skills, consecutive competences, and a competence
    repeated while another one of the test's competences was still unserved in the round.
    """
    violations = 0
    for seq in items:
        seen_tubes: set[int] = set()
        seen_skills: set[int] = set()
        violations += len(seq) - len(set(seq))
        last = -2
        round_seen: set[int] = set()
        for i in seq:
            comp, tube, skill = int(pool.competence[i]), int(pool.tube[i]), int(pool.skill[i])
            if rules.one_per_tube and tube >= 0:
                violations += tube in seen_tubes
                seen_tubes.add(tube)
            if rules.one_per_skill and skill >= 0:
                violations += skill in seen_skills
                seen_skills.add(skill)
            if rules.no_consecutive_competence and comp >= 0:
                violations += comp == last
            last = comp
        if rules.cover_competences:
            comps = [int(pool.competence[i]) for i in seq if int(pool.competence[i]) >= 0]
            total = len(set(comps))
            for comp in comps:
                if comp in round_seen and len(round_seen) < total:
                    violations += 1
                round_seen.add(comp)
                if len(round_seen) == total:
                    round_seen = set()
    return violations


def sympson_hetter_parameters(
    pool: ItemPool,
    thetas: ArrayLike,
    config: EngineConfig,
    seed: int,
    rounds: int = 8,
) -> FloatArray:
    """Calibrate Sympson–Hetter control parameters K_i by iterated simulation so that no
    item's exposure exceeds `config.max_exposure` (Sympson & Hetter, 1985)."""
    k = np.ones(len(pool))
    r = config.max_exposure
    sh_config = EngineConfig(**{**config.__dict__, "exposure": Exposure.SYMPSON_HETTER})
    for round_ in range(rounds):
        ledger = ExposureLedger.empty(len(pool))
        ledger.sympson_hetter_k = k
        # selected-count: how often each item came out on top before the K_i lottery
        result = simulate(pool, thetas, sh_config, seed + round_, exposure=ledger)
        n = len(result.items)
        rates = ledger.counts / max(n, 1)
        selected = np.where(k > 0, rates / np.maximum(k, 1e-9), 0.0)
        k = np.where(selected > r, r / np.maximum(selected, 1e-9), 1.0)
    return np.asarray(k)
