"""Ability estimation on a grid: EAP (the default), MAP and fenced MLE.

The posterior lives on a fixed grid of abilities, so one answer costs O(grid): multiply by the
item's likelihood row and renormalise. MAP and MLE refine the best grid point with a few Newton
steps so that they are not limited by the grid spacing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine import models

FloatArray = NDArray[np.float64]


class Estimator(StrEnum):
    """How the ability is summarised from the answers."""

    EAP = "eap"
    MAP = "map"
    MLE = "mle"


@dataclass(frozen=True)
class Prior:
    """A prior over ability: normal with `mean` and `sd`, or explicit `weights` on the grid."""

    mean: float = 0.0
    sd: float = 1.0
    weights: tuple[float, ...] | None = None

    def density(self, grid: FloatArray) -> FloatArray:
        """Unnormalised prior density on `grid` (explicit weights must match its length)."""
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            if w.shape != grid.shape:
                raise ValueError("prior weights must have one value per grid point")
            return w
        return np.asarray(np.exp(-0.5 * ((grid - self.mean) / self.sd) ** 2))


@dataclass(frozen=True)
class Grid:
    """An evenly spaced ability grid from `low` to `high` with `points` points."""

    low: float = -6.0
    high: float = 6.0
    points: int = 97

    def values(self) -> FloatArray:
        """The grid points, increasing (one read-only array per grid: every session and score
        starts from it)."""
        return _grid_values(self.low, self.high, self.points)


@functools.cache
def _grid_values(low: float, high: float, points: int) -> FloatArray:
    values = np.linspace(low, high, points)
    values.setflags(write=False)
    return values


#: What a read-only grid (`Grid.values`, one array per grid) always gives, computed once per
#: process: every step of every test starts a posterior on it (ADR 0023, addendum 3). Keyed
#: by the array's identity, which the cache keeps alive.
_PER_GRID: dict[tuple[int, Prior | None], tuple[FloatArray, FloatArray]] = {}


def _per_grid(grid: FloatArray, prior: Prior | None, make: Callable[[], FloatArray]) -> FloatArray:
    if grid.flags.writeable:  # a caller's own array may change: nothing is kept for it
        return make()
    key = (id(grid), prior)
    found = _PER_GRID.get(key)
    if found is None or found[0] is not grid:
        value = make()
        value.setflags(write=False)
        _PER_GRID[key] = found = (grid, value)
    return found[1]


def _moments(grid: FloatArray) -> FloatArray:
    """Rows 1, θ, θ² of `grid`: one small matrix product with the weights gives the mass and
    both moments."""
    return _per_grid(grid, None, lambda: np.vstack([np.ones_like(grid), grid, grid**2]))


def _prior_density(prior: Prior, grid: FloatArray) -> FloatArray:
    """`prior`'s density on `grid` as float64 (read-only when the grid is)."""
    return _per_grid(grid, prior, lambda: prior.density(grid).astype(np.float64))


@dataclass(frozen=True)
class Estimate:
    """An ability estimate with its standard error."""

    theta: float
    se: float


@dataclass
class Posterior:
    """The ability posterior on a grid, updated one answer at a time in O(grid).

    `weights` is kept normalised (sums to 1) so that long tests never underflow. The likelihood
    arrays given to `update` are kept (not copied) for `log_likelihood`: do not modify them.
    """

    grid: FloatArray
    weights: FloatArray
    _moments: FloatArray = field(init=False, repr=False)
    _likelihoods: list[FloatArray] = field(init=False, repr=False)
    _eap: tuple[FloatArray, Estimate] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        total = float(self.weights.sum())
        self.weights = self.weights / total
        self._moments = _moments(self.grid)
        self._likelihoods = []

    @property
    def log_likelihood(self) -> FloatArray:
        """Log-likelihood of the answers so far on the grid (computed on demand)."""
        ll = np.zeros_like(self.grid)
        for lik in self._likelihoods:
            ll += np.log(lik)
        return ll

    @classmethod
    def start(cls, grid: Grid | FloatArray | None = None, prior: Prior | None = None) -> Posterior:
        """A posterior equal to the prior, before any answer."""
        g = (grid or Grid()).values() if not isinstance(grid, np.ndarray) else grid
        return cls(grid=g, weights=_prior_density(prior or Prior(), g))

    def update(self, likelihood: FloatArray) -> None:
        """Fold in one answer, given its likelihood on the grid (P or 1 − P, or a GRM row)."""
        w = self.weights * likelihood
        mass, first, second = (self._moments @ w).tolist()
        w /= mass
        self.weights = w
        self._likelihoods.append(likelihood)
        self._eap = (w, self._summary(mass, first, second))

    def restore(self, weights: FloatArray, estimate: Estimate) -> None:
        """Put back the normalised `weights` and their estimate that an earlier posterior
        reached (`engine.session.Resume`): `eap()` then gives `estimate` as it stands, and the
        next `update` continues from them. The likelihoods behind them are not kept:
        `log_likelihood` covers only what is folded in from here."""
        self.weights = weights
        self._eap = (weights, estimate)

    def update_dichotomous(
        self, correct: bool, a: float, b: float, c: float = 0.0, d: float = 1.0
    ) -> None:
        """Fold in one dichotomous answer to a 4PL item."""
        p = c + (d - c) / (1.0 + np.exp(-a * (self.grid - b)))
        self.update(p if correct else 1.0 - p)

    def eap(self) -> Estimate:
        """Posterior mean and posterior standard deviation."""
        cached = self._eap
        if cached is not None and cached[0] is self.weights:
            return cached[1]
        return self._summary(*(self._moments @ self.weights).tolist())

    @staticmethod
    def _summary(mass: float, first: float, second: float) -> Estimate:
        m = first / mass
        v = second / mass - m * m
        return Estimate(m, math.sqrt(v) if v > 0.0 else 0.0)


def _newton_refine(
    theta0: float,
    answers: FloatArray,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    prior: Prior | None,
    low: float,
    high: float,
) -> Estimate:
    """Maximise the (penalised) log-likelihood near `theta0` with safeguarded Newton steps."""
    theta = theta0
    info = 0.0
    for _ in range(25):
        p = c + (d - c) / (1.0 + np.exp(-a * (theta - b)))
        p = np.clip(p, 1e-12, 1 - 1e-12)
        dp = a * (p - c) * (d - p) / (d - c)
        grad = float(np.sum((answers - p) * dp / (p * (1 - p))))
        info = float(np.sum(dp * dp / (p * (1 - p))))
        if prior is not None and prior.weights is None:
            grad -= (theta - prior.mean) / prior.sd**2
            info += 1.0 / prior.sd**2
        if info <= 0:
            break
        step = float(np.clip(grad / info, -1.0, 1.0))
        theta = float(np.clip(theta + step, low, high))
        if abs(step) < 1e-6:
            break
    return Estimate(theta, float(1.0 / np.sqrt(info)) if info > 0 else float("inf"))


def estimate(
    answers: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike | None = None,
    d: ArrayLike | None = None,
    *,
    method: Estimator = Estimator.EAP,
    grid: Grid | None = None,
    prior: Prior | None = None,
    fence: tuple[float, float] = (-4.0, 4.0),
) -> Estimate:
    """Estimate ability from dichotomous answers to 4PL items.

    EAP returns the posterior mean and SD on the grid. MAP returns the posterior mode with the
    SE from the observed information plus the prior's. MLE is fenced: it is bounded to `fence`
    (an all-correct or all-wrong pattern lands on a fence instead of ±∞), and its SE is
    1/√(test information). With no answer, the prior's mean (MLE: 0) and SD are returned.
    """
    y = np.asarray(answers, dtype=np.float64)
    aa = np.asarray(a, dtype=np.float64)
    bb = np.asarray(b, dtype=np.float64)
    cc = np.zeros_like(aa) if c is None else np.asarray(c, dtype=np.float64)
    dd = np.ones_like(aa) if d is None else np.asarray(d, dtype=np.float64)
    g = (grid or Grid()).values()
    pr = prior or Prior()
    if method is Estimator.EAP:
        post = Posterior.start(g, pr)
        if y.size:
            post.update(np.exp(models.log_likelihood(g, y, aa, bb, cc, dd)))
        return post.eap()
    if y.size == 0:
        return Estimate(pr.mean if method is Estimator.MAP else 0.0, pr.sd)
    ll = models.log_likelihood(g, y, aa, bb, cc, dd)
    if method is Estimator.MAP:
        ll = ll + np.log(pr.density(g))
        start = float(g[int(np.argmax(ll))])
        return _newton_refine(start, y, aa, bb, cc, dd, pr, float(g[0]), float(g[-1]))
    inside = (g >= fence[0]) & (g <= fence[1])
    start = float(g[inside][int(np.argmax(ll[inside]))])
    return _newton_refine(start, y, aa, bb, cc, dd, None, fence[0], fence[1])
