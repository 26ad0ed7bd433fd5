"""Importing learners: nothing is written unless every row is good, rows are checked against
the organization's learners, the upsert is idempotent and stays in its organization, and a
large file is written by a task with progress."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from campaigns.learner_import import (
    BATCH_SIZE,
    DEFAULT_FILENAME,
    FILENAME_MAX_LENGTH,
    MAX_PARAMETERS,
    SYNC_MAX_ROWS,
    ImportResult,
    clean_filename,
    import_learners,
    insert_sql,
    write_import,
)
from core import database, jobs
from core.errors import Forbidden
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


async def test_new_learners_are_written_one_statement_per_batch(
    tenant_a: TenantFixture, statements: list[str]
) -> None:
    count = BATCH_SIZE + 1
    data = "name,email,groups\n" + "".join(
        f"Person {i:05},p{i}@example.org,{'' if i % 2 else 'even'}\n" for i in range(count)
    )
    result = await import_learners(tenant_a.owner_ctx, data.encode())
    assert result.created == count
    await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
    inserts = [sql for sql in statements if "INSERT INTO learner" in sql]
    assert [sql.count("($1, ") for sql in inserts] == [BATCH_SIZE, 1]
    learners = await _learners(tenant_a)
    assert len(learners) == count
    assert learners[0]["groups"] == ["even"]
    assert learners[1]["groups"] == []


def test_the_insert_of_new_learners_numbers_their_parameters_row_after_row() -> None:
    assert insert_sql(2) == (
        "INSERT INTO learner (tenant_id, id, name, email, external_id, groups)\n"
        "VALUES ($1, $2, $3, $4, $5, $6::text[]),\n($1, $7, $8, $9, $10, $11::text[])"
    )
    # A whole batch binds fewer parameters than PostgreSQL allows; more rows are refused.
    assert f"${1 + 5 * BATCH_SIZE}::text[])" in insert_sql(BATCH_SIZE)
    assert 1 + 5 * BATCH_SIZE <= MAX_PARAMETERS
    for rows in (0, (MAX_PARAMETERS - 1) // 5 + 1):
        with pytest.raises(ValueError, match="cannot insert"):
            insert_sql(rows)


async def test_a_plain_member_may_not_import(tenant_a: TenantFixture) -> None:
    with pytest.raises(Forbidden):
        await import_learners(tenant_a.member_ctx, GOOD.encode())
    assert await _learners(tenant_a) == []


async def test_a_large_file_is_written_by_a_task_with_progress(
    tenant_a: TenantFixture, queue: jobs.InProcessQueue
) -> None:
    count = SYNC_MAX_ROWS + 500
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
    await write_import(tenant_a.owner_ctx, data.encode(), "big.csv", _no_progress)
    assert len(await _learners(tenant_a)) == count


async def _no_progress(done: int, total: int) -> None:
    return None


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("learners 2026.csv", "learners 2026.csv"),
        ("a\x00b.csv", "ab.csv"),
        ("tab\there\r\n.csv", "tabhere.csv"),
        ("\u202eevil\u200b.csv", "evil.csv"),  # format characters too: no reversed names
        ("Élèves été.csv", "Élèves été.csv"),
        ("  spaced.csv  ", "spaced.csv"),
        ("", DEFAULT_FILENAME),
        ("\x00\x1f\x7f", DEFAULT_FILENAME),
        ("   ", DEFAULT_FILENAME),
        ("x" * 300, "x" * FILENAME_MAX_LENGTH),
    ],
)
def test_the_file_name_is_kept_without_control_characters_and_bounded(name: str, kept: str) -> None:
    assert clean_filename(name) == kept


async def test_a_large_file_with_a_nul_in_its_name_is_written_by_its_task(
    tenant_a: TenantFixture, queue: jobs.InProcessQueue
) -> None:
    count = SYNC_MAX_ROWS + 1
    data = "name,email\n" + "".join(f"P{i},p{i}@example.org\n" for i in range(count))
    result = await import_learners(tenant_a.owner_ctx, data.encode(), filename="big\x00.csv")
    assert result.task_id is not None
    await queue.drain()
    task = await get_task(tenant_a.owner_ctx, result.task_id)
    assert task.status == "done"
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT details->>'file' AS file FROM audit_event "
            "WHERE tenant_id = $1 AND action = 'learners.imported'",
            tenant_a.id,
        )
    assert [row["file"] for row in rows] == ["big.csv"]


def test_the_module_that_queues_the_import_job_registers_it() -> None:
    # A fresh process that imports only the import (a web process, say) can queue its job.
    script = (
        "from core.jobs import REGISTRY\n"
        "import campaigns.learner_import\n"
        "print('import_learners_file' in REGISTRY)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "True"
