"""Item response models: dichotomous 1PL–4PL and Samejima's graded response model.

Every function is vectorised: item parameters are 1-D arrays of length n (or scalars), ability
is a scalar or a 1-D grid of length g, and the result has shape (n, g) when both are arrays.
The logistic form has no 1.7 scaling constant: P = c + (d - c) / (1 + exp(-a (θ - b))).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

# Probabilities are kept away from 0 and 1 so that logarithms and information stay finite even
# for extreme abilities on a wide grid.
_EPS = 1e-12


def _outer(theta: ArrayLike, param: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Broadcast item parameters (n,) against abilities (g,) into (n, g) views."""
    t = np.asarray(theta, dtype=np.float64)
    p = np.asarray(param, dtype=np.float64)
    if t.ndim == 1 and p.ndim == 1:
        return t[np.newaxis, :], p[:, np.newaxis]
    return t, p


def _column(param: ArrayLike, like: FloatArray) -> FloatArray:
    p = np.asarray(param, dtype=np.float64)
    return p[:, np.newaxis] if p.ndim == 1 and like.ndim == 2 else p


def probability(
    theta: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike = 0.0,
    d: ArrayLike = 1.0,
) -> FloatArray:
    """Probability of a correct answer under the 4PL model (1PL–3PL as special cases).

    Returns an (n, g) array when `a`, `b`, … are item vectors of length n and `theta` a grid of
    length g; otherwise NumPy broadcasting applies. Values lie strictly inside (0, 1).
    """
    t, bb = _outer(theta, b)
    aa = _column(a, bb)
    cc = _column(c, bb)
    dd = _column(d, bb)
    p = cc + (dd - cc) / (1.0 + np.exp(-aa * (t - bb)))
    return np.asarray(np.clip(p, _EPS, 1.0 - _EPS), dtype=np.float64)


def information(
    theta: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike = 0.0,
    d: ArrayLike = 1.0,
) -> FloatArray:
    """Fisher information of 4PL items at `theta`, same broadcasting as `probability`.

    Uses I = a² (P − c)² (d − P)² / ((d − c)² P (1 − P)), which reduces to a² P Q for the 2PL.
    """
    t, bb = _outer(theta, b)
    aa = _column(a, bb)
    cc = _column(c, bb)
    dd = _column(d, bb)
    p = np.clip(cc + (dd - cc) / (1.0 + np.exp(-aa * (t - bb))), _EPS, 1.0 - _EPS)
    num = aa * aa * (p - cc) ** 2 * (dd - p) ** 2
    return np.asarray(num / ((dd - cc) ** 2 * p * (1.0 - p)), dtype=np.float64)


def log_likelihood(
    theta: ArrayLike,
    correct: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike = 0.0,
    d: ArrayLike = 1.0,
) -> FloatArray:
    """Log-likelihood over `theta` of dichotomous answers (1 correct, 0 wrong) to n items.

    Returns one value per ability point (the sum over the answered items).
    """
    p = probability(theta, a, b, c, d)
    y = np.asarray(correct, dtype=np.float64)
    if p.ndim == 2:
        y = y[:, np.newaxis]
        return np.asarray(np.sum(y * np.log(p) + (1.0 - y) * np.log1p(-p), axis=0))
    return np.asarray(y * np.log(p) + (1.0 - y) * np.log1p(-p))


def grm_cumulative(theta: ArrayLike, a: float, thresholds: ArrayLike) -> FloatArray:
    """Boundary curves P*(X ≥ k), k = 0..K, of one graded-response item; shape (K + 1, g).

    Row 0 is 1 and row K is 0 by definition; thresholds must be increasing.
    """
    t = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    bk = np.asarray(thresholds, dtype=np.float64)
    inner = 1.0 / (1.0 + np.exp(-a * (t[np.newaxis, :] - bk[:, np.newaxis])))
    ones = np.ones((1, t.size))
    return np.vstack([ones, inner, np.zeros((1, t.size))])


def grm_probability(theta: ArrayLike, a: float, thresholds: ArrayLike) -> FloatArray:
    """Category probabilities P(X = k), k = 0..K, of one graded-response item; shape (K + 1, g).

    Columns sum to one.
    """
    star = grm_cumulative(theta, a, thresholds)
    return np.asarray(np.clip(star[:-1] - star[1:], _EPS, 1.0), dtype=np.float64)


def grm_information(theta: ArrayLike, a: float, thresholds: ArrayLike) -> FloatArray:
    """Fisher information of one graded-response item over `theta`; shape (g,).

    I(θ) = a² Σ_k (P*_k Q*_k − P*_{k+1} Q*_{k+1})² / P_k (Samejima, 1969).
    """
    star = grm_cumulative(theta, a, thresholds)
    w = star * (1.0 - star)
    probs = np.clip(star[:-1] - star[1:], _EPS, 1.0)
    return np.asarray(a * a * np.sum((w[:-1] - w[1:]) ** 2 / probs, axis=0), dtype=np.float64)
