"""Background tasks for people of an organization: what the generic runner of `core.tasks`
(ADR 0014) needs of tenants. Its module documentation is the whole API; in short, a domain
package writes `@task_job(acting_as=starter_context)` over a job taking a
`TaskRun[TenantContext]`, and starts it with `start_task(ctx, "kind", "job_name", [args])`.

- `start_task` starts a task for the acting person, with `task.started` in the audit log.
- `starter_context` rebuilds, when the job runs, the context of the person who started the
  task from their membership as it is then: someone removed in between has their task fail
  rather than work with data they can no longer read.
- A task is seen by the person who started it and by those who hold `org:tasks:read`
  (owners and admins); to anyone else it is the 404 of a missing one. `get_task`,
  `list_tasks` and `download` serve the console's pages under `/o/{slug}/tasks`; every
  download of a task's file (an export of people's results…) is `task.file_downloaded` in
  the audit log, with the file's name and its rows.
- `purge_expired_tasks` (hourly) runs the runner's purge in every organization.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from core import tasks as runner
from core.database import DB, fetch, global_transaction, tenant_transaction
from core.errors import Forbidden, Gone, NotFound, UserError
from core.i18n import N_
from core.ids import uuid_or_404
from core.jobs import every
from core.tasks import Task
from tenants.accounts import get_user
from tenants.audit import record
from tenants.context import Actor, StaffContext, TenantContext, TenantSummary
from tenants.organizations import (
    SUMMARY_SQL,
    dangerously_sweep_tenants,
    member_context,
    summary,
    tenant_by_id,
)
from tenants.permissions import Permission, StaffPermission

#: The most recent tasks listed.
LIST_LIMIT = 50

LEFT = N_("The person who started this task is no longer a member of the organization.")


@asynccontextmanager
async def _joined(ctx: TenantContext) -> AsyncIterator[None]:
    """The caller's open transaction (its tenant already set), or a new one for `ctx`."""
    if DB.current_transaction.get() is not None:
        yield
        return
    async with tenant_transaction(ctx):
        yield


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
    it with `args` once the transaction commits. It joins the caller's open transaction, or
    opens one, and records `task.started`. Its id, for `/o/{slug}/tasks/{id}`."""
    if ctx.actor.user_id is None or ctx.role is None:
        raise Forbidden()
    async with _joined(ctx):
        task_id = await runner.create_task(ctx, kind, job_name, args, input=input, total=total)
        await record(ctx, "task.started", "task", task_id, kind=kind)
    return task_id


async def starter_context(tenant_id: UUID, user_id: UUID) -> TenantContext:
    """The context of the person `user_id` in the tenant as it is now, for a task job they
    started (`@task_job(acting_as=starter_context)`): a `UserError` that fails the task when
    they are no longer a member."""
    user = await get_user(user_id)
    if user is None:
        raise UserError(LEFT)
    actor = Actor(kind="user", user_id=user.id, label=user.email)
    try:
        tenant = await tenant_by_id(tenant_id)
        return await member_context(tenant.slug, user, actor)
    except NotFound:
        raise UserError(LEFT) from None


def may_see(ctx: TenantContext, task: Task) -> bool:
    """Whether `ctx` may see `task`: the person who started it, and holders of
    `org:tasks:read`."""
    if ctx.can(Permission.TASKS_READ):
        return True
    return ctx.actor.user_id is not None and task.created_by == ctx.actor.user_id


async def get_task(ctx: TenantContext, task_id: UUID | str) -> Task:
    """The task, if its starter or a holder of `org:tasks:read` asks; `NotFound` alike for a
    missing task, another tenant's and another person's."""
    if ctx.role is None:
        raise Forbidden()
    task = await runner.find_task(ctx, uuid_or_404(task_id))
    if task is None or not may_see(ctx, task):
        raise NotFound()
    return task


async def list_tasks(ctx: TenantContext, limit: int = LIST_LIMIT) -> list[Task]:
    """The most recent tasks `ctx` may see (as `may_see` says), newest first."""
    if ctx.role is None:
        raise Forbidden()
    if ctx.can(Permission.TASKS_READ):
        return await runner.recent_tasks(ctx, limit)
    if ctx.actor.user_id is None:
        return []  # no person: no task of their own
    return await runner.recent_tasks(ctx, limit, started_by=ctx.actor.user_id)


async def download(ctx: TenantContext, task_id: UUID | str) -> tuple[Task, AsyncIterator[bytes]]:
    """The task and the parts of its result file, read one at a time while they are sent,
    the download recorded in the audit log (who, which file, how many rows). `NotFound`
    when it has none (yet), `Gone` once it expired."""
    task = await get_task(ctx, task_id)
    if task.status != "done" or task.file_name is None:
        raise NotFound("This task has no file to download.")
    if task.expired:
        raise Gone("This file has expired: start the task again.")
    async with tenant_transaction(ctx):
        await record(
            ctx,
            "task.file_downloaded",
            "task",
            task.id,
            kind=task.kind,
            file=task.file_name,
            rows=task.done if task.total is None else task.total,
        )
    return task, await runner.result_file(ctx, task.id)


@every(minutes=60)
async def purge_expired_tasks(ctx: dict[str, Any]) -> int:
    """Delete expired result files, fail tasks whose worker went silent, forget old tasks;
    tenant by tenant, as row-level security wants. How many tasks changed."""
    return await dangerously_sweep_tenants(runner.purge_tenant_tasks)


async def dangerously_failed_tasks(
    staff: StaffContext, limit: int = 100
) -> list[tuple[TenantSummary, Task]]:
    """The most recently failed background tasks of every organization, newest first, for
    the back office's jobs page (`core.tasks.dangerously_failed_tasks` reads them tenant by
    tenant)."""
    staff.require(StaffPermission.TENANTS_READ)
    async with global_transaction(staff.user_id):
        rows = await fetch(SUMMARY_SQL + " ORDER BY id")
    tenants = {row["id"]: summary(row) for row in rows}
    failed = await runner.dangerously_failed_tasks(list(tenants), limit, user_id=staff.user_id)
    return [(tenants[tenant_id], task) for tenant_id, task in failed]
