"""The challenge parser, part by part: what it builds from a valid challenge and the exact
error (message and location) it reports for each kind of bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest

from engine.bank import Challenge, IrtParameters, _Checker, _parse_challenge


def _choice(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "q1",
        "skill": "@queries1",
        "type": "single_choice",
        "locales": ["en", "fr"],
        "statement": {"en": "Which one?", "fr": "Laquelle ?"},
        "proposals": {"en": ["A", "B", "C"], "fr": ["A", "B", "C"]},
        "solution": [1],
        "explanation": {"en": "B.", "fr": "B."},
        "irt": {"a": 1.2, "b": -0.5},
        "status": "validated",
    }
    raw.update(changes)
    return raw


def _short_text(**changes: Any) -> dict[str, Any]:
    raw = _choice(
        type="short_text",
        solution={"en": ["Password manager"], "fr": ["Gestionnaire de mots de passe"]},
    )
    del raw["proposals"]
    raw.update(changes)
    return raw


def _parse(raw: Any) -> tuple[Challenge, list[str]]:
    chk = _Checker()
    challenge = _parse_challenge(raw, "c", chk, ("en", "fr"))
    return challenge, [str(e) for e in chk.errors]


def test_a_valid_choice_is_built_with_irt_defaults_and_no_timer() -> None:
    challenge, errors = _parse(_choice(type="multiple_choice", solution=[2, 0]))
    assert errors == []
    assert challenge == Challenge(
        id="q1",
        skill="@queries1",
        type="multiple_choice",
        locales=("en", "fr"),
        statement={"en": "Which one?", "fr": "Laquelle ?"},
        proposals={"en": ("A", "B", "C"), "fr": ("A", "B", "C")},
        solution=(2, 0),
        explanation={"en": "B.", "fr": "B."},
        irt=IrtParameters(a=1.2, b=-0.5, c=0.0, d=1.0),
        status="validated",
        timer_seconds=None,
    )


def test_a_valid_short_text_has_accepted_answers_per_locale_and_no_proposals() -> None:
    challenge, errors = _parse(_short_text(timer_seconds=45, irt={"a": 1, "b": 0, "d": 0.9}))
    assert errors == []
    assert challenge.proposals == {}
    assert challenge.solution == {
        "en": ("Password manager",),
        "fr": ("Gestionnaire de mots de passe",),
    }
    assert challenge.timer_seconds == 45
    assert challenge.irt == IrtParameters(1.0, 0.0, 0.0, 0.9)


def test_a_challenge_that_is_not_an_object_reports_every_missing_part_in_order() -> None:
    _, errors = _parse(["not", "a", "challenge"])
    assert errors == [
        "c: must be an object",
        "c.id: must be a non-empty string",
        "c.skill: must be a non-empty string",
        "c.type: must be one of single_choice, multiple_choice, short_text",
        "c.locales: must be a list",
        "c.locales: must list at least one locale",
        "c.statement: must be an object",
        "c.explanation: must be an object",
        "c.irt: must be an object",
        "c.irt.a: must be a finite number",
        "c.irt.b: must be a finite number",
        "c.status: must be one of draft, pretest, validated, retired",
    ]


def test_an_unknown_type_reports_no_answer_key_error() -> None:
    challenge, errors = _parse(_choice(type="essay", proposals=42, solution="anything"))
    assert errors == ["c.type: must be one of single_choice, multiple_choice, short_text"]
    assert challenge.proposals == {}
    assert challenge.solution == ()


def test_a_challenge_needs_at_least_one_locale() -> None:
    _, errors = _parse(_choice(locales=[]))
    # with no locale there are no proposals, so no index can be right
    assert errors == [
        "c.locales: must list at least one locale",
        "c.solution: must hold 0-based indices below 0",
    ]


def test_a_challenge_locale_must_be_one_of_the_banks() -> None:
    _, errors = _parse(_choice(locales=["en", "de", "fr"]))
    assert errors[0] == "c.locales: locale 'de' is not one of the bank's locales"


def test_every_text_needs_every_locale_of_the_challenge() -> None:
    _, errors = _parse(_choice(explanation={"en": "B."}, statement={"en": " ", "fr": "?"}))
    assert errors == [
        "c.statement.en: must be a non-empty string",
        "c.explanation.fr: missing locale",
    ]


def test_a_challenge_in_fewer_locales_needs_only_those_texts() -> None:
    challenge, errors = _parse(
        _choice(
            locales=["en"],
            statement={"en": "Which one?"},
            explanation={"en": "B."},
            proposals={"en": ["A", "B"]},
        )
    )
    assert errors == []
    assert challenge.locales == ("en",)
    assert challenge.proposals == {"en": ("A", "B")}


@pytest.mark.parametrize(
    ("proposals", "expected"),
    [
        (
            [],
            [
                "c.proposals: must be an object",
                "c.proposals.en: missing locale",
                "c.proposals.fr: missing locale",
                "c.solution: must hold 0-based indices below 0",
            ],
        ),
        ({"en": ["A", "B", "C"]}, ["c.proposals.fr: missing locale"]),
        (
            {"en": "A, B", "fr": ["A", "B"]},
            [
                "c.proposals.en: must be a list",
                "c.proposals.en: must hold 2 to 6 proposals",
                "c.proposals: must have the same number of proposals in every locale",
                "c.solution: must hold 0-based indices below 0",
            ],
        ),
        (
            {"en": ["A", "B", "C", "D", "E", "F", "G"], "fr": list("ABCDEFG")},
            [
                "c.proposals.en: must hold 2 to 6 proposals",
                "c.proposals.fr: must hold 2 to 6 proposals",
            ],
        ),
        (
            {"en": ["A", ""], "fr": ["A", 2]},
            [
                "c.proposals.en[1]: must be a non-empty string",
                "c.proposals.fr[1]: must be a non-empty string",
            ],
        ),
    ],
)
def test_choice_proposals_are_checked_per_locale(proposals: Any, expected: list[str]) -> None:
    _, errors = _parse(_choice(proposals=proposals, solution=[0]))
    assert errors == expected


def test_the_solution_indexes_the_fewest_proposals_of_any_locale() -> None:
    _, errors = _parse(_choice(proposals={"en": ["A", "B", "C"], "fr": ["A", "B"]}, solution=[2]))
    assert errors == [
        "c.proposals: must have the same number of proposals in every locale",
        "c.solution: must hold 0-based indices below 2",
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"solution": 1},
            ["c.solution: must be a list", "c.solution: single_choice needs exactly one index"],
        ),
        ({"solution": [True]}, ["c.solution: must hold 0-based indices below 3"]),
        ({"solution": [-1]}, ["c.solution: must hold 0-based indices below 3"]),
        ({"solution": ["1"]}, ["c.solution: must hold 0-based indices below 3"]),
        ({"solution": [1, 1]}, ["c.solution: must not repeat an index"]),
        ({"solution": [0, 1]}, ["c.solution: single_choice needs exactly one index"]),
        ({"solution": []}, ["c.solution: single_choice needs exactly one index"]),
        (
            {"type": "multiple_choice", "solution": [2]},
            ["c.solution: multiple_choice needs 2 or more indices"],
        ),
        # only the first problem of a solution is reported
        (
            {"type": "multiple_choice", "solution": [5, 5]},
            ["c.solution: must hold 0-based indices below 3"],
        ),
    ],
)
def test_a_choice_solution_is_distinct_in_range_indices_as_many_as_the_type_needs(
    changes: dict[str, Any], expected: list[str]
) -> None:
    _, errors = _parse(_choice(**changes))
    assert errors == expected


@pytest.mark.parametrize("proposals", [None, {}, []])
def test_a_short_text_may_spell_no_proposals_as_null_or_empty(proposals: Any) -> None:
    _, errors = _parse(_short_text(proposals=proposals))
    assert errors == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"proposals": {"en": ["A", "B"]}}, ["c.proposals: short_text has no proposals"]),
        (
            {"solution": ["Password manager"]},
            [
                "c.solution: must be an object",
                "c.solution.en: missing locale",
                "c.solution.fr: missing locale",
            ],
        ),
        (
            {"solution": {"en": [], "fr": ["x"]}},
            ["c.solution.en: must accept at least one answer"],
        ),
        (
            {"solution": {"en": "x", "fr": ["x", ""]}},
            [
                "c.solution.en: must be a list",
                "c.solution.en: must accept at least one answer",
                "c.solution.fr[1]: must be a non-empty string",
            ],
        ),
    ],
)
def test_a_short_text_accepts_at_least_one_answer_per_locale(
    changes: dict[str, Any], expected: list[str]
) -> None:
    challenge, errors = _parse(_short_text(**changes))
    assert errors == expected
    assert challenge.proposals == {}


@pytest.mark.parametrize(
    ("irt", "expected"),
    [
        (
            None,
            [
                "c.irt: must be an object",
                "c.irt.a: must be a finite number",
                "c.irt.b: must be a finite number",
            ],
        ),
        # a value that is not a number is reported once, not also as out of range
        ({"b": 0}, ["c.irt.a: must be a finite number"]),
        ({"a": -0.1, "b": "0"}, ["c.irt.a: must be > 0", "c.irt.b: must be a finite number"]),
        ({"a": 0, "b": 0}, ["c.irt.a: must be > 0"]),
        ({"a": 1, "b": 0, "c": -0.1}, ["c.irt.c: must be in [0, 0.5)"]),
        ({"a": 1, "b": 0, "c": 0.5}, ["c.irt.c: must be in [0, 0.5)"]),
        ({"a": 1, "b": 0, "d": 1.01}, ["c.irt.d: must be in (c, 1]"]),
        ({"a": 1, "b": 0, "c": 0.3, "d": 0.3}, ["c.irt.d: must be in (c, 1]"]),
        ({"a": 1, "b": 0, "c": True, "d": 0.1}, ["c.irt.c: must be a finite number"]),
        ({"a": 1, "b": 0, "d": None}, ["c.irt.d: must be a finite number"]),
    ],
)
def test_irt_parameters_are_checked_against_their_bounds(irt: Any, expected: list[str]) -> None:
    _, errors = _parse(_choice(irt=irt))
    assert errors == expected


def test_irt_parameters_that_are_not_numbers_are_nan_in_the_placeholder() -> None:
    challenge, _ = _parse(_choice(irt={"a": "x", "b": 1, "c": 0.25, "d": 0.75}))
    assert math.isnan(challenge.irt.a)
    assert (challenge.irt.b, challenge.irt.c, challenge.irt.d) == (1.0, 0.25, 0.75)


@pytest.mark.parametrize("status", ["draft", "pretest", "validated", "retired"])
def test_each_status_is_kept(status: str) -> None:
    challenge, errors = _parse(_choice(status=status))
    assert errors == []
    assert challenge.status == status


@pytest.mark.parametrize("timer", [0, -5, 1.5, True, "30"])
def test_a_timer_is_null_or_a_positive_integer(timer: Any) -> None:
    challenge, errors = _parse(_choice(timer_seconds=timer))
    assert errors == ["c.timer_seconds: must be null or a positive integer"]
    assert challenge.timer_seconds is None


def test_a_positive_timer_is_kept() -> None:
    challenge, errors = _parse(_choice(timer_seconds=1))
    assert errors == []
    assert challenge.timer_seconds == 1
