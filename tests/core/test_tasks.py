"""The background-task runner: a task's lifecycle, progress seen while the work's transaction
is open, files in parts, failure and retries, idempotence, expiry, and row-level security
between tenants. Who sees a task, the audit log and the console are `tests/tenants`'s."""

from __future__ import annotations

import io
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from piccolo.table import Table

from core import database, jobs, tasks
from core.database import SystemScope
from core.errors import UserError
from core.jobs import MAX_TRIES, REGISTRY
from core.piccolo_app import APP_CONFIG
from core.tasks import Task, TaskRun, task_job
from tests.conftest import HeldQueue, TenantFixture
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")

#: What the test job saw of its own task while running, by task id.
SEEN: dict[UUID, dict[str, Any]] = {}
#: Whom `_acting_as` was asked to act as: (tenant id, person).
ACTED_AS: list[tuple[UUID, UUID]] = []
#: People `_acting_as` refuses, as a starter no longer allowed would be.
REFUSED: set[UUID] = set()


async def _acting_as(tenant_id: UUID, user_id: UUID) -> SystemScope:
    ACTED_AS.append((tenant_id, user_id))
    if user_id in REFUSED:
        raise UserError("{person} may no longer do this.", person="Someone")
    return SystemScope(tenant_id, user_id)


@task_job(acting_as=_acting_as)
async def _test_counting_task(run: TaskRun[SystemScope], total: int, outcome: str) -> None:
    """Counts to `total` inside a long transaction, reporting progress, then ends as told."""
    async with as_tenant(run.tenant_id):
        await database.fetch("SELECT 1")
        await run.progress(total // 2, total)
        # Another connection sees the progress although this transaction is still open.
        async with database.detached_tenant_transaction(SystemScope(run.tenant_id)):
            rows = await database.fetch(
                "SELECT status, done, total FROM task WHERE tenant_id = $1 AND id = $2",
                run.tenant_id,
                run.task_id,
            )
        SEEN[run.task_id] = {**rows[0], "ctx": run.ctx, "input": b""}
    SEEN[run.task_id]["input"] = await tasks.read_input(run.tenant_id, run.task_id)
    match outcome:
        case "file":
            await run.finish("count.txt", "text/plain", b"counted to %d" % total)
        case "large":
            await run.finish("large.bin", "application/octet-stream", io.BytesIO(LARGE))
        case "refused":
            raise UserError("Nothing to count in {place}.", place="the void")
        case "crash":
            raise RuntimeError("disk on fire")
        case _:
            pass  # ends without a file


LARGE = bytes(range(256)) * (10 * 1024 + 7)  # 2.5 MiB and a bit: three parts


async def _start(
    tenant: TenantFixture, outcome: str = "file", total: int = 10, **kwargs: Any
) -> UUID:
    """Queue a counting task started by the tenant's owner (its job runs after commit)."""
    scope = SystemScope(tenant.id, tenant.owner.id)
    async with as_tenant(tenant.id, tenant.owner.id):
        return await tasks.create_task(
            scope, "test.count", "_test_counting_task", [total, outcome], **kwargs
        )


async def _run(
    tenant: TenantFixture, outcome: str = "file", total: int = 10, **kwargs: Any
) -> UUID:
    """Start a counting task and wait for its job (in-process, or held by the test)."""
    task_id = await _start(tenant, outcome, total, **kwargs)
    queue = jobs.get_queue()
    if isinstance(queue, HeldQueue):
        await queue.run()
    else:
        assert isinstance(queue, jobs.InProcessQueue)
        await queue.drain()
    return task_id


async def _task(tenant_id: UUID, task_id: UUID) -> Task:
    task = await tasks.find_task(SystemScope(tenant_id), task_id)
    assert task is not None
    return task


async def _body(tenant_id: UUID, task_id: UUID) -> bytes:
    chunks = await tasks.result_file(SystemScope(tenant_id), task_id)
    return b"".join([chunk async for chunk in chunks])


# --- the task as its page shows it (pure) -----------------------------------------------

NOW = datetime.now(UTC)
A_TASK = Task(
    id=uuid4(),
    kind="test.count",
    status="running",
    done=3,
    total=8,
    message="",
    message_params={},
    file_name=None,
    content_type=None,
    file_size=None,
    created_by=None,
    created_at=NOW,
    started_at=NOW,
    updated_at=NOW,
    finished_at=None,
    expires_at=NOW + timedelta(days=7),
    purged_at=None,
)


def test_a_task_says_how_far_along_it_is() -> None:
    assert A_TASK.percent == 37
    assert replace(A_TASK, done=20).percent == 100  # never past the end
    assert replace(A_TASK, total=None).percent is None
    assert replace(A_TASK, total=0).percent is None
    assert replace(A_TASK, status="done", total=None).percent == 100


def test_a_task_is_finished_once_done_or_failed() -> None:
    assert [replace(A_TASK, status=s).finished for s in ("queued", "running")] == [False, False]
    assert [replace(A_TASK, status=s).finished for s in ("done", "failed")] == [True, True]


def test_a_file_is_downloadable_while_done_and_not_expired() -> None:
    done = replace(A_TASK, status="done", file_name="count.txt")
    assert done.downloadable
    assert not done.expired
    assert not replace(done, file_name=None).downloadable
    assert not replace(done, status="failed").downloadable
    purged = replace(done, purged_at=NOW)
    assert purged.expired
    assert not purged.downloadable
    late = replace(done, expires_at=NOW - timedelta(seconds=1))
    assert late.expired
    assert not late.downloadable


def test_a_row_becomes_a_task_whether_its_parameters_come_as_text_or_decoded() -> None:
    row = asdict(A_TASK)
    as_text = tasks._task({**row, "message_params": '{"place": "the void"}'})
    decoded = tasks._task({**row, "message_params": {"place": "the void"}})
    assert as_text == decoded == replace(A_TASK, message_params={"place": "the void"})


# --- the runner -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table", [t for t in APP_CONFIG.table_classes if t._meta.tablename.startswith("task")]
)
async def test_the_mirror_matches_the_schema(table: type[Table], db: str) -> None:
    async with database.global_transaction():
        rows = await database.fetch(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = $1""",
            table._meta.tablename,
        )
    assert {row["column_name"] for row in rows} == {
        column._meta.db_column_name for column in table._meta.columns
    }


def test_core_lists_both_task_tables() -> None:
    names = {t._meta.tablename for t in APP_CONFIG.table_classes}
    assert {"task", "task_file"} <= names


async def test_a_task_runs_reports_progress_and_keeps_its_file(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a, total=10)
    assert SEEN[task_id]["status"] == "running"
    assert (SEEN[task_id]["done"], SEEN[task_id]["total"]) == (5, 10)
    # the job acts in what `acting_as` gave for the person who started the task
    assert SEEN[task_id]["ctx"] == SystemScope(tenant_a.id, tenant_a.owner.id)
    task = await _task(tenant_a.id, task_id)
    assert task.status == "done"
    assert (task.done, task.total, task.percent) == (10, 10, 100)
    assert (task.file_name, task.content_type, task.file_size) == ("count.txt", "text/plain", 13)
    assert task.created_by == tenant_a.owner.id
    assert task.started_at is not None
    assert task.finished_at is not None
    assert task.downloadable
    assert await _body(tenant_a.id, task_id) == b"counted to 10"
    recent = await tasks.recent_tasks(SystemScope(tenant_a.id), 5)
    assert recent[0].id == task_id
    mine = await tasks.recent_tasks(SystemScope(tenant_a.id), 5, started_by=tenant_a.owner.id)
    assert task_id in [t.id for t in mine]
    assert await tasks.recent_tasks(SystemScope(tenant_a.id), 5, started_by=uuid4()) == []
    assert await tasks.recent_tasks(SystemScope(tenant_a.id), 0) == []


async def test_a_task_is_started_by_a_person(tenant_a: TenantFixture) -> None:
    async with as_tenant(tenant_a.id):
        with pytest.raises(ValueError, match="person"):
            await tasks.create_task(SystemScope(tenant_a.id), "test.count", "_test_counting_task")


async def test_a_task_starts_with_the_transaction_that_starts_it(
    tenant_a: TenantFixture, held: HeldQueue
) -> None:
    scope = SystemScope(tenant_a.id, tenant_a.owner.id)
    started: list[UUID] = []

    async def start_then_fail() -> None:
        async with as_tenant(tenant_a.id, tenant_a.owner.id):
            started.append(
                await tasks.create_task(scope, "test.count", "_test_counting_task", [2, "x"])
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await start_then_fail()
    assert held.held == []  # enqueued after commit only
    assert await tasks.find_task(scope, started[0]) is None


async def test_large_files_and_inputs_are_stored_in_parts(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a, "large", input=LARGE)
    assert SEEN[task_id]["input"] == LARGE
    assert await _body(tenant_a.id, task_id) == LARGE
    async with as_tenant(tenant_a.id):
        parts = await database.fetch(
            "SELECT role, part, length(data) AS size FROM task_file "
            "WHERE tenant_id = $1 AND task_id = $2 ORDER BY role, part",
            tenant_a.id,
            task_id,
        )
    # The input is deleted once the task ends; the result is in parts of 1 MiB at most.
    assert [(p["role"], p["part"]) for p in parts] == [("result", 0), ("result", 1), ("result", 2)]
    assert max(p["size"] for p in parts) == tasks.PART_SIZE


async def test_a_task_without_input_reads_an_empty_one(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a, "nothing")
    assert SEEN[task_id]["input"] == b""


async def test_a_task_may_end_without_a_file(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a, "nothing")
    task = await _task(tenant_a.id, task_id)
    assert task.status == "done"
    assert task.file_name is None
    assert not task.downloadable
    assert await _body(tenant_a.id, task_id) == b""


async def test_a_user_error_fails_the_task_with_its_message(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a, "refused", input=b"names and emails")
    task = await _task(tenant_a.id, task_id)
    assert task.status == "failed"
    assert (task.message, task.message_params) == (
        "Nothing to count in {place}.",
        {"place": "the void"},
    )
    assert task.finished_at is not None
    assert not task.downloadable
    assert await tasks.read_input(tenant_a.id, task_id) == b""  # the input went with it


async def test_a_user_error_of_acting_as_fails_the_task(
    tenant_a: TenantFixture, held: HeldQueue
) -> None:
    task_id = await _start(tenant_a)
    REFUSED.add(tenant_a.owner.id)
    try:
        await held.run()
    finally:
        REFUSED.discard(tenant_a.owner.id)
    assert task_id not in SEEN
    task = await _task(tenant_a.id, task_id)
    assert (task.status, task.message, task.message_params) == (
        "failed",
        "{person} may no longer do this.",
        {"person": "Someone"},
    )


async def test_a_crash_is_retried_and_fails_the_task_after_the_last_try(
    tenant_a: TenantFixture, held: HeldQueue
) -> None:
    task_id = await _start(tenant_a, "crash", 4)
    assert (await _task(tenant_a.id, task_id)).status == "queued"
    [(_, args)] = held.held
    job = REGISTRY["_test_counting_task"]
    with pytest.raises(RuntimeError):
        await job({"job_try": 1}, *args)
    first = await _task(tenant_a.id, task_id)
    assert first.status == "running"  # the queue retries it
    assert first.started_at is not None
    with pytest.raises(RuntimeError):
        await job({"job_try": MAX_TRIES}, *args)
    task = await _task(tenant_a.id, task_id)
    assert (task.status, task.message) == ("failed", tasks.FAILED)
    assert task.started_at == first.started_at  # a retry keeps when the task first started
    await job({"job_try": 1}, *args)  # a stray retry finds the task ended and does nothing
    assert (await _task(tenant_a.id, task_id)).status == "failed"


async def test_a_finished_task_is_not_run_again(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a, total=6)
    before = await _task(tenant_a.id, task_id)
    SEEN.pop(task_id)
    await REGISTRY["_test_counting_task"]({}, str(tenant_a.id), str(task_id), 8, "file")
    assert task_id not in SEEN
    assert await _task(tenant_a.id, task_id) == before
    assert not await tasks.finish(tenant_a.id, task_id, "x", "text/plain", b"x")
    assert not await tasks.fail(tenant_a.id, task_id, "Too late.")


async def test_an_unknown_task_is_not_run(tenant_a: TenantFixture) -> None:
    unknown = uuid4()
    ACTED_AS.clear()
    await REGISTRY["_test_counting_task"]({}, str(tenant_a.id), str(unknown), 2, "file")
    assert ACTED_AS == []  # nobody to act as: the job stopped at its claim
    assert unknown not in SEEN
    assert await tasks.find_task(SystemScope(tenant_a.id), unknown) is None


async def test_another_tenants_task_is_invisible_and_unchangeable(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    task_id = await _run(tenant_a)
    assert await tasks.find_task(SystemScope(tenant_b.id), task_id) is None
    assert await _body(tenant_b.id, task_id) == b""
    assert task_id not in [t.id for t in await tasks.recent_tasks(SystemScope(tenant_b.id), 50)]
    # Row-level security, beneath the runner's own filters: B's transaction sees none of A's
    # rows, and cannot mark A's task done with its own tenant set.
    async with as_tenant(tenant_b.id):
        assert await database.fetch("SELECT id FROM task WHERE id = $1", task_id) == []
        assert await database.fetch("SELECT 1 FROM task_file WHERE task_id = $1", task_id) == []
        changed = await database.execute("UPDATE task SET status = 'failed' WHERE id = $1", task_id)
    assert changed == "UPDATE 0"
    assert not await tasks.fail(tenant_b.id, task_id, "Hijacked.")
    assert (await _task(tenant_a.id, task_id)).status == "done"


async def _age(tenant_id: UUID, task_id: UUID, column: str, interval: str) -> None:
    async with as_tenant(tenant_id):
        # `column` is one of this module's literals.
        await database.execute(
            f"UPDATE task SET {column} = now() - $2::text::interval WHERE id = $1",  # noqa: S608
            task_id,
            interval,
        )


async def test_the_purge_deletes_expired_files_and_fails_silent_tasks(
    tenant_a: TenantFixture, tenant_b: TenantFixture, held: HeldQueue
) -> None:
    expired, fresh, forgotten = [await _run(tenant_a) for _ in range(3)]
    theirs = await _run(tenant_b)
    silent = await _start(tenant_a, "file", 2, input=b"names and emails")
    lost = held.held  # the silent task's job is lost
    held.held = []
    await _age(tenant_a.id, expired, "expires_at", "1 minute")
    await _age(tenant_b.id, theirs, "expires_at", "1 minute")
    await _age(tenant_a.id, forgotten, "expires_at", "91 days")
    await _age(tenant_a.id, silent, "updated_at", "2 hours")

    async with as_tenant(tenant_a.id):
        changed = await tasks.purge_tenant_tasks(tenant_a.id)

    # expired and forgotten purged, silent failed, forgotten deleted; B's tasks untouched
    assert changed == 4
    task = await _task(tenant_a.id, expired)
    assert task.purged_at is not None
    assert task.expired
    assert not task.downloadable
    assert await _body(tenant_a.id, expired) == b""
    assert await _body(tenant_a.id, fresh) == b"counted to 10"
    assert await tasks.find_task(SystemScope(tenant_a.id), forgotten) is None
    task = await _task(tenant_a.id, silent)
    assert (task.status, task.message) == ("failed", tasks.INTERRUPTED)
    async with as_tenant(tenant_a.id):
        left = await database.fetch(
            "SELECT task_id FROM task_file WHERE task_id = ANY($1::uuid[])",
            [expired, forgotten, silent],  # the silent task's input (personal data) too
        )
    assert left == []
    # one tenant's purge leaves the others' tasks alone
    assert (await _task(tenant_b.id, theirs)).purged_at is None
    assert await _body(tenant_b.id, theirs) == b"counted to 10"
    held.held = lost
    await held.run()  # the lost job, should it turn up after all, does nothing
    assert (await _task(tenant_a.id, silent)).status == "failed"
