"""The jobs page of the back office: what failed in the background, across organizations,
newest first (at most `LIMIT` of each), and a retry where one makes sense.

- Failed background tasks (`core.tasks`): listed, never retried from here. A task's job and
  arguments live only in the queue, and its input (an uploaded file: personal data) is
  deleted as soon as it fails (ADR 0014): the person who started it starts it again. The
  retry route says so (409) rather than pretend.
- Failed webhook deliveries (`tenants.webhooks.delivery`): sent again as the console's
  "Send again" does (`tenants.webhooks.endpoints.redeliver`), acting in the tenant as staff:
  the tenant's audit log and the staff trail both record `webhook.redelivered`.
- Gateway events set aside as dead letters (`billing.inbox`): given a fresh round of
  attempts (`gateway_event.retried` in the staff trail).

Retries name the tenant in the path (`/jobs/tasks/{tenant_id}/{task_id}/retry`): an id of
another tenant's row under a tenant's id is a 404.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from billing.inbox import dangerously_dead_letters, dangerously_retry_event
from core.errors import Conflict, NotFound
from core.i18n import N_
from core.tasks import find_task
from tenants.organizations import tenant_by_id
from tenants.permissions import StaffPermission
from tenants.staff import acting_in_tenant
from tenants.tasks import dangerously_failed_tasks
from tenants.webhooks.delivery import dangerously_failed_deliveries, endpoint_of_delivery
from tenants.webhooks.endpoints import redeliver
from web.guards import StaffCtx
from web.pages import flash, redirect, render

TENANTS_READ = {"permission": StaffPermission.TENANTS_READ}
TENANTS_MANAGE = {"permission": StaffPermission.TENANTS_MANAGE}

#: The most rows of each kind the page lists.
LIMIT = 100

TASK_NOT_RETRYABLE = N_(
    "A failed task cannot be retried from here: its input is deleted when it fails. "
    "The person who started it can start it again."
)


@get("/jobs", opt=TENANTS_READ, name="admin_jobs")
async def jobs_page(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    return render(
        request,
        "admin/jobs.html",
        section="jobs",
        tasks=await dangerously_failed_tasks(staff, LIMIT),
        deliveries=await dangerously_failed_deliveries(staff, LIMIT),
        events=await dangerously_dead_letters(staff, LIMIT),
        limit=LIMIT,
        can_retry=staff.can(StaffPermission.TENANTS_MANAGE),
    )


@post("/jobs/tasks/{tenant_id:uuid}/{task_id:uuid}/retry", opt=TENANTS_MANAGE, status_code=303)
async def retry_task(
    tenant_id: FromPath[UUID], task_id: FromPath[UUID], staff: StaffCtx
) -> Redirect:
    ctx = acting_in_tenant(staff, await tenant_by_id(tenant_id))
    task = await find_task(ctx, task_id)
    if task is None or task.status != "failed":
        raise NotFound()
    raise Conflict(TASK_NOT_RETRYABLE)


@post(
    "/jobs/deliveries/{tenant_id:uuid}/{delivery_id:uuid}/retry",
    opt=TENANTS_MANAGE,
    status_code=303,
)
async def retry_delivery(
    request: Request[Any, Any, Any],
    tenant_id: FromPath[UUID],
    delivery_id: FromPath[UUID],
    staff: StaffCtx,
) -> Redirect:
    ctx = acting_in_tenant(staff, await tenant_by_id(tenant_id))
    endpoint_id = await endpoint_of_delivery(ctx, delivery_id)
    await redeliver(ctx, endpoint_id, delivery_id)
    flash(request, "The event is sent again, as a new delivery.")
    return redirect("/admin/jobs")


@post("/jobs/events/{gateway:str}/{event_id:str}/retry", opt=TENANTS_MANAGE, status_code=303)
async def retry_event(
    request: Request[Any, Any, Any],
    gateway: FromPath[str],
    event_id: FromPath[str],
    staff: StaffCtx,
) -> Redirect:
    await dangerously_retry_event(staff, gateway, event_id)
    flash(request, "The gateway event is queued to be processed again.")
    return redirect("/admin/jobs")


handlers: list[Any] = [jobs_page, retry_task, retry_delivery, retry_event]
