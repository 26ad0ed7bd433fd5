"""Background tasks: long work a person starts (a large export, an import), run as a job, with
its progress shown and the file it produces kept in PostgreSQL for download (ADR 0014).

The whole API, for a domain package that has long work to do:

1. Write the work as a task job. It receives a `TaskRun` (the tenant, the task, and the
   context of the person who started it, rebuilt from their membership now) and the job's
   own arguments, which must be plain values (ids, strings)::

       @task_job
       async def export_results(run: TaskRun, campaign_id: str) -> None:
           ...
           await run.progress(done, total)          # every N rows; commits at once
           await run.finish("a.csv", "text/csv", file)   # bytes or a binary file object

   Raise a `core.errors.UserError` to fail the task with that (translatable) message; any
   other exception is retried by the job queue, and the task fails after the last try. A
   task already done or failed is not run again (jobs are idempotent). `read_input(run)`
   gives back the bytes given to `start_task(…, input=…)`, e.g. an uploaded CSV.

2. Start it from a service function: `task_id = await start_task(ctx, "kind", "job_name",
   [args], input=None, total=None)`. It joins the caller's open transaction when there is
   one (so the task starts with the change that needs it), opens one otherwise, records
   `task.started` in the audit log, and enqueues the job after commit.

3. Send the person to `/o/{slug}/tasks/{task_id}`: the page shows the progress, refreshes
   itself while the task runs, and offers the download once it is done.

The free functions `progress`, `finish` and `fail` take `(tenant_id, task_id, …)` for work
that has no `TaskRun` at hand. A task is seen by the person who started it and by those who
hold `org:tasks:read` (owners and admins); to anyone else it is the 404 of a missing one.
Result files expire after `JALON_TASK_FILE_DAYS`; `purge_expired_tasks` (hourly) deletes
them, fails tasks that stopped reporting progress, and forgets tasks after 90 days.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Literal
from uuid import UUID, uuid4

from core.database import (
    DB,
    SystemScope,
    detached_tenant_transaction,
    execute,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import Forbidden, Gone, NotFound, UserError
from core.i18n import N_
from core.ids import uuid_or_404
from core.jobs import MAX_TRIES, JobFunction, enqueue, every, job
from core.settings import get_settings
from tenants.accounts import get_user
from tenants.audit import record
from tenants.context import Actor, TenantContext
from tenants.organizations import dangerously_sweep_tenants
from tenants.permissions import Permission

TaskStatus = Literal["queued", "running", "done", "failed"]

#: Files are stored in parts of this many bytes (a bytea row each).
PART_SIZE = 1024 * 1024
#: A task that reported nothing for this long lost its worker (or waited that long in a busy
#: queue): the hourly purge fails it (ADR 0014).
STALE_AFTER = timedelta(hours=1)
#: Tasks (their rows) are forgotten this long after their file expired.
FORGET_AFTER = timedelta(days=90)
#: The most recent tasks listed.
LIST_LIMIT = 50

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
        return self.purged_at is not None or self.expires_at <= datetime.now(UTC)

    @property
    def downloadable(self) -> bool:
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
    params = row["message_params"]
    return Task(
        **{**row, "message_params": json.loads(params) if isinstance(params, str) else params}
    )


def _ids(tenant_id: UUID | str, task_id: UUID | str) -> tuple[UUID, UUID]:
    return UUID(str(tenant_id)), UUID(str(task_id))


@asynccontextmanager
async def _joined(ctx: TenantContext) -> AsyncIterator[None]:
    """The caller's open transaction (its tenant already set), or a new one for `ctx`."""
    if DB.current_transaction.get() is not None:
        yield
        return
    async with tenant_transaction(ctx):
        yield


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


async def start_task(
    ctx: TenantContext,
    kind: str,
    job_name: str,
    args: Sequence[str | int | float | bool | None] = (),
    *,
    input: bytes | None = None,
    total: int | None = None,
) -> UUID:
    """Queue a task of `kind` for the acting person; the job `job_name` (a `@task_job`) runs
    it with `args` once the transaction commits. Its id, for `/o/{slug}/tasks/{id}`."""
    if ctx.actor.user_id is None or ctx.role is None:
        raise Forbidden()
    task_id = uuid4()
    async with _joined(ctx):
        await execute(
            """INSERT INTO task (tenant_id, id, kind, total, created_by, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            ctx.tenant_id,
            task_id,
            kind,
            total,
            ctx.actor.user_id,
            _expiry(),
        )
        if input is not None:
            await _store(ctx.tenant_id, task_id, "input", input)
        await record(ctx, "task.started", "task", task_id, kind=kind)
        enqueue(job_name, str(ctx.tenant_id), str(task_id), *args, job_id=f"task:{task_id}")
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


def _visible_to(ctx: TenantContext) -> tuple[str, list[Any]]:
    """The condition (and its arguments from $3 on) for the tasks `ctx` may see."""
    if ctx.can(Permission.TASKS_READ):
        return "true", []
    return "created_by = $3", [ctx.actor.user_id]


async def get_task(ctx: TenantContext, task_id: UUID | str) -> Task:
    """The task, if its starter or a holder of `org:tasks:read` asks; `NotFound` alike for a
    missing task, another tenant's and another person's."""
    if ctx.role is None:
        raise Forbidden()
    ident = uuid_or_404(task_id)
    condition, args = _visible_to(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(
            # Both parts of the query are constants of this module.
            f"SELECT {_COLUMNS} FROM task WHERE tenant_id = $1 AND id = $2 AND {condition}",  # noqa: S608
            ctx.tenant_id,
            ident,
            *args,
        )
    if not rows:
        raise NotFound()
    return _task(rows[0])


async def list_tasks(ctx: TenantContext, limit: int = LIST_LIMIT) -> list[Task]:
    """The most recent tasks `ctx` may see, newest first."""
    if ctx.role is None:
        raise Forbidden()
    condition, args = _visible_to(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(
            # Both parts of the query are constants of this module.
            f"SELECT {_COLUMNS} FROM task WHERE tenant_id = $1 AND $2::int > 0 AND {condition} "  # noqa: S608
            "ORDER BY created_at DESC, id DESC LIMIT $2",
            ctx.tenant_id,
            limit,
            *args,
        )
    return [_task(row) for row in rows]


async def download(ctx: TenantContext, task_id: UUID | str) -> tuple[Task, AsyncIterator[bytes]]:
    """The task and the parts of its result file, read one at a time while they are sent.
    `NotFound` when it has none (yet), `Gone` once it expired."""
    task = await get_task(ctx, task_id)
    if task.status != "done" or task.file_name is None:
        raise NotFound("This task has no file to download.")
    if task.expired:
        raise Gone("This file has expired: start the task again.")
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT part FROM task_file WHERE tenant_id = $1 AND task_id = $2
               AND role = 'result' ORDER BY part""",
            ctx.tenant_id,
            task.id,
        )
    parts = [row["part"] for row in rows]

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            async with tenant_transaction(ctx):
                found = await fetch(
                    """SELECT data FROM task_file WHERE tenant_id = $1 AND task_id = $2
                       AND role = 'result' AND part = $3""",
                    ctx.tenant_id,
                    task.id,
                    part,
                )
            if found:
                yield bytes(found[0]["data"])

    return task, chunks()


# --- running tasks -------------------------------------------------------------------


@dataclass
class TaskRun:
    """What a task job works with: its ids and the context of the person who started it."""

    tenant_id: UUID
    task_id: UUID
    ctx: TenantContext
    finished: bool = field(default=False)

    async def progress(self, done: int, total: int | None = None) -> None:
        await progress(self.tenant_id, self.task_id, done, total)

    async def finish(
        self,
        filename: str | None = None,
        content_type: str | None = None,
        data: bytes | IO[bytes] | None = None,
    ) -> None:
        await finish(self.tenant_id, self.task_id, filename, content_type, data)
        self.finished = True


async def _claim(tenant_id: UUID, task_id: UUID) -> UUID | None:
    """Mark the task running (again, after a retry: progress starts over); who started it.
    None when it is missing or has already ended."""
    async with tenant_transaction(SystemScope(tenant_id)):
        rows = await fetch(
            """UPDATE task SET status = 'running', done = 0,
                   started_at = coalesce(started_at, now()), updated_at = now()
               WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running')
               RETURNING created_by""",
            tenant_id,
            task_id,
        )
    if not rows or rows[0]["created_by"] is None:
        return None
    created_by: UUID = rows[0]["created_by"]
    return created_by


async def _starter_context(tenant_id: UUID, user_id: UUID) -> TenantContext:
    """The starter's context in the tenant as it is now: removed members' tasks fail."""
    from tenants.organizations import member_context

    user = await get_user(user_id)
    async with global_transaction():
        orgs = await fetch("SELECT slug FROM organization WHERE id = $1", tenant_id)
    if user is None or not orgs:
        raise UserError(LEFT)
    actor = Actor(kind="user", user_id=user.id, label=user.email)
    try:
        return await member_context(orgs[0]["slug"], user, actor)
    except NotFound:
        raise UserError(LEFT) from None


LEFT = N_("The person who started this task is no longer a member of the organization.")

TaskFunction = Callable[..., Awaitable[None]]


def task_job(function: TaskFunction) -> JobFunction:
    """Register `function(run: TaskRun, *args)` as a job that runs a task (see the module's
    documentation): it runs only while the task is queued or running, a `UserError` fails
    the task with its message, and the last failed try fails it with a generic one."""

    async def run(ctx: dict[str, Any], tenant_id: str, task_id: str, *args: Any) -> None:
        tenant, task = _ids(tenant_id, task_id)
        created_by = await _claim(tenant, task)
        if created_by is None:
            return
        try:
            task_run = TaskRun(tenant, task, await _starter_context(tenant, created_by))
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


@every(minutes=60)
async def purge_expired_tasks(ctx: dict[str, Any]) -> int:
    """Delete expired result files, fail tasks whose worker went silent, forget old tasks;
    tenant by tenant, as row-level security wants. How many tasks changed."""

    async def purge(tenant_id: UUID) -> int:
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

    return await dangerously_sweep_tenants(purge)
