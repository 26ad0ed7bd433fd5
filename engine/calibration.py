"""Item calibration by marginal maximum likelihood (Bock & Aitkin EM), fit and drift.

Responses are a persons × items matrix with 1 (correct), 0 (wrong) and NaN (not presented):
adaptive tests leave most cells empty, and MML simply skips them. Identical response rows are
collapsed into weighted patterns first, which makes small-item data sets (LSAT7) nearly free.
The 3PL is fitted with the latent-guessing EM of Béguin & Glas: each correct answer is split
between "knew it" and "guessed it", so the M-step is a 2PL step plus a closed-form c.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


class CalibrationModel(StrEnum):
    """Models the calibration fits."""

    TWO_PL = "2PL"
    THREE_PL = "3PL"


@dataclass(frozen=True)
class ItemEstimate:
    """Parameters of one item in IRT form (P = c + (1 − c) σ(a (θ − b))) with its intercept
    `intercept` = −a b (slope-intercept form) and how many answers it was fitted on."""

    a: float
    b: float
    c: float
    intercept: float
    answers: int


@dataclass(frozen=True)
class CalibrationResult:
    """Fitted items (in column order), the final marginal log-likelihood, the iterations
    used and whether the parameter change fell below the tolerance."""

    items: tuple[ItemEstimate, ...]
    log_likelihood: float
    iterations: int
    converged: bool
    latent_mean: float = 0.0
    latent_sd: float = 1.0

    @property
    def a(self) -> FloatArray:
        """Discriminations."""
        return np.array([it.a for it in self.items])

    @property
    def b(self) -> FloatArray:
        """Difficulties."""
        return np.array([it.b for it in self.items])

    @property
    def c(self) -> FloatArray:
        """Lower asymptotes."""
        return np.array([it.c for it in self.items])

    @property
    def intercepts(self) -> FloatArray:
        """Slope-intercept intercepts d = −a b."""
        return np.array([it.intercept for it in self.items])


@dataclass(frozen=True)
class Anchor:
    """An item whose parameters are held fixed (it links the new items to the bank's scale)."""

    a: float
    b: float
    c: float = 0.0


def _patterns(y: FloatArray, weights: FloatArray | None) -> tuple[FloatArray, FloatArray]:
    """Collapse identical rows (NaN included) into unique patterns with summed weights."""
    w = np.ones(y.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    coded = np.where(np.isnan(y), -1, y).astype(np.int8)
    uniq, inverse = np.unique(coded, axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=uniq.shape[0]).astype(np.float64)
    out = uniq.astype(np.float64)
    out[uniq < 0] = np.nan
    return out, counts


def _mstep_2pl(
    r: FloatArray,
    n: FloatArray,
    x: FloatArray,
    slope: FloatArray,
    inter: FloatArray,
    free: NDArray[np.bool_],
    steps: int,
    slope_prior_sd: float | None,
) -> tuple[FloatArray, FloatArray]:
    """Newton steps on Σ_q r log σ(z) + (n − r) log σ(−z), z = slope x + inter, per free item.

    An optional penalty −(log a)² / (2 sd²) keeps items seen by a handful of people from
    running off; it is negligible with hundreds of answers.
    """
    s, d = slope.copy(), inter.copy()
    for _ in range(steps):
        z = s[:, None] * x[None, :] + d[:, None]
        p = 1.0 / (1.0 + np.exp(-z))
        resid = r - n * p
        w = n * p * (1.0 - p)
        ga = resid @ x
        gd = resid.sum(axis=1)
        haa = w @ (x * x)
        had = w @ x
        hdd = w.sum(axis=1)
        if slope_prior_sd is not None:
            var = slope_prior_sd**2
            ga -= np.log(s) / (var * s)
            haa += 1.0 / (var * s * s)
        det = haa * hdd - had * had
        ok = free & (det > 1e-10)
        da = np.where(ok, (hdd * ga - had * gd) / np.where(ok, det, 1.0), 0.0)
        dd = np.where(ok, (haa * gd - had * ga) / np.where(ok, det, 1.0), 0.0)
        s = np.clip(s + np.clip(da, -1.0, 1.0), 0.05, 8.0)
        d = np.clip(d + np.clip(dd, -2.0, 2.0), -30.0, 30.0)
    return s, d


def calibrate(
    responses: ArrayLike,
    model: CalibrationModel | str = CalibrationModel.TWO_PL,
    *,
    weights: ArrayLike | None = None,
    anchors: Mapping[int, Anchor] | None = None,
    quadrature: int = 61,
    max_iter: int = 500,
    tol: float = 1e-4,
    guessing_prior: tuple[float, float] = (5.0, 17.0),
    slope_prior_sd: float | None = None,
) -> CalibrationResult:
    """Fit 2PL or 3PL items by MML-EM with an N(0, 1) ability distribution.

    `responses` is persons × items (1, 0, NaN = not presented); `weights` optionally counts
    each row (response patterns with frequencies). `anchors` fixes some columns' parameters;
    the others are calibrated on the anchors' scale, and the ability distribution's mean and
    SD are then estimated too (fixed-anchor calibration of pretest items). The 3PL puts a
    Beta(`guessing_prior`) prior on c; `slope_prior_sd` adds a log-normal penalty on a (useful
    for sparse adaptive data; off by default, as in mirt). Iterates until no parameter moves
    by more than `tol`.
    """
    y_raw = np.asarray(responses, dtype=np.float64)
    if y_raw.ndim != 2:
        raise ValueError("responses must be a persons × items matrix")
    kind = CalibrationModel(model)
    y, freq = _patterns(y_raw, None if weights is None else np.asarray(weights, np.float64))
    seen = ~np.isnan(y)
    y1 = np.where(seen, y, 0.0)
    y0 = seen - y1
    answers = (seen * freq[:, None]).sum(axis=0)
    n_items = y.shape[1]

    x = np.linspace(-6.0, 6.0, quadrature)
    # start from classical statistics: logit of the p-value, slope 1
    pval = np.clip((y1 * freq[:, None]).sum(0) / np.maximum(answers, 1), 0.02, 0.98)
    slope = np.ones(n_items)
    inter = np.log(pval / (1 - pval)) * 1.3
    guess = np.full(n_items, 0.2 if kind is CalibrationModel.THREE_PL else 0.0)
    free = np.ones(n_items, dtype=np.bool_)
    for j, anc in (anchors or {}).items():
        free[j] = False
        slope[j], inter[j], guess[j] = anc.a, -anc.a * anc.b, anc.c
    mean, sd = 0.0, 1.0
    estimate_latent = bool(anchors)
    alpha, beta = guessing_prior
    loglik = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        prior = np.exp(-0.5 * ((x - mean) / sd) ** 2)
        prior /= prior.sum()
        z = slope[:, None] * x[None, :] + inter[:, None]
        f = 1.0 / (1.0 + np.exp(-z))
        p = np.clip(guess[:, None] + (1 - guess[:, None]) * f, 1e-12, 1 - 1e-12)
        logp, logq = np.log(p), np.log1p(-p)
        ll = y1 @ logp + y0 @ logq
        ll_max = ll.max(axis=1, keepdims=True)
        post = np.exp(ll - ll_max) * prior
        marg = post.sum(axis=1, keepdims=True)
        loglik = float(freq @ (np.log(marg[:, 0]) + ll_max[:, 0]))
        post *= freq[:, None] / marg
        r = y1.T @ post
        n = seen.T @ post
        if estimate_latent:
            total = post.sum()
            mean = float(post.sum(0) @ x / total)
            sd = float(np.sqrt(max(post.sum(0) @ (x - mean) ** 2 / total, 1e-4)))
        old = np.concatenate([slope, inter, guess])
        if kind is CalibrationModel.THREE_PL:
            known = r * f / p  # expected correct answers that were not guesses
            slope, inter = _mstep_2pl(known, n, x, slope, inter, free, 2, slope_prior_sd)
            guessed = (r - known).sum(1)
            tried = (n - known).sum(1)
            c_new = (guessed + alpha - 1) / (tried + alpha + beta - 2)
            guess = np.where(free, np.clip(c_new, 0.0, 0.49), guess)
        else:
            slope, inter = _mstep_2pl(r, n, x, slope, inter, free, 2, slope_prior_sd)
        if np.max(np.abs(np.concatenate([slope, inter, guess]) - old)) < tol:
            converged = True
            break
    b = -inter / slope
    items = tuple(
        ItemEstimate(
            float(slope[j]), float(b[j]), float(guess[j]), float(inter[j]), int(answers[j])
        )
        for j in range(n_items)
    )
    return CalibrationResult(items, loglik, it, converged, mean, sd)


@dataclass(frozen=True)
class ItemFit:
    """Rasch-style mean squares of one item: outfit (unweighted) and infit (information
    weighted); both have expectation 1, and values outside [0.7, 1.3] deserve a look."""

    infit: float
    outfit: float
    answers: int

    @property
    def misfits(self) -> bool:
        """Whether either mean square is outside [0.7, 1.3]."""
        return not (0.7 <= self.infit <= 1.3 and 0.7 <= self.outfit <= 1.3)


def person_eap(
    responses: ArrayLike, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None
) -> FloatArray:
    """EAP ability (N(0, 1) prior) of each row of a sparse response matrix."""
    y = np.asarray(responses, dtype=np.float64)
    seen = ~np.isnan(y)
    y1 = np.where(seen, y, 0.0)
    x = np.linspace(-6, 6, 61)
    aa, bb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cc = np.zeros_like(aa) if c is None else np.asarray(c, np.float64)
    p = np.clip(
        cc[:, None] + (1 - cc[:, None]) / (1 + np.exp(-aa[:, None] * (x - bb[:, None]))),
        1e-12,
        1 - 1e-12,
    )
    ll = y1 @ np.log(p) + (seen - y1) @ np.log1p(-p) - 0.5 * x**2
    w = np.exp(ll - ll.max(axis=1, keepdims=True))
    return np.asarray((w @ x) / w.sum(axis=1))


def item_fit(
    responses: ArrayLike, a: ArrayLike, b: ArrayLike, c: ArrayLike | None = None
) -> list[ItemFit]:
    """Infit and outfit mean squares of each item, residuals taken at each person's EAP."""
    y = np.asarray(responses, dtype=np.float64)
    theta = person_eap(y, a, b, c)
    aa, bb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cc = np.zeros_like(aa) if c is None else np.asarray(c, np.float64)
    p = cc[None, :] + (1 - cc[None, :]) / (
        1 + np.exp(-aa[None, :] * (theta[:, None] - bb[None, :]))
    )
    var = p * (1 - p)
    seen = ~np.isnan(y)
    sq = np.where(seen, (np.nan_to_num(y) - p) ** 2, 0.0)
    n = seen.sum(axis=0)
    outfit = np.where(seen, sq / var, 0.0).sum(0) / np.maximum(n, 1)
    infit = sq.sum(0) / np.maximum(np.where(seen, var, 0.0).sum(0), 1e-12)
    return [ItemFit(float(infit[j]), float(outfit[j]), int(n[j])) for j in range(y.shape[1])]


@dataclass(frozen=True)
class Drift:
    """How far an item moved between the bank and a new calibration."""

    item_id: str
    a_bank: float
    a_new: float
    b_bank: float
    b_new: float
    flagged: bool


def drift_report(
    item_ids: Sequence[str],
    bank: Sequence[tuple[float, float]],
    new: Sequence[tuple[float, float]],
    *,
    b_threshold: float = 0.3,
    a_ratio: float = 1.5,
) -> list[Drift]:
    """Compare (a, b) in the bank with a new calibration; flag items whose difficulty moved by
    more than `b_threshold` logits or whose discrimination changed by more than `a_ratio`-fold.
    """
    out = []
    for item_id, (a0, b0), (a1, b1) in zip(item_ids, bank, new, strict=True):
        ratio = max(a0, a1) / max(min(a0, a1), 1e-9)
        out.append(Drift(item_id, a0, a1, b0, b1, abs(b1 - b0) > b_threshold or ratio > a_ratio))
    return out
