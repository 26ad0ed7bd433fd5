"""Target profiles without a database: the catalogue against the demo bank, caps and topics,
the engine settings a profile gets, and a whole test on the demo bank through the pure
functions the service calls."""

from __future__ import annotations

import json

import numpy as np
import pytest

from campaigns import assessment
from campaigns.content import DEMO_BANK
from campaigns.profile_catalogue import (
    CATALOGUE,
    ProfileSpec,
    catalogue,
    check_servable,
    clean_spec,
    eligible_challenges,
)
from core.errors import Invalid
from engine import Bank, get_bank, is_correct
from tests.campaigns.conftest import right_answer, wrong_answer


@pytest.fixture(scope="module")
def demo_bank() -> Bank:
    return get_bank(DEMO_BANK)


def test_every_catalogue_profile_is_served_by_the_demo_bank_in_french_and_english(
    demo_bank: Bank,
) -> None:
    assert [p.key for p in catalogue(demo_bank)] == [p.key for p in CATALOGUE]
    for profile in CATALOGUE:
        spec = profile.spec(demo_bank)
        assert clean_spec(demo_bank, spec.competences, spec.tubes, dict(spec.max_levels)) == spec
        check_servable(demo_bank, spec, ("fr", "en"))
        assert set(profile.title) == set(profile.description) == {"en", "fr"}
    assert len(CATALOGUE[0].spec(demo_bank).competences) == 21


def test_the_catalogue_offers_only_what_the_bank_holds(test_bank: Bank) -> None:
    assert [p.key for p in catalogue(test_bank)] == ["digcomp"]


def test_caps_and_topics_narrow_the_challenges(test_bank: Bank) -> None:
    spec = ProfileSpec(competences=("1.1",), tubes=("1.1-t1",), max_levels=(("1.1", 3),))
    ids = eligible_challenges(test_bank, spec)
    assert ids == {"ch-1.1-t1-1", "ch-1.1-t1-2", "ch-1.1-t1-3"}  # pretest and retired excluded
    wide = eligible_challenges(test_bank, ProfileSpec(competences=("1.1", "4.1")))
    assert len(wide) == 36


def test_a_profile_without_questions_in_a_language_is_refused(test_bank: Bank) -> None:
    with pytest.raises(Invalid) as caught:
        check_servable(test_bank, ProfileSpec(competences=("1.1",)), ("de",))
    assert caught.value.params == {"code": "1.1", "locale": "de"}


def test_small_profiles_relax_one_challenge_per_topic(demo_bank: Bank) -> None:
    small = ProfileSpec(competences=("4.1",))
    large = ProfileSpec(competences=tuple(demo_bank.competences))
    assert assessment.engine_settings(demo_bank, small)["one_per_tube"] is False
    assert assessment.engine_settings(demo_bank, large)["one_per_tube"] is True


def test_a_spec_survives_its_json_form() -> None:
    spec = ProfileSpec(competences=("1.1", "4.1"), tubes=("1.1-t1",), max_levels=(("4.1", 5),))
    assert ProfileSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


@pytest.mark.parametrize("key", [p.key for p in CATALOGUE])
def test_a_whole_test_on_the_demo_bank(demo_bank: Bank, key: str) -> None:
    spec = next(p for p in CATALOGUE if p.key == key).spec(demo_bank)
    snapshot = json.dumps(
        {"profile": spec.to_json(), "engine": assessment.engine_settings(demo_bank, spec)}
    )
    plan = assessment.plan(demo_bank, snapshot)
    assert assessment.plan(demo_bank, snapshot) is plan  # cached per campaign
    rng = np.random.default_rng(3)
    responses: list[tuple[str, int]] = []
    step = assessment.step(demo_bank, plan, responses, seed=42, locale="fr")
    while step.next_item is not None:
        challenge = demo_bank.challenge_by_id[step.next_item]
        assert demo_bank.skills[challenge.skill].competence in spec.competences
        assert demo_bank.skills[challenge.skill].level <= spec.max_level(
            demo_bank.skills[challenge.skill].competence
        )
        value = (
            right_answer(challenge, "fr") if rng.random() < 0.6 else wrong_answer(challenge, "fr")
        )
        stored, correct = assessment.check_answer(challenge, "fr", value)
        assert correct == is_correct(challenge, stored, "fr")
        responses.append((challenge.id, int(correct)))
        again = assessment.step(demo_bank, plan, responses[:-1], seed=42, locale="fr")
        assert again.next_item == challenge.id  # the same state gives the same challenge
        step = assessment.step(demo_bank, plan, responses, seed=42, locale="fr")
    assert 5 <= len(responses) <= 30
    result = assessment.result(demo_bank, plan, responses)
    assert set(result.competences) == set(spec.competences)
    for code, comp in result.competences.items():
        assert comp["level"] <= spec.max_level(code)
    assert result.score == sum(c["points"] for c in result.competences.values())


def test_answers_of_the_wrong_shape_are_refused(test_bank: Bank) -> None:
    single = test_bank.challenge_by_id["ch-1.1-t1-1"]
    multiple = test_bank.challenge_by_id["ch-1.1-t2-1"]
    text = test_bank.challenge_by_id["ch-1.1-t3-1"]
    for challenge, value in [
        (single, 3),
        (single, True),
        (single, "1"),
        (multiple, []),
        (multiple, [0, 0]),
        (multiple, [9]),
        (text, 1),
        (text, ""),
    ]:
        with pytest.raises(Invalid):
            assessment.check_answer(challenge, "en", value)
    assert assessment.check_answer(multiple, "en", [2, 0]) == ([0, 2], True)
    assert assessment.check_answer(text, "fr", "  paris! ") == ("paris!", True)


def test_topics_chosen_in_one_competence_leave_the_others_whole(test_bank: Bank) -> None:
    spec = clean_spec(test_bank, ["1.1", "4.1"], ["1.1-t1"])
    assert "1.1-t1" in spec.tubes
    assert "1.1-t2" not in spec.tubes
    assert {t.code for t in test_bank.competences["4.1"].tubes} <= set(spec.tubes)
    ids = eligible_challenges(test_bank, spec)
    assert any(
        test_bank.skills[test_bank.challenge_by_id[i].skill].competence == "4.1" for i in ids
    )
