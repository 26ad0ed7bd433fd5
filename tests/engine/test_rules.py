"""Content rules, locale, exclusions and pretest seeding, on the hand-written fixture bank."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.bank import Bank
from engine.config import ContentRules, EngineConfig, Exposure, Stopping
from engine.pool import ItemPool
from engine.session import Session
from engine.simulation import content_rule_violations, exposure_summary, simulate

LONG = Stopping.fixed(50)


def _serve_all(bank: Bank, config: EngineConfig, **kw: object) -> list[str]:
    s = Session(bank.pool, config, np.random.default_rng(0), **kw)  # type: ignore[arg-type]
    served = []
    while (step := s.step()).next_item is not None:
        served.append(step.next_item)
        s.record(step.next_item, 1)
    return served


def test_only_validated_challenges_in_the_locale_are_served(small_bank: Bank) -> None:
    served = _serve_all(
        small_bank,
        EngineConfig(
            stopping=LONG,
            rules=ContentRules(
                cover_competences=False,
                no_consecutive_competence=False,
                one_per_tube=False,
                one_per_skill=False,
            ),
        ),
        locale="fr",
    )
    statuses = {small_bank.challenge_by_id[i].status for i in served}
    assert statuses == {"validated"}
    assert "u2en" not in served
    assert len(served) == 9


def test_english_participants_can_get_english_only_challenges(small_bank: Bank) -> None:
    served = _serve_all(
        small_bank, EngineConfig(stopping=LONG, rules=ContentRules.off()), locale="en"
    )
    assert "u2en" in served


def test_excluded_ids_are_never_served(small_bank: Bank) -> None:
    served = _serve_all(
        small_bank, EngineConfig(stopping=LONG, rules=ContentRules.off()), excluded=["q1a", "p1a"]
    )
    assert not {"q1a", "p1a"} & set(served)


def test_one_challenge_per_tube(small_bank: Bank) -> None:
    rules = ContentRules(cover_competences=False, no_consecutive_competence=False)
    served = _serve_all(small_bank, EngineConfig(stopping=LONG, rules=rules), locale="en")
    tubes = [small_bank.skills[small_bank.challenge_by_id[i].skill].tube for i in served]
    assert len(tubes) == len(set(tubes)) == 5


def test_never_the_same_skill_twice(small_bank: Bank) -> None:
    rules = ContentRules(
        cover_competences=False, no_consecutive_competence=False, one_per_tube=False
    )
    served = _serve_all(small_bank, EngineConfig(stopping=LONG, rules=rules), locale="en")
    skills = [small_bank.challenge_by_id[i].skill for i in served]
    assert len(skills) == len(set(skills))
    assert "@queries1" in skills


def test_no_two_consecutive_challenges_from_one_competence(small_bank: Bank) -> None:
    rules = ContentRules(cover_competences=False, one_per_tube=False, one_per_skill=False)
    served = _serve_all(small_bank, EngineConfig(stopping=LONG, rules=rules), locale="en")
    comps = [small_bank.skills[small_bank.challenge_by_id[i].skill].competence for i in served]
    assert len(comps) >= 3
    assert all(x != y for x, y in itertools.pairwise(comps))


def test_every_competence_comes_before_any_repeats(small_bank: Bank) -> None:
    rules = ContentRules(no_consecutive_competence=False, one_per_tube=False, one_per_skill=False)
    served = _serve_all(small_bank, EngineConfig(stopping=LONG, rules=rules), locale="en")
    comps = [small_bank.skills[small_bank.challenge_by_id[i].skill].competence for i in served]
    assert set(comps[:3]) == {"1.1", "1.2", "4.1"}


def test_a_target_profile_limits_the_competences(small_bank: Bank) -> None:
    cfg = EngineConfig(stopping=LONG, rules=ContentRules.off(), competences=("4.1",))
    served = _serve_all(small_bank, cfg, locale="en")
    assert {small_bank.skills[small_bank.challenge_by_id[i].skill].competence for i in served} == {
        "4.1"
    }


def test_pretest_items_are_seeded_unscored(small_bank: Bank) -> None:
    cfg = EngineConfig(stopping=Stopping.fixed(3), rules=ContentRules.off(), pretest_rate=1.0)
    s = Session(small_bank.pool, cfg, np.random.default_rng(0), locale="en")
    step = s.step()
    assert step.next_item == "f4b"
    assert step.pretest
    before = (s.theta, s.se)
    s.record("f4b", 1)
    assert (s.theta, s.se) == before
    assert s.answered == 0
    assert s.step().next_item not in (None, "f4b")


def test_pretest_rate_sets_the_share_of_unscored_items(tagged_pool: ItemPool) -> None:
    records = [
        {
            "id": tagged_pool.ids[i],
            "a": tagged_pool.a[i],
            "b": tagged_pool.b[i],
            "status": "pretest" if i % 5 == 0 else "validated",
        }
        for i in range(len(tagged_pool))
    ]
    pool = ItemPool.from_records(records)
    cfg = EngineConfig(stopping=Stopping.fixed(20), rules=ContentRules.off(), pretest_rate=0.2)
    res = simulate(pool, np.zeros(200), cfg, seed=3)
    served = sum(len(t) for t in res.items)
    pretest = sum(pool.pretest[pool.index[i]] for t in res.items for i in t)
    assert all(len(e) == 20 for e in res.estimates)
    assert 0.15 < pretest / served < 0.25


@pytest.mark.slow
def test_zero_content_rule_violations_over_ten_thousand_sessions(tagged_pool: ItemPool) -> None:
    cfg = EngineConfig(stopping=Stopping.fixed(16))
    sessions: list[Session] = []
    thetas = np.random.default_rng(11).normal(size=10_000)
    simulate(tagged_pool, thetas, cfg, seed=12, sessions=sessions)
    items = [s.items for s in sessions]
    assert len(items) == 10_000
    assert all(len(seq) == 16 for seq in items)
    assert content_rule_violations(tagged_pool, items, cfg.rules) == 0


def test_the_violation_counter_sees_breaches_when_rules_are_off(tagged_pool: ItemPool) -> None:
    cfg = EngineConfig(stopping=Stopping.fixed(16), rules=ContentRules.off())
    sessions: list[Session] = []
    simulate(tagged_pool, np.zeros(20), cfg, seed=12, sessions=sessions)
    assert content_rule_violations(tagged_pool, [s.items for s in sessions], ContentRules()) > 0


def test_zero_content_rule_violations_under_priced_exposure_control(
    tagged_pool: ItemPool,
) -> None:
    cfg = EngineConfig(stopping=Stopping.fixed(16), exposure=Exposure.PRICED, max_exposure=0.25)
    sessions: list[Session] = []
    thetas = np.random.default_rng(13).normal(size=3000)
    res = simulate(tagged_pool, thetas, cfg, seed=14, sessions=sessions)
    items = [s.items for s in sessions]
    assert all(len(seq) == 16 for seq in items)
    assert content_rule_violations(tagged_pool, items, cfg.rules) == 0
    summary = exposure_summary(res.items, len(tagged_pool))
    assert summary.max_rate <= 0.25 + 1 / 3000
    assert summary.unused_share < 0.25


def test_a_one_competence_profile_is_not_cut_short_by_the_spacing_rule(
    tagged_pool: ItemPool,
) -> None:
    one = tagged_pool.competence_codes[0]
    cfg = EngineConfig(stopping=Stopping.fixed(12), competences=(one,))
    sessions: list[Session] = []
    simulate(tagged_pool, np.zeros(5), cfg, seed=4, sessions=sessions)
    for session in sessions:
        assert len(session.items) == 12
        assert {tagged_pool.competence[i] for i in session.items} == {0}
