"""Background tasks: long work a person starts (a large export, an import), run as a job, with
its progress shown and the file it produces kept in PostgreSQL, in parts, for download
(ADR 0014). This module is the generic runner, and knows no organization or person:
`tenants.tasks` starts tasks for people (and audits it), rebuilds the starter's context for
the job, says who sees a task, and serves tasks to the console.

The whole API, for a domain package that has long work to do:

1. Write the work as a task job. It receives a `TaskRun` (the tenant, the task, and the
   context the work acts in) and the job's own arguments, which must be plain values (ids,
   strings). `acting_as(tenant_id, user_id)` gives that context when the job runs;
   `tenants.tasks.starter_context` rebuilds the starter's from their membership as it is
   then, so that someone removed in between has their task fail::

       @task_job(acting_as=starter_context)
       async def export_results(run: TaskRun[TenantContext], campaign_id: str) -> None:
           ...
           await run.progress(done, total)          # every N rows; commits at once
           await run.finish("a.csv", "text/csv", file)   # bytes or a binary file object

   Raise a `core.errors.UserError` to fail the task with that (translatable) message; any
   other exception is retried by the job queue, and the task fails after the last try. A
   task already done or failed is not run again (jobs are idempotent).
   `read_input(run.tenant_id, run.task_id)` gives back the bytes given to
   `start_task(…, input=…)`, e.g. an uploaded CSV.

2. Start it from a service function: `task_id = await tenants.tasks.start_task(ctx, "kind",
   "job_name", [args], input=None, total=None)`. It joins the caller's open transaction when
   there is one (so the task starts with the change that needs it), opens one otherwise,
   records `task.started` in the audit log, and enqueues the job after commit (through
   `create_task`, which does the same for a scope in an open transaction).

3. Send the person to `/o/{slug}/tasks/{task_id}`: the page shows the progress, refreshes
   itself while the task runs, and offers the download once it is done.

The free functions `progress`, `finish`, `fail` and `read_input` take `(tenant_id, task_id, …)`
for work that has no `TaskRun` at hand. Result files expire after `JALON_TASK_FILE_DAYS`;
`purge_tenant_tasks`, which the hourly `tenants.tasks.purge_expired_tasks` runs in every
tenant, deletes them, fails tasks that stopped reporting progress, and forgets tasks after
90 days.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Concatenate, Generic, Literal, TypeVar
from uuid import UUID, uuid4

from core.database import (
    SystemScope,
    TenantScope,
    dangerously_switch_tenant,
    detached_tenant_transaction,
    execute,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import UserError
from core.i18n import N_
from core.jobs import MAX_TRIES, JobFunction, enqueue, job
from core.settings import get_settings

TaskStatus = Literal["queued", "running", "done", "failed"]

#: Files are stored in parts of this many bytes (a bytea row each).
PART_SIZE = 1024 * 1024
#: A task that reported nothing for this long lost its worker (or waited that long in a busy
#: queue): the hourly purge fails it (ADR 0014).
STALE_AFTER = timedelta(hours=1)
#: Tasks (their rows) are forgotten this long after their file expired.
FORGET_AFTER = timedelta(days=90)

FAILED = N_("The task failed. Start it again; if it fails again, contact support.")
INTERRUPTED = N_("The task was interrupted. Start it again.")

_COLUMNS = """id, kind, status, done, total, message, message_params, file_name, content_type,
    file_size, created_by, created_at, started_at, updated_at, finished_at, expires_at,
    purged_at"""


@dataclass(frozen=True)
class Task:
    """A background task as its page shows it."""

    id: UUID
    kind: str
    status: TaskStatus
    done: int
    total: int | None
    message: str
    message_params: dict[str, Any]
    file_name: str | None
    content_type: str | None
    file_size: int | None
    created_by: UUID | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    expires_at: datetime
    purged_at: datetime | None

    @property
    def finished(self) -> bool:
        """Done or failed: the page stops refreshing itself."""
        return self.status in ("done", "failed")

    @property
    def expired(self) -> bool:
        """Its file was purged, or is past its expiry: no longer downloadable."""
        return self.purged_at is not None or self.expires_at <= datetime.now(UTC)

    @property
    def downloadable(self) -> bool:
        """Done, with a result file that has not expired."""
        return self.status == "done" and self.file_name is not None and not self.expired

    @property
    def percent(self) -> int | None:
        """How far along, 0 to 100, when the total is known."""
        if self.status == "done":
            return 100
        if not self.total:
            return None
        return min(100, self.done * 100 // self.total)


def _task(row: dict[str, Any]) -> Task:
    """The task of a `task` row (its message parameters as a dict, whether the driver gave
    the jsonb column as text or decoded)."""
    params = row["message_params"]
    return Task(
        **{**row, "message_params": json.loads(params) if isinstance(params, str) else params}
    )


def _ids(tenant_id: UUID | str, task_id: UUID | str) -> tuple[UUID, UUID]:
    return UUID(str(tenant_id)), UUID(str(task_id))


async def _store(tenant_id: UUID, task_id: UUID, role: str, data: bytes | IO[bytes]) -> int:
    """Write `data` as parts of the task's file (in the open transaction); its size."""
    await execute(
        "DELETE FROM task_file WHERE tenant_id = $1 AND task_id = $2 AND role = $3",
        tenant_id,
        task_id,
        role,
    )
    size, part = 0, 0
    while True:
        chunk = data[size : size + PART_SIZE] if isinstance(data, bytes) else data.read(PART_SIZE)
        if not chunk:
            return size
        await execute(
            "INSERT INTO task_file (tenant_id, task_id, role, part, data) "
            "VALUES ($1, $2, $3, $4, $5)",
            tenant_id,
            task_id,
            role,
            part,
            chunk,
        )
        size += len(chunk)
        part += 1


def _expiry() -> datetime:
    return datetime.now(UTC) + timedelta(days=get_settings().task_file_days)


async def create_task(
    scope: TenantScope,
    kind: str,
    job_name: str,
    args: Sequence[str | int | float | bool | None] = (),
    *,
    input: bytes | None = None,
    total: int | None = None,
) -> UUID:
    """Queue a task of `kind` started by the person of `scope`, in the caller's open
    transaction (the tenant of `scope` set); the job `job_name` (a `@task_job`) runs it with
    `args` once that transaction commits. Its id. `ValueError` when `scope` is no person."""
    if scope.user_id is None:
        raise ValueError("a task is started by a person, whom its job acts as")
    task_id = uuid4()
    await execute(
        """INSERT INTO task (tenant_id, id, kind, total, created_by, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        scope.tenant_id,
        task_id,
        kind,
        total,
        scope.user_id,
        _expiry(),
    )
    if input is not None:
        await _store(scope.tenant_id, task_id, "input", input)
    enqueue(job_name, str(scope.tenant_id), str(task_id), *args, job_id=f"task:{task_id}")
    return task_id


async def progress(
    tenant_id: UUID | str, task_id: UUID | str, done: int, total: int | None = None
) -> None:
    """Record that `done` of `total` items are through; committed at once, on a connection
    of its own, so the task's page sees it even while the work's transaction is open."""
    tenant, task = _ids(tenant_id, task_id)
    async with detached_tenant_transaction(SystemScope(tenant)):
        await execute(
            """UPDATE task SET done = $3, total = coalesce($4, total), updated_at = now()
               WHERE tenant_id = $1 AND id = $2 AND status = 'running'""",
            tenant,
            task,
            max(done, 0),
            total,
        )


async def finish(
    tenant_id: UUID | str,
    task_id: UUID | str,
    filename: str | None = None,
    content_type: str | None = None,
    data: bytes | IO[bytes] | None = None,
) -> bool:
    """Mark the task done, keeping `data` (bytes, or a binary file read in parts) as its
    result file named `filename`; its input is deleted. False when it had already ended."""
    tenant, task = _ids(tenant_id, task_id)
    async with detached_tenant_transaction(SystemScope(tenant)):
        rows = await fetch(
            "SELECT status FROM task WHERE tenant_id = $1 AND id = $2 FOR UPDATE", tenant, task
        )
        if not rows or rows[0]["status"] not in ("queued", "running"):
            return False
        size = await _store(tenant, task, "result", data) if data is not None else None
        await execute(
            "DELETE FROM task_file WHERE tenant_id = $1 AND task_id = $2 AND role = 'input'",
            tenant,
            task,
        )
        await execute(
            """UPDATE task SET status = 'done', done = greatest(done, coalesce(total, 0)),
                   file_name = $3, content_type = $4, file_size = $5, finished_at = now(),
                   updated_at = now(), expires_at = $6
               WHERE tenant_id = $1 AND id = $2""",
            tenant,
            task,
            filename if data is not None else None,
            content_type if data is not None else None,
            size,
            _expiry(),
        )
    return True


async def fail(tenant_id: UUID | str, task_id: UUID | str, message: str, **params: Any) -> bool:
    """Mark the task failed with `message` (a msgid, translated where it is shown, with its
    `{name}` `params`); its input is deleted. False when it had already ended."""
    tenant, task = _ids(tenant_id, task_id)
    async with detached_tenant_transaction(SystemScope(tenant)):
        status = await execute(
            """UPDATE task SET status = 'failed', message = $3, message_params = $4::jsonb,
                   finished_at = now(), updated_at = now()
               WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running')""",
            tenant,
            task,
            message,
            json.dumps(params, default=str),
        )
        await execute(
            "DELETE FROM task_file WHERE tenant_id = $1 AND task_id = $2 AND role = 'input'",
            tenant,
            task,
        )
    return status == "UPDATE 1"


async def read_input(tenant_id: UUID | str, task_id: UUID | str) -> bytes:
    """The bytes given to `start_task(…, input=…)` (empty when there were none)."""
    tenant, task = _ids(tenant_id, task_id)
    async with detached_tenant_transaction(SystemScope(tenant)):
        rows = await fetch(
            """SELECT data FROM task_file WHERE tenant_id = $1 AND task_id = $2
               AND role = 'input' ORDER BY part""",
            tenant,
            task,
        )
    return b"".join(row["data"] for row in rows)


# --- reading tasks -------------------------------------------------------------------
# Who may read which task is the caller's rule (`tenants.tasks`); these read the tenant's.


async def find_task(scope: TenantScope, task_id: UUID) -> Task | None:
    """The tenant's task `task_id`, whoever started it; None when it has none of that id."""
    async with tenant_transaction(scope):
        rows = await fetch(
            # Both parts of the query are constants of this module.
            f"SELECT {_COLUMNS} FROM task WHERE tenant_id = $1 AND id = $2",  # noqa: S608
            scope.tenant_id,
            task_id,
        )
    return _task(rows[0]) if rows else None


async def recent_tasks(
    scope: TenantScope, limit: int, *, started_by: UUID | None = None
) -> list[Task]:
    """The tenant's `limit` most recent tasks, newest first; only those the person
    `started_by` started, when given."""
    condition = "true" if started_by is None else "created_by = $3"
    args = [] if started_by is None else [started_by]
    async with tenant_transaction(scope):
        rows = await fetch(
            # Both parts of the query are constants of this module.
            f"SELECT {_COLUMNS} FROM task WHERE tenant_id = $1 AND $2::int > 0 AND {condition} "  # noqa: S608
            "ORDER BY created_at DESC, id DESC LIMIT $2",
            scope.tenant_id,
            limit,
            *args,
        )
    return [_task(row) for row in rows]


async def dangerously_failed_tasks(
    tenant_ids: Sequence[UUID], limit: int = 100, *, user_id: UUID | None = None
) -> list[tuple[UUID, Task]]:
    """The `limit` most recently failed tasks of the tenants `tenant_ids`, newest first, as
    (tenant id, task): for the back office, whose caller checks the staff permission
    (`tenants.tasks.dangerously_failed_tasks`).

    Tasks are tenant-owned, under row-level security: one read transaction (acting as
    `user_id`) switches its tenant to each in turn and reads at most `limit` failed tasks
    there (the `task_recent` index), then keeps the newest `limit` of them all.
    """
    found: list[tuple[UUID, Task]] = []
    async with global_transaction(user_id):
        for tenant_id in tenant_ids:
            await dangerously_switch_tenant(tenant_id)
            rows = await fetch(
                # Both parts of the query are constants of this module.
                f"SELECT {_COLUMNS} FROM task WHERE tenant_id = $1 AND status = 'failed' "  # noqa: S608
                "ORDER BY created_at DESC, id DESC LIMIT $2",
                tenant_id,
                limit,
            )
            found.extend((tenant_id, _task(row)) for row in rows)
    found.sort(key=lambda pair: pair[1].finished_at or pair[1].updated_at, reverse=True)
    return found[:limit]


async def result_file(scope: TenantScope, task_id: UUID) -> AsyncIterator[bytes]:
    """The parts of the task's result file, in order, each read in a transaction of its own
    while they are sent (the list of parts is read now). Nothing when it has none."""
    async with tenant_transaction(scope):
        rows = await fetch(
            """SELECT part FROM task_file WHERE tenant_id = $1 AND task_id = $2
               AND role = 'result' ORDER BY part""",
            scope.tenant_id,
            task_id,
        )
    parts = [row["part"] for row in rows]

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            async with tenant_transaction(scope):
                found = await fetch(
                    """SELECT data FROM task_file WHERE tenant_id = $1 AND task_id = $2
                       AND role = 'result' AND part = $3""",
                    scope.tenant_id,
                    task_id,
                    part,
                )
            if found:
                yield bytes(found[0]["data"])

    return chunks()


# --- running tasks -------------------------------------------------------------------

ScopeT = TypeVar("ScopeT", bound=TenantScope)


@dataclass
class TaskRun(Generic[ScopeT]):
    """What a task job works with: its ids and the context it acts in (`acting_as`'s)."""

    tenant_id: UUID
    task_id: UUID
    ctx: ScopeT
    finished: bool = field(default=False)

    async def progress(self, done: int, total: int | None = None) -> None:
        """Record the task's progress (see `progress`)."""
        await progress(self.tenant_id, self.task_id, done, total)

    async def finish(
        self,
        filename: str | None = None,
        content_type: str | None = None,
        data: bytes | IO[bytes] | None = None,
    ) -> None:
        """Mark the task done with its result file, if any (see `finish`)."""
        await finish(self.tenant_id, self.task_id, filename, content_type, data)
        self.finished = True


async def _claim(tenant_id: UUID, task_id: UUID) -> UUID | None:
    """Mark the task running (again, after a retry: progress starts over); who started it.
    None when it is missing or has already ended."""
    async with tenant_transaction(SystemScope(tenant_id)):
        # The time is a parameter: Citus refuses now() inside COALESCE of an UPDATE (ADR 0002).
        rows = await fetch(
            """UPDATE task SET status = 'running', done = 0,
                   started_at = coalesce(started_at, $3), updated_at = $3
               WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running')
               RETURNING created_by""",
            tenant_id,
            task_id,
            datetime.now(UTC),
        )
    if not rows or rows[0]["created_by"] is None:
        return None
    created_by: UUID = rows[0]["created_by"]
    return created_by


#: Gives the context a task's job acts in, from `(tenant_id, id of the person who started
#: it)`; a `UserError` it raises fails the task with its message.
ActingAs = Callable[[UUID, UUID], Awaitable[ScopeT]]
TaskFunction = Callable[Concatenate[TaskRun[ScopeT], ...], Awaitable[None]]


def task_job(*, acting_as: ActingAs[ScopeT]) -> Callable[[TaskFunction[ScopeT]], JobFunction]:
    """A decorator registering `function(run: TaskRun, *args)` as a job that runs a task (see
    the module's documentation), acting in the context `acting_as` gives when it runs: it runs
    only while the task is queued or running, a `UserError` fails the task with its message,
    and the last failed try fails it with a generic one."""

    def register(function: TaskFunction[ScopeT]) -> JobFunction:
        async def run(ctx: dict[str, Any], tenant_id: str, task_id: str, *args: Any) -> None:
            tenant, task = _ids(tenant_id, task_id)
            created_by = await _claim(tenant, task)
            if created_by is None:
                return
            try:
                task_run = TaskRun(tenant, task, await acting_as(tenant, created_by))
                await function(task_run, *args)
            except UserError as error:
                await fail(tenant, task, error.message, **error.params)
                return
            except Exception:
                if int(ctx.get("job_try", 1)) >= MAX_TRIES:
                    await fail(tenant, task, FAILED)
                raise
            if not task_run.finished:
                await finish(tenant, task)

        run.__name__ = function.__name__
        run.__qualname__ = function.__qualname__
        run.__doc__ = function.__doc__
        return job(run)

    return register


async def purge_tenant_tasks(tenant_id: UUID) -> int:
    """In the open transaction of tenant `tenant_id` (row-level security has no cross-tenant
    delete): delete expired result files, fail tasks whose worker went silent, delete the
    inputs of ended tasks, forget old tasks. How many tasks changed."""
    await execute(
        """DELETE FROM task_file f USING task t
           WHERE t.tenant_id = $1 AND f.tenant_id = $1 AND f.task_id = t.id
             AND t.expires_at <= now() AND t.purged_at IS NULL""",
        tenant_id,
    )
    purged = await execute(
        """UPDATE task SET purged_at = now()
           WHERE tenant_id = $1 AND expires_at <= now() AND purged_at IS NULL""",
        tenant_id,
    )
    stale = await execute(
        """UPDATE task SET status = 'failed', message = $2, finished_at = now(),
               updated_at = now()
           WHERE tenant_id = $1 AND status IN ('queued', 'running')
             AND updated_at < now() - $3::interval""",
        tenant_id,
        INTERRUPTED,
        STALE_AFTER,
    )
    # a task's input (an uploaded file: personal data) goes as soon as the task ends,
    # this way too (ADR 0014)
    await execute(
        """DELETE FROM task_file f USING task t
           WHERE t.tenant_id = $1 AND f.tenant_id = $1 AND f.task_id = t.id
             AND f.role = 'input' AND t.status IN ('done', 'failed')""",
        tenant_id,
    )
    forgotten = await execute(
        "DELETE FROM task WHERE tenant_id = $1 AND expires_at < now() - $2::interval",
        tenant_id,
        FORGET_AFTER,
    )
    return sum(int(status.split()[-1]) for status in (purged, stale, forgotten))
