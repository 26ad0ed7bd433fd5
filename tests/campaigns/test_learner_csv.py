"""Reading a learners file, without a database: the file is read whatever Excel wrote, a file
that cannot be read says what to do, and every bad row is reported with the line and column
the spreadsheet shows."""

from __future__ import annotations

import os

import pytest

from campaigns import learner_csv
from campaigns.learner_csv import MAX_BYTES, parse_learner_csv, template_csv
from core.errors import Invalid

GOOD = (
    "name,email,external_id,groups\r\n"
    "Camille Martin,camille@example.org,A1,Accounting|Lyon\r\n"
    "Karim Benali,karim@example.org,A2,Lyon\r\n"
)


def test_a_plain_utf8_file_is_read() -> None:
    parsed = parse_learner_csv(GOOD.encode())
    assert parsed.problems == ()
    assert parsed.encoding == "UTF-8"
    assert [(r.line, r.name, r.email, r.external_id, r.groups) for r in parsed.rows] == [
        (2, "Camille Martin", "camille@example.org", "A1", ("Accounting", "Lyon")),
        (3, "Karim Benali", "karim@example.org", "A2", ("Lyon",)),
    ]


def test_french_excel_semicolons_bom_and_french_headers() -> None:
    text = (
        "Nom;Courriel;Matricule;Groupes\n"
        "Élodie Durand;elodie@example.org;0042;Compta, Saint-Étienne\n"
    )
    parsed = parse_learner_csv(b"\xef\xbb\xbf" + text.encode())
    assert parsed.problems == ()
    assert parsed.delimiter == ";"
    [row] = parsed.rows
    assert (row.name, row.email, row.external_id, row.groups) == (
        "Élodie Durand",
        "elodie@example.org",
        "0042",
        ("Compta", "Saint-Étienne"),
    )


def test_headers_ignore_case_accents_and_punctuation() -> None:
    text = "PRÉNOM;NOM;E-mail;Identifiant externe;Groupe\nAnne;Lévy;anne@example.org;X;\n"
    [row] = parse_learner_csv(text.encode()).rows
    assert (row.name, row.email, row.external_id, row.groups) == (
        "Anne Lévy",
        "anne@example.org",
        "X",
        (),
    )


def test_windows_1252_is_read_and_said() -> None:
    text = "nom;email\nFrançois Pérez;francois@example.org\n"
    parsed = parse_learner_csv(text.encode("cp1252"))
    assert parsed.encoding == "Windows-1252"
    assert parsed.rows[0].name == "François Pérez"


def test_utf16_with_tabs_is_read() -> None:
    text = "name\temail\nZoé Roux\tzoe@example.org\n"
    parsed = parse_learner_csv(text.encode("utf-16"))
    assert parsed.rows[0].name == "Zoé Roux"


def test_excels_sep_line_is_understood() -> None:
    parsed = parse_learner_csv(b"sep=;\nname;email\nA B;ab@example.org\n")
    assert parsed.rows[0].line == 3
    assert parsed.rows[0].email == "ab@example.org"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\n\n", "The file is empty."),
        (b"name,email\n", "The file has a header but no learner."),
        (b"email,groups\nx@example.org,a\n", "The file has no name column."),
        (b"name,groups\nAnne,a\n", "The file needs an email column or an external id column"),
        (b"name,email,Email\n", "The column “Email” appears twice in the header."),
        (b"PK\x03\x04rest of a workbook", "This is a spreadsheet workbook, not a CSV file."),
        (b"name,email\n\x00\x01\x02", "This file is not a CSV text file."),
        (b"name;email\nAnn\x81e;a@example.org\n", "The file’s encoding is not recognised."),
        (b'name,email\nAnne,"a@example.org\n', "Line 2 could not be read"),
    ],
)
def test_unreadable_files_are_refused_with_what_to_do(data: bytes, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_learner_csv(data)
    assert message in refused.value.message.format(**refused.value.params)


def test_ten_megabytes_of_garbage_are_refused_by_size() -> None:
    with pytest.raises(Invalid) as refused:
        parse_learner_csv(os.urandom(10 * 1024 * 1024))
    assert refused.value.message == (
        "This file is larger than {max} MB. Split it into several files."
    )
    assert refused.value.params == {"max": MAX_BYTES // (1024 * 1024)}


def test_too_many_rows_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learner_csv, "MAX_ROWS", 3)
    data = "name,email\n" + "".join(f"P{i},p{i}@example.org\n" for i in range(4))
    with pytest.raises(Invalid) as refused:
        parse_learner_csv(data.encode())
    assert refused.value.params == {"max": 3}


def test_every_bad_row_is_reported_with_its_spreadsheet_line_and_column() -> None:
    text = (
        "name,email,external_id,groups\n"
        ",nobody@example.org,E1,\n"  # line 2: no name
        "Bad Mail,not-an-email,E2,\n"  # 3
        "\n"  # 4: blank, skipped but counted
        "No Key,,,\n"  # 5: neither email nor external id
        "Twice,CAMILLE@example.org,E3,\n"  # 6
        "Camille,camille@example.org,E4,\n"  # 7: same email as line 6, other case
        "Same Ext,other@example.org,E3,\n"  # 8: same external id as line 6
        f"{'L' * 201},long@example.org,E5,\n"  # 9: name too long
        "Ctl,ctl@example.org,E\x07,\n"  # 10: control character
        "Extra,extra@example.org,E6,,surprise\n"  # 11: more cells than the header
        'Fine,"fine@example.org",E7,"a,b"\n'  # 12: good
    )
    parsed = parse_learner_csv(text.encode())
    assert [(p.line, p.column, p.letter, p.reason) for p in parsed.problems] == [
        (2, "name", "A", "The name is missing."),
        (3, "email", "B", "This email address is not valid."),
        (5, "email", "B", "Give an email address or an external id."),
        (7, "email", "B", "This email address is already on line {line}."),
        (8, "external_id", "C", "This external id is already on line {line}."),
        (9, "name", "A", "This value is too long ({max} characters at most)."),
        (10, "external_id", "C", "This value contains characters that are not allowed."),
        (11, "", "", "This row has more cells than the header."),
    ]
    assert parsed.problems[3].params == {"line": 6}
    assert parsed.problems[6].value == "E�"
    assert [row.line for row in parsed.rows] == [6, 12]  # only rows without a problem


def test_multiline_cells_count_as_one_spreadsheet_row() -> None:
    text = 'name,email\n"Anne\nMarie",anne@example.org\nBad,bad\n'
    parsed = parse_learner_csv(text.encode())
    assert [p.line for p in parsed.problems] == [3]


def test_groups_are_trimmed_deduplicated_and_bounded() -> None:
    text = "name,email,groups\nA,a@example.org, Lyon | lyon |  Paris  Nord ,\n"
    assert parse_learner_csv(text.encode()).rows[0].groups == ("Lyon", "Paris Nord")
    many = "|".join(f"g{i}" for i in range(51))
    parsed = parse_learner_csv(f"name,email,groups\nA,a@example.org,{many}\n".encode())
    assert [p.reason for p in parsed.problems] == ["Too many groups ({max} at most)."]


def test_the_template_reads_back_without_problems() -> None:
    for locale in ("fr", "en"):
        name, content = template_csv(locale)
        assert name.endswith(".csv")
        parsed = parse_learner_csv(content)
        assert parsed.problems == ()
        assert len(parsed.rows) == 2


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b'name,"em"ail\nCamille,c@example.org\n', 1),  # the header itself
        (b'name,email\nCamille,"c@"example.org\n', 2),
    ],
)
def test_broken_quoting_names_its_own_line(content: bytes, line: int) -> None:
    with pytest.raises(Invalid) as caught:
        parse_learner_csv(content)
    assert caught.value.params == {"line": line}


def test_columns_past_z_are_named_as_the_spreadsheet_names_them() -> None:
    fillers = [f"note {i}" for i in range(26)]
    header = ",".join(["name", *fillers, "Email"])
    row = ",".join(["Anne", *([""] * 26), "not-an-email"])
    parsed = parse_learner_csv(f"{header}\n{row}\n".encode())
    [problem] = parsed.problems
    assert (problem.column, problem.letter) == ("Email", "AB")
    assert parsed.ignored_columns == tuple(fillers)


def test_a_long_bad_value_is_shown_cut_to_a_hundred_characters() -> None:
    value = "x" * 150
    [problem] = parse_learner_csv(f"name,email\nAnne,{value}\n".encode()).problems
    assert problem.reason == "This email address is not valid."
    assert problem.value == "x" * 99 + "…"


def test_the_delimiter_is_the_one_the_header_uses_most() -> None:
    parsed = parse_learner_csv(b"name\temail\tgroups\nMartin, Anne\ta@example.org\tx,y\n")
    assert parsed.delimiter == "\t"
    [row] = parsed.rows
    assert (row.name, row.groups) == ("Martin, Anne", ("x", "y"))


def test_empty_keys_are_none_and_no_groups_column_leaves_groups_alone() -> None:
    [row] = parse_learner_csv(b"name,email,external_id\nAnne,a@example.org,\n").rows
    assert (row.external_id, row.groups) == (None, None)
    [row] = parse_learner_csv(b"name,external_id\nAnne,X1\n").rows
    assert (row.email, row.external_id) == (None, "X1")


def test_a_row_without_any_key_is_named_by_the_key_column_the_file_has() -> None:
    [problem] = parse_learner_csv(b"name,external_id\nAnne,\n").problems
    assert (problem.line, problem.column, problem.letter) == (2, "external_id", "B")
    assert problem.reason == "Give an email address or an external id."


def test_blank_lines_before_the_header_count_in_line_numbers() -> None:
    parsed = parse_learner_csv(b"\n,\nname,email\nAnne,bad\n")
    assert [p.line for p in parsed.problems] == [4]
    assert parsed.header.cells == ("name", "email")


def test_broken_utf16_is_refused() -> None:
    with pytest.raises(Invalid) as refused:
        parse_learner_csv(b"\xff\xfen\x00a\x00m")
    assert refused.value.message.startswith("The file could not be read as text.")
