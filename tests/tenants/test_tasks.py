"""Background tasks: their lifecycle, progress seen while the work's transaction is open,
failure, idempotence, expiry, who sees them, and row-level security between tenants."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from piccolo.table import Table

from core import database, jobs
from core.errors import Gone, NotFound, UserError
from core.jobs import MAX_TRIES, REGISTRY
from tenants import tasks
from tenants.members import remove_member
from tenants.piccolo_app import APP_CONFIG
from tenants.tasks import TaskRun, task_job
from tests.conftest import TenantFixture
from tests.db import as_tenant

#: What the test jobs saw of their own task while running, by task id.
SEEN: dict[UUID, dict[str, Any]] = {}


@task_job
async def _test_counting_task(run: TaskRun, total: int, outcome: str) -> None:
    """Counts to `total` inside a long transaction, reporting progress, then ends as told."""
    async with as_tenant(run.tenant_id):
        await database.fetch("SELECT 1")
        await run.progress(total // 2, total)
        # Another connection sees the progress although this transaction is still open.
        async with database.detached_tenant_transaction(database.SystemScope(run.tenant_id)):
            rows = await database.fetch(
                "SELECT status, done, total FROM task WHERE tenant_id = $1 AND id = $2",
                run.tenant_id,
                run.task_id,
            )
        SEEN[run.task_id] = {**rows[0], "role": run.ctx.role, "input": b""}
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


class HeldQueue:
    """A job queue that keeps what it is given, for the test to run when it chooses."""

    def __init__(self) -> None:
        self.held: list[tuple[str, tuple[Any, ...]]] = []

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        self.held.append((name, args))

    async def close(self) -> None:
        pass

    async def run(self, job_try: int = 1) -> None:
        held, self.held = self.held, []
        for name, args in held:
            await REGISTRY[name]({"job_try": job_try}, *args)


@pytest.fixture(autouse=True)
async def in_process(db: str) -> AsyncIterator[jobs.InProcessQueue]:
    """Jobs run in this process (the application's lifespan may have set Redis up)."""
    previous = jobs.get_queue()
    queue = jobs.InProcessQueue()
    jobs.use_queue(queue)
    yield queue
    await queue.drain()
    jobs.use_queue(previous)


@pytest.fixture
def held(in_process: jobs.InProcessQueue) -> Iterator[HeldQueue]:
    previous = jobs.get_queue()
    queue = HeldQueue()
    jobs.use_queue(queue)
    yield queue
    jobs.use_queue(previous)


LARGE = bytes(range(256)) * (10 * 1024 + 7)  # 2.5 MiB and a bit: three parts


async def _run(ctx: Any, outcome: str = "file", total: int = 10, **kwargs: Any) -> UUID:
    """Start a counting task and wait for its job (in-process, or held by the test)."""
    task_id = await tasks.start_task(
        ctx, "test.count", "_test_counting_task", [total, outcome], **kwargs
    )
    queue = jobs.get_queue()
    if isinstance(queue, HeldQueue):
        await queue.run()
    else:
        assert isinstance(queue, jobs.InProcessQueue)
        await queue.drain()
    return task_id


async def _body(ctx: Any, task_id: UUID) -> bytes:
    _, chunks = await tasks.download(ctx, task_id)
    return b"".join([chunk async for chunk in chunks])


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


async def test_a_task_runs_reports_progress_and_keeps_its_file(tenant_a: TenantFixture) -> None:
    ctx = tenant_a.member_ctx
    task_id = await _run(ctx, total=10)
    assert SEEN[task_id]["status"] == "running"
    assert (SEEN[task_id]["done"], SEEN[task_id]["total"]) == (5, 10)
    assert SEEN[task_id]["role"] == "member"  # the job acts as the person who started it
    task = await tasks.get_task(ctx, task_id)
    assert task.status == "done"
    assert (task.done, task.total, task.percent) == (10, 10, 100)
    assert (task.file_name, task.content_type, task.file_size) == ("count.txt", "text/plain", 13)
    assert task.created_by == tenant_a.member.id
    assert task.downloadable
    assert await _body(ctx, task_id) == b"counted to 10"
    assert next(t.id for t in await tasks.list_tasks(ctx)) == task_id
    async with as_tenant(tenant_a.id):
        events = await database.fetch(
            "SELECT action, target_id, details FROM audit_event WHERE tenant_id = $1 "
            "AND action = 'task.started'",
            tenant_a.id,
        )
    assert [(e["target_id"], e["details"]) for e in events] == [
        (str(task_id), '{"kind": "test.count"}')
    ]


async def test_large_files_and_inputs_are_stored_in_parts(tenant_a: TenantFixture) -> None:
    ctx = tenant_a.owner_ctx
    task_id = await _run(ctx, "large", input=LARGE)
    assert SEEN[task_id]["input"] == LARGE
    assert await _body(ctx, task_id) == LARGE
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


async def test_a_task_may_end_without_a_file(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a.owner_ctx, "nothing")
    task = await tasks.get_task(tenant_a.owner_ctx, task_id)
    assert task.status == "done"
    assert not task.downloadable
    with pytest.raises(NotFound):
        await tasks.download(tenant_a.owner_ctx, task_id)


async def test_a_user_error_fails_the_task_with_its_message(tenant_a: TenantFixture) -> None:
    task_id = await _run(tenant_a.owner_ctx, "refused")
    task = await tasks.get_task(tenant_a.owner_ctx, task_id)
    assert task.status == "failed"
    assert (task.message, task.message_params) == (
        "Nothing to count in {place}.",
        {"place": "the void"},
    )
    assert task.finished_at is not None
    with pytest.raises(NotFound):
        await tasks.download(tenant_a.owner_ctx, task_id)


async def test_a_crash_is_retried_and_fails_the_task_after_the_last_try(
    tenant_a: TenantFixture, held: HeldQueue
) -> None:
    ctx = tenant_a.owner_ctx
    task_id = await tasks.start_task(ctx, "test.count", "_test_counting_task", [4, "crash"])
    assert (await tasks.get_task(ctx, task_id)).status == "queued"
    [(_, args)] = held.held
    job = REGISTRY["_test_counting_task"]
    with pytest.raises(RuntimeError):
        await job({"job_try": 1}, *args)
    assert (await tasks.get_task(ctx, task_id)).status == "running"  # the queue retries it
    with pytest.raises(RuntimeError):
        await job({"job_try": MAX_TRIES}, *args)
    task = await tasks.get_task(ctx, task_id)
    assert (task.status, task.message) == ("failed", tasks.FAILED)
    await job({"job_try": 1}, *args)  # a stray retry finds the task ended and does nothing
    assert (await tasks.get_task(ctx, task_id)).status == "failed"


async def test_a_finished_task_is_not_run_again(tenant_a: TenantFixture) -> None:
    ctx = tenant_a.owner_ctx
    task_id = await _run(ctx, total=6)
    before = await tasks.get_task(ctx, task_id)
    SEEN.pop(task_id)
    await REGISTRY["_test_counting_task"]({}, str(ctx.tenant_id), str(task_id), 8, "file")
    assert task_id not in SEEN
    assert await tasks.get_task(ctx, task_id) == before
    assert not await tasks.finish(ctx.tenant_id, task_id, "x", "text/plain", b"x")
    assert not await tasks.fail(ctx.tenant_id, task_id, "Too late.")


async def test_the_task_of_a_removed_member_fails(tenant_a: TenantFixture, held: HeldQueue) -> None:
    task_id = await tasks.start_task(
        tenant_a.member_ctx, "test.count", "_test_counting_task", [2, "file"]
    )
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant_a.id,
            tenant_a.member.id,
        )
    await remove_member(tenant_a.owner_ctx, rows[0]["id"])
    await held.run()
    task = await tasks.get_task(tenant_a.owner_ctx, task_id)
    assert (task.status, task.message) == ("failed", tasks.LEFT)


async def test_people_see_their_own_tasks_and_admins_every_task(tenant_a: TenantFixture) -> None:
    mine = await _run(tenant_a.member_ctx)
    owners = await _run(tenant_a.owner_ctx)
    with pytest.raises(NotFound):
        await tasks.get_task(tenant_a.member_ctx, owners)
    assert [t.id for t in await tasks.list_tasks(tenant_a.member_ctx)] == [mine]
    assert (await tasks.get_task(tenant_a.owner_ctx, mine)).id == mine
    assert [t.id for t in await tasks.list_tasks(tenant_a.owner_ctx)] == [owners, mine]
    with pytest.raises(NotFound):
        await tasks.get_task(tenant_a.member_ctx, "not-a-uuid")


async def test_another_tenants_task_is_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    task_id = await _run(tenant_a.owner_ctx)
    with pytest.raises(NotFound):
        await tasks.get_task(tenant_b.owner_ctx, task_id)
    with pytest.raises(NotFound):
        await tasks.download(tenant_b.owner_ctx, task_id)
    assert await tasks.list_tasks(tenant_b.owner_ctx) == []
    # Row-level security, beneath the accessors: B's transaction sees none of A's rows, and
    # cannot mark A's task done with its own tenant set.
    async with as_tenant(tenant_b.id):
        assert await database.fetch("SELECT id FROM task WHERE id = $1", task_id) == []
        assert await database.fetch("SELECT 1 FROM task_file WHERE task_id = $1", task_id) == []
        changed = await database.execute("UPDATE task SET status = 'failed' WHERE id = $1", task_id)
    assert changed == "UPDATE 0"
    assert not await tasks.fail(tenant_b.id, task_id, "Hijacked.")
    assert (await tasks.get_task(tenant_a.owner_ctx, task_id)).status == "done"


async def test_an_unknown_task_is_not_run(tenant_a: TenantFixture) -> None:
    await REGISTRY["_test_counting_task"]({}, str(tenant_a.id), str(uuid4()), 2, "file")


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
    ctx = tenant_a.owner_ctx
    expired, fresh, forgotten = [await _run(ctx) for _ in range(3)]
    theirs = await _run(tenant_b.owner_ctx)
    silent = await tasks.start_task(ctx, "test.count", "_test_counting_task", [2, "file"])
    await held.run()  # runs the queued tasks; the silent one's job is lost below
    silent = await tasks.start_task(
        ctx, "test.count", "_test_counting_task", [2, "file"], input=b"names and emails"
    )
    lost = held.held
    await _age(tenant_a.id, expired, "expires_at", "1 minute")
    await _age(tenant_b.id, theirs, "expires_at", "1 minute")
    await _age(tenant_a.id, forgotten, "expires_at", "91 days")
    await _age(tenant_a.id, silent, "updated_at", "2 hours")

    changed = await tasks.purge_expired_tasks({})

    assert changed >= 5
    task = await tasks.get_task(ctx, expired)
    assert task.purged_at is not None
    assert task.expired
    assert not task.downloadable
    with pytest.raises(Gone):
        await tasks.download(ctx, expired)
    with pytest.raises(Gone):
        await tasks.download(tenant_b.owner_ctx, theirs)  # every tenant is purged
    assert await _body(ctx, fresh) == b"counted to 10"
    with pytest.raises(NotFound):
        await tasks.get_task(ctx, forgotten)
    task = await tasks.get_task(ctx, silent)
    assert (task.status, task.message) == ("failed", tasks.INTERRUPTED)
    async with as_tenant(tenant_a.id):
        left = await database.fetch(
            "SELECT task_id FROM task_file WHERE task_id = ANY($1::uuid[])",
            [expired, forgotten, silent],  # the silent task's input (personal data) too
        )
    assert left == []
    held.held = lost
    await held.run()  # the lost job, should it turn up after all, does nothing
    assert (await tasks.get_task(ctx, silent)).status == "failed"
