from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.calibration import Anchor, calibrate, drift_report, item_fit

LSAT7 = Path(__file__).resolve().parent / "data" / "lsat7.csv"
MIRT_A = [0.988, 1.081, 1.706, 0.765, 0.736]
MIRT_D = [1.856, 0.808, 1.804, 0.486, 1.855]


def _simulate(a: np.ndarray, b: np.ndarray, c: np.ndarray, persons: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=persons)
    p = c + (1 - c) / (1 + np.exp(-a * (theta[:, None] - b)))
    answers: np.ndarray = (rng.random(p.shape) < p).astype(float)
    return answers


def test_lsat7_2pl_matches_the_published_mirt_values_within_0_01() -> None:
    data = np.loadtxt(LSAT7, delimiter=",", skiprows=1)
    assert data[:, 5].sum() == 1000
    res = calibrate(data[:, :5], weights=data[:, 5], tol=1e-6)
    assert res.converged
    np.testing.assert_allclose(res.a, MIRT_A, atol=0.01)
    np.testing.assert_allclose(res.intercepts, MIRT_D, atol=0.01)
    np.testing.assert_allclose(res.b, -res.intercepts / res.a)


def test_2pl_recovers_generating_parameters() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.2, 0.25, 20), rng.normal(0, 1, 20)
    res = calibrate(_simulate(a, b, np.zeros(20), 3000, 1))
    assert np.sqrt(np.mean((res.a - a) ** 2)) < 0.1
    assert np.sqrt(np.mean((res.b - b) ** 2)) < 0.1


def test_sparse_data_with_missing_cells_still_calibrates() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.2, 0.25, 30), rng.normal(0, 1, 30)
    y = _simulate(a, b, np.zeros(30), 6000, 3)
    y[rng.random(y.shape) < 0.6] = np.nan  # 60% not presented
    res = calibrate(y, slope_prior_sd=1.0)
    assert all(it.answers < 6000 for it in res.items)
    assert np.sqrt(np.mean((res.b - b) ** 2)) < 0.12
    assert np.corrcoef(res.a, a)[0, 1] > 0.7


@pytest.mark.slow
def test_3pl_recovers_difficulty_and_guessing() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(1.4, 0.2, 20), rng.normal(0.3, 0.8, 20)
    c = np.full(20, 0.2)
    res = calibrate(_simulate(a, b, c, 8000, 5), "3PL")
    assert np.sqrt(np.mean((res.b - b) ** 2)) < 0.2
    assert abs(float(np.mean(res.c)) - 0.2) < 0.05


def test_3pl_finds_more_guessing_on_easy_guessable_items_than_2pl_would() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(1.4, 0.2, 12), rng.normal(0.5, 0.7, 12)
    y = _simulate(a, b, np.full(12, 0.25), 4000, 7)
    res = calibrate(y, "3PL", max_iter=150)
    assert 0.1 < float(np.mean(res.c)) < 0.35


def test_fixed_anchor_calibration_puts_new_items_on_the_bank_scale() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(1.2, 0.2, 15), rng.normal(0, 1, 15)
    # the new cohort is abler than the calibration cohort: θ ~ N(0.5, 1)
    theta = rng.normal(0.5, 1.0, 5000)
    y = (rng.random((5000, 15)) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(float)
    anchors = {j: Anchor(float(a[j]), float(b[j])) for j in range(12)}
    res = calibrate(y, anchors=anchors)
    np.testing.assert_allclose(res.a[:12], a[:12])
    assert res.latent_mean == pytest.approx(0.5, abs=0.08)
    np.testing.assert_allclose(res.b[12:], b[12:], atol=0.15)
    free = calibrate(y)  # without anchors the cohort's mean is absorbed into b
    assert np.mean(free.b[12:] - b[12:]) < np.mean(res.b[12:] - b[12:]) - 0.3


def test_item_fit_flags_an_item_that_does_not_follow_the_model() -> None:
    rng = np.random.default_rng(9)
    a, b = np.full(10, 1.3), np.linspace(-1.5, 1.5, 10)
    y = _simulate(a, b, np.zeros(10), 2000, 10)
    y[:, 4] = (rng.random(2000) < 0.5).astype(float)  # pure noise…
    claimed = a.copy()
    claimed[4] = 2.5  # …for an item the bank believes to be sharply discriminating
    fits = item_fit(y, claimed, b)
    assert fits[4].misfits
    assert not any(f.misfits for k, f in enumerate(fits) if k != 4)
    assert all(f.answers == 2000 for f in fits)


def test_drift_report_flags_items_whose_difficulty_moved() -> None:
    rows = drift_report(
        ["x", "y", "z"], [(1.0, 0.0), (1.0, 0.0), (1.0, 0.0)], [(1.05, 0.1), (1.0, 0.6), (2.0, 0.0)]
    )
    assert [r.flagged for r in rows] == [False, True, True]
    assert rows[1].b_new == 0.6
