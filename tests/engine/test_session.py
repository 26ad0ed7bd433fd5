from __future__ import annotations

import numpy as np
import pytest

from engine.bank import Bank
from engine.config import ContentRules, EngineConfig, Exposure, Stopping, StopReason
from engine.estimation import Estimator
from engine.pool import ItemPool
from engine.session import Session, next_step
from engine.simulation import simulate


def test_next_step_from_stored_answers_matches_the_live_session(small_bank: Bank) -> None:
    cfg = EngineConfig(stopping=Stopping.fixed(5))  # five tubes in French: one each
    live = Session(small_bank.pool, cfg, np.random.default_rng(0), locale="fr")
    answers: list[tuple[str, int]] = []
    for k in range(5):
        step = live.step()
        replayed = next_step(small_bank.pool, answers, cfg, np.random.default_rng(0), locale="fr")
        assert replayed.next_item == step.next_item
        assert replayed.theta == pytest.approx(step.theta)
        assert step.next_item is not None
        answers.append((step.next_item, k % 2))
        live.record(step.next_item, k % 2)
    final = next_step(small_bank.pool, answers, cfg, np.random.default_rng(0), locale="fr")
    assert final.next_item is None
    assert final.stop_reason is StopReason.MAX_LENGTH
    assert final.answered == 5


def test_sessions_of_a_pool_start_from_shared_masks_and_close_items_in_their_own(
    small_bank: Bank,
) -> None:
    """A session's starting masks are computed once per pool, locale and profile, and are
    read-only; what one session excludes or serves stays closed in that session only."""
    pool = small_bank.pool
    cfg = EngineConfig(competences=pool.competence_codes[:1])
    first_id = pool.ids[int(np.flatnonzero(pool.starting_masks("fr", cfg.competences)[1])[0])]
    closing = Session(pool, cfg, np.random.default_rng(0), locale="fr", excluded=[first_id])
    other = Session(pool, cfg, np.random.default_rng(0), locale="fr")
    masks = pool.starting_masks("fr", cfg.competences)
    assert masks is pool.starting_masks("fr", cfg.competences)
    assert not any(mask.flags.writeable for mask in masks)
    i = pool.index[first_id]
    assert masks.scored_open[i]
    assert other._scored_open[i]
    assert not closing._scored_open[i]
    step = other.step()
    assert step.next_item is not None
    other.record(step.next_item, 1)
    assert not other._scored_open[pool.index[step.next_item]]
    assert masks.scored_open[pool.index[step.next_item]]  # the shared mask is untouched


def test_the_first_step_starts_at_the_prior(small_bank: Bank) -> None:
    step = next_step(small_bank.pool, [], EngineConfig(), np.random.default_rng(0))
    assert step.theta == pytest.approx(0.0, abs=1e-9)
    assert step.se == pytest.approx(1.0, abs=1e-3)
    assert step.next_item is not None
    assert step.answered == 0


def test_an_answer_to_an_unknown_item_is_refused(small_bank: Bank) -> None:
    with pytest.raises(KeyError, match="not in bank version"):
        next_step(small_bank.pool, [("nope", 1)], EngineConfig(), np.random.default_rng(0))


def test_answers_to_retired_items_still_count(small_bank: Bank) -> None:
    step = next_step(small_bank.pool, [("f2old", 1)], EngineConfig(), np.random.default_rng(0))
    assert step.answered == 1
    assert step.theta > 0


def test_the_same_seed_gives_the_same_tests(pool_2pl: ItemPool) -> None:
    cfg = EngineConfig(
        rules=ContentRules.off(), stopping=Stopping.fixed(10), exposure=Exposure.GEOMETRIC
    )
    thetas = np.random.default_rng(0).normal(size=30)
    first = simulate(pool_2pl, thetas, cfg, seed=42)
    second = simulate(pool_2pl, thetas, cfg, seed=42)
    other = simulate(pool_2pl, thetas, cfg, seed=43)
    assert first.items == second.items
    assert first.estimates == second.estimates
    assert first.items != other.items


@pytest.mark.parametrize("estimator", list(Estimator))
def test_every_estimator_tracks_the_true_ability(pool_2pl: ItemPool, estimator: Estimator) -> None:
    cfg = EngineConfig(rules=ContentRules.off(), stopping=Stopping.fixed(30), estimator=estimator)
    thetas = np.random.default_rng(1).normal(size=150)
    res = simulate(pool_2pl, thetas, cfg, seed=2)
    final = np.array([e[-1] for e in res.estimates])
    assert np.corrcoef(final, thetas)[0, 1] > 0.9


def test_graded_items_are_selected_and_scored() -> None:
    pool = ItemPool.from_records(
        [{"id": "poly", "a": 1.5, "thresholds": [-1.0, 0.0, 1.0]}]
        + [{"id": f"d{i}", "a": 0.4, "b": float(i) / 2} for i in range(-4, 5)]
    )
    s = Session(pool, EngineConfig(rules=ContentRules.off()))
    assert s.step().next_item == "poly"
    s.record("poly", 3)
    high = s.theta
    s2 = Session(pool, EngineConfig(rules=ContentRules.off()))
    s2.record("poly", 1)
    assert high > s2.theta


def test_a_test_variable_in_length_stops_on_precision(pool_2pl: ItemPool) -> None:
    cfg = EngineConfig(
        rules=ContentRules.off(), stopping=Stopping(min_length=1, max_length=40, se_threshold=0.4)
    )
    s = Session(pool_2pl, cfg, np.random.default_rng(3))
    while (step := s.step()).next_item is not None:
        s.record(step.next_item, int(s.answered % 3 != 0))
    assert step.stop_reason is StopReason.SE_REACHED
    assert step.se < 0.4
