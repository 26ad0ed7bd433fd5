from __future__ import annotations

from collections import Counter
from dataclasses import replace

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


@pytest.mark.parametrize("exposure", list(Exposure))
def test_no_exposure_mode_serves_an_item_twice_or_one_over_the_cap(
    pool_2pl: ItemPool, exposure: Exposure
) -> None:
    n = len(pool_2pl)
    ledger = ExposureLedger(counts=np.zeros(n, dtype=np.int64), sessions=100)
    over = np.random.default_rng(8).choice(n, n // 2, replace=False)
    ledger.counts[over] = 30  # half the bank above a 0.25 cap
    ledger.sympson_hetter_k = np.full(n, 0.5)
    cfg = EngineConfig(
        rules=FREE, stopping=Stopping.fixed(80), exposure=exposure, max_exposure=0.25
    )
    s = Session(pool_2pl, cfg, np.random.default_rng(9), exposure=ledger)
    for k in range(80):
        i = s.select_index()
        assert i is not None
        s.record_index(i, k % 2)
    assert len(set(s.items)) == 80
    if exposure in (Exposure.RESTRICTED, Exposure.PROGRESSIVE_RESTRICTED, Exposure.PRICED):
        assert not set(s.items) & set(over.tolist())


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


# -- priced exposure control -------------------------------------------------------------------

PRICED = EngineConfig(rules=FREE, exposure=Exposure.PRICED, max_exposure=0.25)


def _ledger(counts: list[int] | np.ndarray, sessions: int) -> ExposureLedger:
    return ExposureLedger(counts=np.asarray(counts, dtype=np.int64), sessions=sessions)


def test_exposure_weights_price_items_near_the_cap_and_promote_unused_ones() -> None:
    # rates 0, 0.001, 0.1, 0.2, 0.2375, 0.25 over 1000 sessions; cap 0.25, onset 0.9 · 0.25
    ledger = _ledger([0, 1, 100, 200, 237, 250], 1000)
    w = selection.exposure_weights(
        ledger, 0.25, slope=5.0, onset=0.9, min_rate=0.002, bonus=5.0
    ).astype(np.float64)
    assert w[0] == pytest.approx(6.0)  # never served: full bonus
    assert w[1] == pytest.approx(1 + 5 * 0.5)  # half-way to the floor
    assert w[2] == pytest.approx(1.0)  # neither near the floor nor near the cap
    assert w[3] == pytest.approx(1.0)
    assert w[4] == pytest.approx(1 / (1 + 5 * (0.948 - 0.9)), rel=1e-5)
    assert w[5] == pytest.approx(1 / 1.5)
    assert np.all(np.diff(w[2:]) <= 0)


def test_priced_gives_way_to_a_nearly_as_good_item_when_the_best_nears_the_cap() -> None:
    pool = ItemPool.from_records(
        [{"id": "best", "a": 1.6, "b": 0.0}, {"id": "second", "a": 1.5, "b": 0.0}]
    )
    cfg = replace(PRICED, opening_randomesque=0, min_exposure=0.0)
    fresh = _ledger([100, 100], 1000)
    assert Session(pool, cfg, exposure=fresh).step().next_item == "best"
    crowded = _ledger([245, 100], 1000)  # best at 0.245 of a 0.25 cap: price 5 · 0.08
    assert Session(pool, cfg, exposure=crowded).step().next_item == "second"
    # plain restricted keeps serving the best item until the cap itself
    restricted = replace(cfg, exposure=Exposure.RESTRICTED)
    assert Session(pool, restricted, exposure=crowded).step().next_item == "best"


def test_priced_brings_a_never_served_item_back_where_it_is_informative() -> None:
    pool = ItemPool.from_records(
        [{"id": "strong", "a": 1.5, "b": 0.0}, {"id": "weak", "a": 0.9, "b": 0.0}]
    )
    cfg = replace(PRICED, opening_randomesque=0)
    ledger = _ledger([200, 0], 1000)
    assert Session(pool, cfg, exposure=ledger).step().next_item == "weak"
    served = _ledger([200, 3], 1000)  # above the floor: information decides again
    assert Session(pool, cfg, exposure=served).step().next_item == "strong"


def test_priced_relaxes_the_cap_rather_than_ending_a_test(pool_2pl: ItemPool) -> None:
    ledger = _ledger(np.full(len(pool_2pl), 50), 100)  # every item at 0.5 > 0.25
    s = Session(pool_2pl, PRICED, np.random.default_rng(0), exposure=ledger)
    assert s.step().next_item is not None


def test_priced_selection_is_max_of_information_times_weights_under_the_cap(
    pool_2pl: ItemPool,
) -> None:
    rng = np.random.default_rng(5)
    n = len(pool_2pl)
    cfg = replace(PRICED, opening_randomesque=0)
    for _ in range(20):
        sessions = int(rng.integers(50, 5000))
        counts = rng.integers(0, int(0.3 * sessions), n)
        counts[rng.random(n) < 0.1] = 0
        ledger = _ledger(counts, sessions)
        s = Session(pool_2pl, cfg, rng, exposure=ledger)
        for k in range(int(rng.integers(0, 8))):
            s.record_index(int(rng.integers(n)), k % 2)
        w = selection.exposure_weights(
            ledger,
            0.25,
            slope=cfg.price_slope,
            onset=cfg.price_onset,
            min_rate=cfg.min_exposure,
            bonus=cfg.floor_bonus,
        )
        info = pool_2pl.info_table[pool_2pl.info_row(s.theta)] * w
        ok = ledger.under_cap(0.25)
        ok[s.items] = False
        expected = int(np.argmax(np.where(ok, info, -np.inf)))
        assert s.select_index() == expected


def test_priced_simulation_caps_exposure_and_uses_the_bank(pool_2pl: ItemPool) -> None:
    from engine.simulation import exposure_summary, simulate

    cfg = replace(PRICED, stopping=Stopping.fixed(10), max_exposure=0.2)
    thetas = np.random.default_rng(4).normal(size=600)
    res = simulate(pool_2pl, thetas, cfg, seed=5)
    summary = exposure_summary(res.items, len(pool_2pl))
    assert summary.max_rate <= 0.2 + 1 / 600
    free = simulate(pool_2pl, thetas, replace(cfg, exposure=Exposure.RESTRICTED), seed=5)
    assert summary.unused_share < exposure_summary(free.items, len(pool_2pl)).unused_share


def test_priced_is_deterministic_under_a_seed(pool_2pl: ItemPool) -> None:
    from engine.simulation import simulate

    cfg = replace(PRICED, stopping=Stopping.fixed(8))
    thetas = np.random.default_rng(0).normal(size=40)
    first = simulate(pool_2pl, thetas, cfg, seed=42)
    second = simulate(pool_2pl, thetas, cfg, seed=42)
    other = simulate(pool_2pl, thetas, cfg, seed=43)
    assert first.items == second.items
    assert first.estimates == second.estimates
    assert first.items != other.items  # the opening items are a randomesque pick


def test_priced_opening_items_are_spread_over_the_top_few(pool_2pl: ItemPool) -> None:
    ledger = ExposureLedger.empty(len(pool_2pl))
    firsts = {
        Session(pool_2pl, PRICED, np.random.default_rng(k), exposure=ledger).select_index()
        for k in range(60)
    }
    assert len(firsts) == PRICED.randomesque_size
