"""Scoring a finished test: global ability, per-competence abilities and levels 0–8, a global
score, and the skills inferred as mastered.

Per-competence estimates borrow strength from the rest of the test (docs/adr/0005): the prior
for competence k is centred on the ability estimated from the answers *outside* k, widened by
the between-competence spread τ. No answer is counted twice, a competence with few answers is
pulled towards the participant's overall level rather than towards the population mean, and
one with many answers is driven by its own evidence.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from engine.bank import Bank
from engine.estimation import Grid, Prior
from engine.pool import ItemPool

FloatArray = NDArray[np.float64]

#: θ at which levels 1..8 begin: evenly spaced over the usual range; campaigns may override
#: them or derive them from the bank with `level_cuts_from_bank`.
DEFAULT_LEVEL_CUTS = (-2.25, -1.5, -0.75, 0.0, 0.75, 1.5, 2.25, 3.0)


@dataclass(frozen=True)
class ScoringConfig:
    """How abilities become levels and a score.

    `level_cuts` are the increasing abilities at which levels 1..8 start (below the first:
    level 0). `points_per_level` turns a continuous level into points, summed over
    competences for the global score (Pix uses 8: 64 per competence). `competence_spread` is
    τ, the SD of a competence ability around the global one. A skill is mastered when the mean
    probability of knowing (guessing excluded) its challenges at the competence estimate is at
    least `mastery_probability`.
    """

    level_cuts: tuple[float, ...] = DEFAULT_LEVEL_CUTS
    points_per_level: int = 8
    competence_spread: float = 0.5
    mastery_probability: float = 0.5
    grid: Grid = field(default_factory=Grid)
    prior: Prior = field(default_factory=Prior)

    def level(self, theta: float) -> int:
        """Level 0–8 reached at `theta`."""
        return int(np.searchsorted(np.asarray(self.level_cuts), theta, side="right"))

    def continuous_level(self, theta: float) -> float:
        """Level with the fraction of the way to the next one, in [0, 8]."""
        cuts = np.asarray(self.level_cuts)
        k = self.level(theta)
        if k == 0 or k >= cuts.size:
            return float(k)
        return k + float((theta - cuts[k - 1]) / (cuts[k] - cuts[k - 1]))


@dataclass(frozen=True)
class CompetenceScore:
    """One competence: ability, SE, level, points, and how many answers informed it."""

    code: str
    theta: float
    se: float
    level: int
    points: int
    answers: int


@dataclass(frozen=True)
class Score:
    """A whole test: global ability and level, the global score (sum of competence points),
    each competence of the profile, and the skills inferred as mastered."""

    theta: float
    se: float
    level: int
    score: int
    competences: dict[str, CompetenceScore]
    mastered_skills: tuple[str, ...]


def level_cuts_from_bank(bank: Bank) -> tuple[float, ...]:
    """Level cuts from the bank: level ℓ starts at the median difficulty of its validated
    challenges (a participant there knows half of level ℓ); levels without challenges are
    extrapolated linearly."""
    bs: dict[int, list[float]] = {}
    for ch in bank.challenges:
        if ch.status == "validated":
            bs.setdefault(bank.skills[ch.skill].level, []).append(ch.irt.b)
    known = sorted((lv, float(np.median(v))) for lv, v in bs.items())
    if len(known) < 2:
        return DEFAULT_LEVEL_CUTS
    lv, med = np.array([k for k, _ in known]), np.array([m for _, m in known])
    slope, icpt = np.polyfit(lv, med, 1)
    cuts = [dict(known).get(level, float(icpt + slope * level)) for level in range(1, 9)]
    return tuple(float(x) for x in np.maximum.accumulate(cuts))


def _posterior(grid: FloatArray, log_prior: FloatArray, loglik: FloatArray) -> tuple[float, float]:
    lw = log_prior + loglik
    w = np.exp(lw - lw.max())
    w /= w.sum()
    m = float(grid @ w)
    return m, float(np.sqrt(max(float(((grid - m) ** 2) @ w), 0.0)))


def score(
    bank: Bank,
    responses: Sequence[tuple[str, int | bool]],
    config: ScoringConfig | None = None,
    competences: Sequence[str] | None = None,
) -> Score:
    """Score the answers `(item_id, score)` of one test against `bank`.

    `competences` is the target profile (default: every competence of the bank). Pretest
    answers are ignored. Raises KeyError for an unknown item id.
    """
    cfg = config or ScoringConfig()
    pool: ItemPool = bank.pool
    grid = cfg.grid.values()
    log_prior = np.log(np.maximum(cfg.prior.density(grid), 1e-300))
    n_comp = len(pool.competence_codes)
    loglik = np.zeros((n_comp, grid.size))
    counts = np.zeros(n_comp, dtype=np.int64)
    for item_id, value in responses:
        i = pool.index[item_id]
        if pool.pretest[i]:
            continue
        k = int(pool.competence[i])
        loglik[k] += np.log(pool.likelihood(i, int(value), grid))
        counts[k] += 1
    total = loglik.sum(axis=0)
    theta, se = _posterior(grid, log_prior, total)
    profile = list(competences) if competences is not None else list(pool.competence_codes)
    comp_index = {code: k for k, code in enumerate(pool.competence_codes)}
    results: dict[str, CompetenceScore] = {}
    tau2 = cfg.competence_spread**2
    for code in profile:
        k = comp_index[code]
        # leave-one-out global estimate, so competence k's answers are not used twice
        m_out, s_out = _posterior(grid, log_prior, total - loglik[k])
        var = s_out**2 + tau2
        prior_k = -0.5 * (grid - m_out) ** 2 / var
        th_k, se_k = _posterior(grid, prior_k, loglik[k])
        points = int(np.floor(cfg.points_per_level * cfg.continuous_level(th_k)))
        results[code] = CompetenceScore(code, th_k, se_k, cfg.level(th_k), points, int(counts[k]))
    mastered = _mastered(bank, results, cfg)
    return Score(
        theta=theta,
        se=se,
        level=cfg.level(theta),
        score=sum(r.points for r in results.values()),
        competences=results,
        mastered_skills=mastered,
    )


@dataclass(frozen=True)
class _MasteryItems:
    """The items mastery is judged on (validated and retired challenges), grouped by skill in
    the bank's order: skill k's discriminations and difficulties are `a[starts[k]:][:sizes[k]]`
    and `b[…]`. Built once per bank (`_mastery_items`)."""

    skills: tuple[str, ...]
    competences: tuple[str, ...]
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    starts: NDArray[np.intp]
    sizes: NDArray[np.intp]


_MASTERY_ITEMS: weakref.WeakKeyDictionary[Bank, _MasteryItems] = weakref.WeakKeyDictionary()


def _mastery_items(bank: Bank) -> _MasteryItems:
    found = _MASTERY_ITEMS.get(bank)
    if found is not None:
        return found
    by_skill: dict[str, list[tuple[float, float]]] = {}
    for ch in bank.challenges:
        if ch.status in ("validated", "retired"):
            by_skill.setdefault(ch.skill, []).append((ch.irt.a, ch.irt.b))
    skills = [code for code in bank.skills if by_skill.get(code)]
    sizes = np.array([len(by_skill[code]) for code in skills], dtype=np.intp)
    params = [pair for code in skills for pair in by_skill[code]]
    a, b = np.array(params, dtype=np.float64).reshape(-1, 2).T
    items = _MasteryItems(
        skills=tuple(skills),
        competences=tuple(bank.skills[code].competence for code in skills),
        a=np.ascontiguousarray(a),
        b=np.ascontiguousarray(b),
        starts=np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp),
        sizes=sizes,
    )
    _MASTERY_ITEMS[bank] = items
    return items


def _mastered(
    bank: Bank, results: dict[str, CompetenceScore], cfg: ScoringConfig
) -> tuple[str, ...]:
    """The skills whose items the person would answer right with, on average, at least the
    mastery probability, at their competence's ability; only skills of competences they
    answered in."""
    items = _mastery_items(bank)
    if not items.skills:
        return ()
    judged = [
        (comp := results.get(code)) is not None and comp.answers > 0 for code in items.competences
    ]
    theta = np.array(
        [
            results[code].theta if ok else 0.0
            for code, ok in zip(items.competences, judged, strict=True)
        ],
        dtype=np.float64,
    )
    p_know = 1.0 / (1.0 + np.exp(-items.a * (np.repeat(theta, items.sizes) - items.b)))
    means = np.add.reduceat(p_know, items.starts) / items.sizes
    return tuple(
        code
        for code, ok, mean in zip(items.skills, judged, means.tolist(), strict=True)
        if ok and mean >= cfg.mastery_probability
    )
