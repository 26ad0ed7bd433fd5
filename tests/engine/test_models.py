from __future__ import annotations

import numpy as np
import pytest

from engine import models


def test_4pl_probability_matches_the_formula_for_each_item_and_ability() -> None:
    theta = np.array([-1.0, 0.0, 2.0])
    a, b = np.array([1.5, 0.7]), np.array([0.0, 1.0])
    c, d = np.array([0.2, 0.0]), np.array([0.95, 1.0])
    p = models.probability(theta, a, b, c, d)
    assert p.shape == (2, 3)
    expected = c[1] + (d[1] - c[1]) / (1 + np.exp(-a[1] * (theta - b[1])))
    np.testing.assert_allclose(p[1], expected)
    assert p[0, 1] == pytest.approx(0.2 + 0.75 / 2)


def test_1pl_and_2pl_are_special_cases_with_half_chance_at_the_difficulty() -> None:
    assert models.probability(0.3, 1.0, 0.3) == pytest.approx(0.5)
    assert models.probability(1.0, 2.0, 1.0) == pytest.approx(0.5)


def test_probability_stays_strictly_inside_zero_and_one_at_extreme_abilities() -> None:
    p = models.probability(np.array([-60.0, 60.0]), np.array([3.0]), np.array([0.0]))
    assert p.min() > 0
    assert p.max() < 1


def test_2pl_information_is_a_squared_p_q_and_peaks_at_b() -> None:
    grid = np.linspace(-3, 3, 61)
    info = models.information(grid, np.array([1.4]), np.array([0.5]))[0]
    p = models.probability(grid, np.array([1.4]), np.array([0.5]))[0]
    np.testing.assert_allclose(info, 1.4**2 * p * (1 - p), rtol=1e-9)
    assert grid[np.argmax(info)] == pytest.approx(0.5)


def test_3pl_information_is_lower_than_2pl_and_peaks_above_b() -> None:
    grid = np.linspace(-3, 3, 601)
    i2 = models.information(grid, np.array([1.2]), np.array([0.0]))[0]
    i3 = models.information(grid, np.array([1.2]), np.array([0.0]), np.array([0.25]))[0]
    assert np.all(i3 <= i2 + 1e-12)
    assert grid[np.argmax(i3)] > 0.0


def test_information_equals_squared_slope_over_variance_numerically() -> None:
    a, b, c, d = 1.3, -0.4, 0.15, 0.9
    t, h = 0.7, 1e-5
    p = float(models.probability(t, a, b, c, d))
    dp = float(models.probability(t + h, a, b, c, d) - models.probability(t - h, a, b, c, d)) / (
        2 * h
    )
    assert float(models.information(t, a, b, c, d)) == pytest.approx(
        dp**2 / (p * (1 - p)), rel=1e-5
    )


def test_grm_category_probabilities_sum_to_one() -> None:
    probs = models.grm_probability(np.linspace(-4, 4, 9), 1.3, [-1.0, 0.0, 1.5])
    assert probs.shape == (4, 9)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0)


def test_grm_with_one_threshold_is_the_2pl() -> None:
    grid = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(
        models.grm_probability(grid, 1.1, [0.4])[1], models.probability(grid, 1.1, 0.4), rtol=1e-9
    )
    np.testing.assert_allclose(
        models.grm_information(grid, 1.1, [0.4]), models.information(grid, 1.1, 0.4), rtol=1e-6
    )


def test_log_likelihood_sums_over_items() -> None:
    grid = np.array([-1.0, 0.0, 1.0])
    a, b = np.array([1.0, 2.0]), np.array([0.0, 0.5])
    ll = models.log_likelihood(grid, [1, 0], a, b)
    p = models.probability(grid, a, b)
    np.testing.assert_allclose(ll, np.log(p[0]) + np.log(1 - p[1]))
