"""Learner import: the file is read whatever Excel wrote, every bad row is reported with its
line, nothing is written unless every row is good, and the upsert is idempotent and stays in
its organization. Also the learner list (search, group, pages)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from campaigns import learners
from campaigns.learners import (
    MAX_BYTES,
    ImportResult,
    import_learners,
    learner_groups,
    list_learners,
    parse_learner_csv,
)
from core import database, jobs
from core.errors import Forbidden, Invalid
from tenants.tasks import get_task
from tests.api.conftest import audit_actions
from tests.conftest import TenantFixture
from tests.db import as_tenant

GOOD = (
    "name,email,external_id,groups\r\n"
    "Camille Martin,camille@example.org,A1,Accounting|Lyon\r\n"
    "Karim Benali,karim@example.org,A2,Lyon\r\n"
)


@pytest.fixture
def queue(db: str) -> Iterator[jobs.InProcessQueue]:
    """Jobs in this process (the HTTP tests' app may have left a Redis queue in place)."""
    previous = jobs.get_queue()
    in_process = jobs.configure_queue(None)
    assert isinstance(in_process, jobs.InProcessQueue)
    yield in_process
    jobs.use_queue(previous)


async def _learners(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await database.fetch(
            """SELECT name, email, external_id, groups FROM learner WHERE tenant_id = $1
               ORDER BY name""",
            tenant.id,
        )


def _reasons(result: ImportResult) -> list[tuple[int, str, str]]:
    return [(p.line, p.column, p.reason) for p in result.problems]


# --- reading files ----------------------------------------------------------------------


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
    monkeypatch.setattr(learners, "MAX_ROWS", 3)
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
        name, content = learners.template_csv(locale)
        assert name.endswith(".csv")
        parsed = parse_learner_csv(content)
        assert parsed.problems == ()
        assert len(parsed.rows) == 2


# --- importing ------------------------------------------------------------------------


async def test_an_import_creates_then_changes_nothing_when_run_again(
    tenant_a: TenantFixture,
) -> None:
    first = await import_learners(tenant_a.owner_ctx, GOOD.encode(), filename="staff.csv")
    assert (first.ok, first.created, first.updated, first.unchanged) == (True, 2, 0, 0)
    again = await import_learners(tenant_a.owner_ctx, GOOD.encode(), filename="staff.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert await _learners(tenant_a) == [
        {
            "name": "Camille Martin",
            "email": "camille@example.org",
            "external_id": "A1",
            "groups": ["Accounting", "Lyon"],
        },
        {
            "name": "Karim Benali",
            "email": "karim@example.org",
            "external_id": "A2",
            "groups": ["Lyon"],
        },
    ]
    assert (await audit_actions(tenant_a.id))[-2:] == ["learners.imported", "learners.imported"]


async def test_rows_match_by_email_in_any_case_then_by_external_id(
    tenant_a: TenantFixture,
) -> None:
    await import_learners(tenant_a.owner_ctx, GOOD.encode())
    update = (
        "nom;courriel;matricule\n"
        "Camille Martin-Roy;CAMILLE@EXAMPLE.ORG;\n"  # by email: new name, external id kept
        "Karim Benali;karim.benali@example.org;A2\n"  # by external id: new email
        "Nadia Kaci;nadia@example.org;A3\n"  # new
    )
    result = await import_learners(tenant_a.owner_ctx, update.encode())
    assert (result.created, result.updated, result.unchanged) == (1, 2, 0)
    rows = await _learners(tenant_a)
    assert [(r["name"], r["email"], r["external_id"], r["groups"]) for r in rows] == [
        # No groups column: groups are left as they were.
        ("Camille Martin-Roy", "camille@example.org", "A1", ["Accounting", "Lyon"]),
        ("Karim Benali", "karim.benali@example.org", "A2", ["Lyon"]),
        ("Nadia Kaci", "nadia@example.org", "A3", []),
    ]


async def test_one_bad_row_and_nothing_is_written(tenant_a: TenantFixture) -> None:
    await import_learners(tenant_a.owner_ctx, GOOD.encode())
    before, audit_before = await _learners(tenant_a), await audit_actions(tenant_a.id)
    text = GOOD.replace("Karim Benali", "Karim B.") + "New Person,broken@,A9,\r\n"
    result = await import_learners(tenant_a.owner_ctx, text.encode())
    assert not result.ok
    assert _reasons(result) == [(4, "email", "This email address is not valid.")]
    assert await _learners(tenant_a) == before
    assert await audit_actions(tenant_a.id) == audit_before


async def test_rows_that_clash_with_stored_learners_are_reported(tenant_a: TenantFixture) -> None:
    await import_learners(tenant_a.owner_ctx, GOOD.encode())
    text = (
        "name,email,external_id\n"
        "Camille Martin,camille@example.org,A2\n"  # email is A1's learner, external id A2's
        "Someone,someone@example.org,A1\n"  # external id A1 → Camille; line 3
        "Camille again,new@example.org,A1\n"  # duplicate external id in the file
    )
    result = await import_learners(tenant_a.owner_ctx, text.encode())
    assert _reasons(result) == [
        (2, "external_id", "This external id belongs to another learner than this email address."),
        (4, "external_id", "This external id is already on line {line}."),
    ]
    text = "name,email,external_id\nOne,camille@example.org,\nTwo,,A1\n"
    result = await import_learners(tenant_a.owner_ctx, text.encode())
    assert _reasons(result) == [(3, "", "This row names the same learner as line {line}.")]
    assert len(await _learners(tenant_a)) == 2


async def test_a_dry_run_counts_without_writing(tenant_a: TenantFixture) -> None:
    result = await import_learners(tenant_a.owner_ctx, GOOD.encode(), dry_run=True)
    assert (result.dry_run, result.created) == (True, 2)
    assert await _learners(tenant_a) == []


async def test_the_same_emails_in_another_tenant_are_other_learners(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await import_learners(tenant_a.owner_ctx, GOOD.encode())
    before = await _learners(tenant_a)
    renamed = GOOD.replace("Camille Martin", "Camille in B").replace("A1,", "B1,")
    result = await import_learners(tenant_b.owner_ctx, renamed.encode())
    assert (result.created, result.updated) == (2, 0)
    assert await _learners(tenant_a) == before
    assert [r["name"] for r in await _learners(tenant_b)] == ["Camille in B", "Karim Benali"]


async def test_a_plain_member_may_not_import(tenant_a: TenantFixture) -> None:
    with pytest.raises(Forbidden):
        await import_learners(tenant_a.member_ctx, GOOD.encode())
    assert await _learners(tenant_a) == []


async def test_a_large_file_is_written_by_a_task_with_progress(
    tenant_a: TenantFixture, queue: jobs.InProcessQueue
) -> None:
    count = learners.SYNC_MAX_ROWS + 500
    data = "name,email,groups\n" + "".join(
        f"Person {i:05},p{i}@example.org,{'even' if i % 2 == 0 else 'odd'}\n" for i in range(count)
    )
    result = await import_learners(tenant_a.owner_ctx, data.encode(), filename="big.csv")
    assert result.task_id is not None
    assert result.created == count
    await queue.drain()
    task = await get_task(tenant_a.owner_ctx, result.task_id)
    assert (task.status, task.done, task.total) == ("done", count, count)
    assert task.message_params == {"created": count, "updated": 0, "unchanged": 0}
    assert len(await _learners(tenant_a)) == count
    assert (await audit_actions(tenant_a.id))[-2:] == ["task.started", "learners.imported"]
    # Running the job again (a retry) changes nothing.
    await learners.write_import(tenant_a.owner_ctx, data.encode(), "big.csv", _no_progress)
    assert len(await _learners(tenant_a)) == count


async def _no_progress(done: int, total: int) -> None:
    return None


# --- the list -----------------------------------------------------------------------------


async def test_the_list_searches_filters_and_pages(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    rows = "".join(
        f"Learner {i:02},l{i}@example.org,EXT-{i},{'North' if i < 5 else 'South'}\n"
        for i in range(12)
    )
    await import_learners(tenant_a.owner_ctx, f"name,email,external_id,groups\n{rows}".encode())
    await import_learners(tenant_b.owner_ctx, b"name,email\nLearner 99,b@example.org\n")
    ctx = tenant_a.member_ctx
    first = await list_learners(ctx, limit=5)
    assert [r["name"] for r in first.learners] == [f"Learner {i:02}" for i in range(5)]
    second = await list_learners(ctx, limit=5, cursor=first.next_cursor)
    third = await list_learners(ctx, limit=5, cursor=second.next_cursor)
    assert [r["name"] for r in third.learners] == ["Learner 10", "Learner 11"]
    assert third.next_cursor is None
    assert [r["email"] for r in (await list_learners(ctx, search="L3@EXAMPLE")).learners] == [
        "l3@example.org"
    ]
    assert len((await list_learners(ctx, search="ext-1")).learners) == 3  # 1, 10, 11
    assert len((await list_learners(ctx, search="%")).learners) == 0
    assert len((await list_learners(ctx, group="North")).learners) == 5
    assert await learner_groups(ctx) == ["North", "South"]
    with pytest.raises(Invalid):
        await list_learners(ctx, cursor="not-a-cursor")


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


async def test_a_forged_page_link_is_refused_not_a_crash(tenant_a: TenantFixture) -> None:
    import base64
    import json
    from uuid import uuid4

    forged = base64.urlsafe_b64encode(json.dumps(["a\x00", str(uuid4())]).encode()).decode()
    with pytest.raises(Invalid) as caught:
        await list_learners(tenant_a.member_ctx, cursor=forged)
    assert caught.value.field == "cursor"
