from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from engine import selection
from engine.config import ContentRules, EngineConfig, Exposure, Selector, Stopping
from engine.estimation import Prior
from engine.models import information
from engine.pool import ItemPool
from engine.selection import ExposureLedger
from engine.session import Session

FREE = ContentRules.off()


def test_best_ignores_ineligible_items_and_returns_none_when_nothing_is_left() -> None:
    scores = np.array([0.2, -np.inf, 0.9, 0.5])
    assert selection.best(scores) == 2
    assert selection.best(np.full(3, -np.inf)) is None


def test_top_k_returns_the_best_first_and_skips_ineligible() -> None:
    scores = np.array([0.1, 0.7, -np.inf, 0.4, 0.9, 0.3])
    assert selection.top_k(scores, 3).tolist() == [4, 1, 3]
    assert selection.top_k(np.array([0.5, -np.inf]), 5).tolist() == [0]
    big = np.arange(40.0)
    assert selection.top_k(big, 20).tolist() == list(range(39, 19, -1))


def test_geometric_pick_follows_pix_probabilities_among_the_top_five() -> None:
    rng = np.random.default_rng(0)
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    draws = Counter(selection.geometric(scores, rng) for _ in range(20000))
    w = 0.51 * 0.49 ** np.arange(5)
    expected = w / w.sum()
    for rank in range(5):
        assert draws[rank] / 20000 == pytest.approx(expected[rank], abs=0.015)
    assert 5 not in draws
    assert 6 not in draws


def test_randomesque_is_uniform_among_the_top_k() -> None:
    rng = np.random.default_rng(1)
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    draws = Counter(selection.randomesque(scores, 3, rng) for _ in range(9000))
    assert set(draws) == {0, 1, 2}
    assert min(draws.values()) > 2700


def test_progressive_is_max_info_at_the_end_of_the_test() -> None:
    rng = np.random.default_rng(2)
    scores = np.array([0.3, 0.9, -np.inf, 0.5])
    assert all(selection.progressive(scores, 20, 20, rng) == 1 for _ in range(50))


def test_progressive_spreads_choices_at_the_start_of_the_test() -> None:
    rng = np.random.default_rng(3)
    scores = np.array([0.3, 0.9, 0.5, 0.8])
    assert len({selection.progressive(scores, 0, 20, rng) for _ in range(200)}) == 4


def test_max_info_serves_the_most_informative_item_at_the_estimate(pool_2pl: ItemPool) -> None:
    s = Session(pool_2pl, EngineConfig(rules=FREE), np.random.default_rng(0))
    i = s.select_index()
    info = information(0.0, pool_2pl.a, pool_2pl.b)
    assert i is not None
    assert info[i] == pytest.approx(info.max(), rel=1e-3)


def test_posterior_weighted_information_values_sharp_items_when_uncertain() -> None:
    pool = ItemPool.from_records(
        [
            {"id": "broad-centre", "a": 1.2, "b": 0.0},
            {"id": "sharp-off-centre", "a": 2.5, "b": 1.5},
        ]
    )
    wide = EngineConfig(rules=FREE, selector=Selector.POSTERIOR_INFO, prior=Prior(sd=1.5))
    # at θ = 0 the broad item is worth 0.36 and the sharp one 0.14, but averaged over
    # N(0, 1.5²) information integrates to about a × density, where the sharp item wins
    assert Session(pool, EngineConfig(rules=FREE, prior=Prior(sd=1.5))).step().next_item == (
        "broad-centre"
    )
    assert Session(pool, wide).step().next_item == "sharp-off-centre"


def test_no_item_is_served_twice(pool_2pl: ItemPool) -> None:
    s = Session(pool_2pl, EngineConfig(rules=FREE, stopping=Stopping.fixed(60)))
    for _ in range(60):
        i = s.select_index()
        assert i is not None
        s.record_index(i, 1)
    assert len(set(s.items)) == 60


def test_restricted_exposure_keeps_every_item_under_the_target_rate(pool_2pl: ItemPool) -> None:
    from engine.simulation import exposure_summary, simulate

    cfg = EngineConfig(
        rules=FREE,
        stopping=Stopping.fixed(10),
        exposure=Exposure.PROGRESSIVE_RESTRICTED,
        max_exposure=0.2,
    )
    thetas = np.random.default_rng(4).normal(size=300)
    res = simulate(pool_2pl, thetas, cfg, seed=5)
    assert exposure_summary(res.items, len(pool_2pl)).max_rate <= 0.2 + 1 / 300


def test_no_exposure_control_reuses_the_same_first_item(pool_2pl: ItemPool) -> None:
    from engine.simulation import exposure_summary, simulate

    cfg = EngineConfig(rules=FREE, stopping=Stopping.fixed(5))
    res = simulate(pool_2pl, np.zeros(50), cfg, seed=6)
    assert exposure_summary(res.items, len(pool_2pl)).max_rate == 1.0


def test_sympson_hetter_rejects_items_with_a_low_control_parameter(pool_2pl: ItemPool) -> None:
    ledger = ExposureLedger.empty(len(pool_2pl))
    ledger.sessions = 1
    top = Session(pool_2pl, EngineConfig(rules=FREE)).select_index()
    assert top is not None
    k = np.ones(len(pool_2pl))
    k[top] = 0.0
    ledger.sympson_hetter_k = k
    cfg = EngineConfig(rules=FREE, exposure=Exposure.SYMPSON_HETTER)
    s = Session(pool_2pl, cfg, np.random.default_rng(0), exposure=ledger)
    assert s.select_index() not in (top, None)


def test_sympson_hetter_calibration_brings_exposure_down(pool_2pl: ItemPool) -> None:
    from engine.simulation import exposure_summary, simulate, sympson_hetter_parameters

    thetas = np.random.default_rng(7).normal(size=200)
    cfg = EngineConfig(
        rules=FREE, stopping=Stopping.fixed(8), exposure=Exposure.SYMPSON_HETTER, max_exposure=1.0
    )
    k = sympson_hetter_parameters(
        pool_2pl, thetas, EngineConfig(**{**cfg.__dict__, "max_exposure": 0.3}), seed=8, rounds=4
    )
    assert k.min() < 1.0
    ledger = ExposureLedger.empty(len(pool_2pl))
    ledger.sympson_hetter_k = k
    res = simulate(pool_2pl, thetas, cfg, seed=9, exposure=ledger)
    free = simulate(pool_2pl, thetas, EngineConfig(rules=FREE, stopping=Stopping.fixed(8)), seed=9)
    assert exposure_summary(res.items, 500).max_rate < exposure_summary(free.items, 500).max_rate
