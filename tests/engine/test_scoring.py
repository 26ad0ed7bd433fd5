from __future__ import annotations

import numpy as np
import pytest

from engine.bank import Bank
from engine.scoring import ScoringConfig, level_cuts_from_bank, score


def test_levels_follow_the_configured_intervals() -> None:
    cfg = ScoringConfig(level_cuts=(-2, -1, 0, 1, 2, 3, 4, 5))
    assert cfg.level(-2.5) == 0
    assert cfg.level(-2.0) == 1
    assert cfg.level(0.5) == 3
    assert cfg.level(9.0) == 8
    assert cfg.continuous_level(0.5) == pytest.approx(3.5)


def test_all_correct_scores_higher_than_all_wrong_everywhere(small_bank: Bank) -> None:
    ids = ["q1a", "q3a", "s2a", "f2a", "f4a", "p1a", "p4a", "u2a"]
    high = score(small_bank, [(i, 1) for i in ids])
    low = score(small_bank, [(i, 0) for i in ids])
    assert high.theta > low.theta
    assert high.score > low.score
    assert high.level >= low.level
    for code in small_bank.competences:
        assert high.competences[code].theta > low.competences[code].theta
    assert set(high.mastered_skills) > set(low.mastered_skills)


def test_global_score_sums_competence_points(small_bank: Bank) -> None:
    res = score(small_bank, [("q1a", 1), ("f2a", 1), ("p1a", 0)])
    assert res.score == sum(c.points for c in res.competences.values())
    assert res.competences["1.1"].answers == 1
    assert all(0 <= c.level <= 8 for c in res.competences.values())


def test_competence_estimates_borrow_strength_from_the_rest_of_the_test(small_bank: Bank) -> None:
    strong_elsewhere = [("q1a", 1), ("q3a", 1), ("s2a", 1), ("f2a", 1), ("f4a", 1), ("u2a", 0)]
    weak_elsewhere = [("q1a", 0), ("q3a", 0), ("s2a", 0), ("f2a", 0), ("f4a", 0), ("u2a", 0)]
    strong = score(small_bank, strong_elsewhere).competences["4.1"]
    weak = score(small_bank, weak_elsewhere).competences["4.1"]
    # same single answer in 4.1, but the global evidence moves the competence estimate
    assert strong.theta > weak.theta + 0.3
    assert strong.answers == weak.answers == 1


def test_many_answers_in_a_competence_outweigh_the_global_pull(small_bank: Bank) -> None:
    spread = ScoringConfig(competence_spread=1.0)
    res = score(small_bank, [("q1a", 1), ("q3a", 1), ("s2a", 1), ("f2a", 0), ("f4a", 0)], spread)
    assert res.competences["1.1"].theta > res.competences["1.2"].theta


def test_shrinkage_to_zero_spread_pins_competences_to_the_global_estimate(
    small_bank: Bank,
) -> None:
    tight = ScoringConfig(competence_spread=1e-3)
    res = score(small_bank, [("q1a", 1), ("q3a", 1), ("f2a", 0), ("p1a", 1)], tight)
    thetas = [c.theta for c in res.competences.values()]
    assert max(thetas) - min(thetas) < 0.05


def test_pretest_answers_are_ignored_in_the_score(small_bank: Bank) -> None:
    base = score(small_bank, [("q1a", 1)])
    with_pretest = score(small_bank, [("q1a", 1), ("f4b", 0)])
    assert base.theta == with_pretest.theta


def test_a_target_profile_limits_the_reported_competences(small_bank: Bank) -> None:
    res = score(small_bank, [("q1a", 1)], competences=["1.1"])
    assert list(res.competences) == ["1.1"]


def test_level_cuts_from_the_bank_increase_with_level(small_bank: Bank) -> None:
    cuts = level_cuts_from_bank(small_bank)
    assert len(cuts) == 8
    assert all(np.diff(cuts) >= 0)
    assert cuts[0] == pytest.approx(np.median([-1.5, -1.2, -1.8]))
