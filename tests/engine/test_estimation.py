from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.estimation import Estimator, Grid, Posterior, Prior, estimate

A = np.array([1.2, 1.0, 1.5, 0.8, 1.3, 1.1])
B = np.array([-1.0, -0.5, 0.0, 0.3, 0.8, 1.2])
Y = np.array([1, 1, 1, 0, 1, 0])


def test_eap_without_answers_is_the_prior() -> None:
    est = estimate([], [], [], prior=Prior(mean=0.5, sd=0.8))
    assert est.theta == pytest.approx(0.5, abs=1e-6)
    assert est.se == pytest.approx(0.8, abs=1e-3)


def test_eap_matches_a_brute_force_integral() -> None:
    x = np.linspace(-8, 8, 20001)
    p = 1 / (1 + np.exp(-A[:, None] * (x - B[:, None])))
    post = np.exp(-0.5 * x**2) * np.prod(np.where(Y[:, None] == 1, p, 1 - p), axis=0)
    mean = np.sum(x * post) / post.sum()
    sd = np.sqrt(np.sum((x - mean) ** 2 * post) / post.sum())
    est = estimate(Y, A, B, grid=Grid(-6, 6, 121))
    assert est.theta == pytest.approx(mean, abs=2e-3)
    assert est.se == pytest.approx(sd, abs=2e-3)


def test_incremental_posterior_equals_the_batch_estimate() -> None:
    post = Posterior.start(Grid(), Prior())
    for y, a, b in zip(Y, A, B, strict=True):
        post.update_dichotomous(bool(y), float(a), float(b))
    batch = estimate(Y, A, B)
    assert post.eap().theta == pytest.approx(batch.theta, abs=1e-10)
    assert post.eap().se == pytest.approx(batch.se, abs=1e-10)


def test_map_is_the_posterior_mode() -> None:
    est = estimate(Y, A, B, method=Estimator.MAP)
    x = np.linspace(-4, 4, 80001)
    p = 1 / (1 + np.exp(-A[:, None] * (x - B[:, None])))
    logpost = -0.5 * x**2 + np.sum(np.where(Y[:, None] == 1, np.log(p), np.log(1 - p)), axis=0)
    assert est.theta == pytest.approx(x[np.argmax(logpost)], abs=1e-3)


def test_mle_is_the_likelihood_maximum_with_se_from_information() -> None:
    est = estimate(Y, A, B, method=Estimator.MLE)
    x = np.linspace(-4, 4, 80001)
    p = 1 / (1 + np.exp(-A[:, None] * (x - B[:, None])))
    ll = np.sum(np.where(Y[:, None] == 1, np.log(p), np.log(1 - p)), axis=0)
    assert est.theta == pytest.approx(x[np.argmax(ll)], abs=1e-3)
    pt = 1 / (1 + np.exp(-A * (est.theta - B)))
    assert est.se == pytest.approx(1 / np.sqrt(np.sum(A**2 * pt * (1 - pt))), rel=1e-4)


def test_mle_of_an_all_correct_pattern_stops_at_the_fence() -> None:
    est = estimate(np.ones(6), A, B, method=Estimator.MLE, fence=(-3.5, 3.5))
    assert est.theta == pytest.approx(3.5)
    low = estimate(np.zeros(6), A, B, method=Estimator.MLE, fence=(-3.5, 3.5))
    assert low.theta == pytest.approx(-3.5)


def test_posterior_sd_shrinks_as_answers_accumulate() -> None:
    post = Posterior.start()
    ses = []
    for y, a, b in zip(Y, A, B, strict=True):
        post.update_dichotomous(bool(y), float(a), float(b))
        ses.append(post.eap().se)
    assert all(later < earlier for earlier, later in itertools.pairwise(ses))


def test_explicit_prior_weights_must_match_the_grid() -> None:
    with pytest.raises(ValueError, match="one value per grid point"):
        estimate(Y, A, B, grid=Grid(-4, 4, 5), prior=Prior(weights=(1.0, 1.0)))


def test_a_flat_prior_gives_a_wider_posterior_than_the_standard_normal() -> None:
    g = Grid(-6, 6, 121)
    flat = estimate(Y[:2], A[:2], B[:2], grid=g, prior=Prior(weights=tuple([1.0] * 121)))
    normal = estimate(Y[:2], A[:2], B[:2], grid=g)
    assert flat.se > normal.se


def test_posterior_moments_and_log_likelihood_match_a_direct_computation() -> None:
    post = Posterior.start(Grid(), Prior())
    logs = np.zeros_like(post.grid)
    for y, a, b in zip(Y, A, B, strict=True):
        p = 1 / (1 + np.exp(-a * (post.grid - b)))
        lik = p if y else 1 - p
        logs += np.log(lik)
        post.update(lik)
    w = np.exp(-0.5 * post.grid**2 + logs)
    w /= w.sum()
    mean = float(post.grid @ w)
    sd = float(np.sqrt(((post.grid - mean) ** 2) @ w))
    assert post.eap().theta == pytest.approx(mean, abs=1e-12)
    assert post.eap().se == pytest.approx(sd, abs=1e-12)
    assert np.allclose(post.log_likelihood, logs)
    post.weights = np.exp(-0.5 * (post.grid - 1.0) ** 2)  # replaced weights are re-summarised
    post.weights /= post.weights.sum()
    assert post.eap().theta == pytest.approx(1.0, abs=1e-4)
