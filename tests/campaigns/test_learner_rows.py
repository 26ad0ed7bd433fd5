"""One row of a learners file, checked without a database: cells are cleaned, every problem
of a row is reported, problems name the spreadsheet's column, and a key given twice names
its first line."""

from __future__ import annotations

import pytest

from campaigns.learner_rows import (
    EMAIL,
    EXTERNAL_ID,
    GROUPS,
    NAME,
    CheckedRow,
    Header,
    check_row,
    column_letter,
    repeated_rows,
)

HEADER = Header(
    (" Nom ", "Courriel", "Matricule", "Groupes"),
    {NAME: 0, EMAIL: 1, EXTERNAL_ID: 2, GROUPS: 3},
)


@pytest.mark.parametrize(
    ("index", "letter"),
    [
        (0, "A"),
        (25, "Z"),
        (26, "AA"),
        (27, "AB"),
        (51, "AZ"),
        (52, "BA"),
        (701, "ZZ"),
        (702, "AAA"),
    ],
)
def test_column_letters_are_the_spreadsheets(index: int, letter: str) -> None:
    assert column_letter(index) == letter


def test_a_problem_names_the_header_as_written_and_shows_a_safe_value() -> None:
    problem = HEADER.problem(7, EXTERNAL_ID, "E\x07" + "x" * 120, "Some reason {n}.", n=2)
    assert (problem.line, problem.column, problem.letter) == (7, "Matricule", "C")
    assert problem.value == "E�" + "x" * 97 + "…"
    assert (problem.reason, problem.params) == ("Some reason {n}.", {"n": 2})
    whole_row = HEADER.problem(8, "", "", "This row has more cells than the header.")
    assert (whole_row.column, whole_row.letter) == ("", "")


def test_a_good_row_is_cleaned() -> None:
    row, problems = check_row(
        4, ["  Anne   Marie\u0301 ", " anne@example.org ", "", " Lyon | lyon |Nord"], HEADER
    )
    assert problems == []
    assert row == CheckedRow(4, "Anne Mari\u00e9", "anne@example.org", None, ("Lyon", "Nord"))


def test_every_problem_of_a_row_is_reported() -> None:
    row, problems = check_row(5, ["", "not-an-email", "E\x00", "g" * 101, "extra"], HEADER)
    assert row is None
    assert [(p.column, p.reason) for p in problems] == [
        ("", "This row has more cells than the header."),
        ("Nom", "The name is missing."),
        ("Courriel", "This email address is not valid."),
        ("Matricule", "This value contains characters that are not allowed."),
        ("Groupes", "A group name is too long ({max} characters at most)."),
    ]
    assert problems[-1].params == {"max": 100}


def test_a_short_row_reads_its_missing_cells_as_empty() -> None:
    row, problems = check_row(2, ["Anne", "anne@example.org"], HEADER)
    assert problems == []
    assert row == CheckedRow(2, "Anne", "anne@example.org", None, ())


def test_a_key_given_again_names_the_line_that_gave_it_first() -> None:
    rows = [
        CheckedRow(2, "A", "Anne@Example.org", "X1", None),
        CheckedRow(3, "B", "anne@example.org", "x1", None),  # same email, other id's case
        CheckedRow(5, "C", "c@example.org", "X1", None),
    ]
    problems = repeated_rows(rows, HEADER)
    assert [(p.line, p.column, p.reason, p.params) for p in problems] == [
        (3, "Courriel", "This email address is already on line {line}.", {"line": 2}),
        (5, "Matricule", "This external id is already on line {line}.", {"line": 2}),
    ]
