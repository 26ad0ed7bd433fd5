"""The jobs page of the back office: what failed in the background, across organizations,
newest first (at most `LIMIT` of each), and a retry where one makes sense.

- Failed background tasks (`core.tasks`): listed, never retried from here. A task's job and
  arguments live only in the queue, and its input (an uploaded file: personal data) is
  deleted as soon as it fails (ADR 0014): the person who started it starts it again. The
  retry route says so (409) rather than pretend.
- Failed webhook deliveries (`tenants.webhooks.delivery`): sent again as the console's
  "Send again" does (`tenants.webhooks.endpoints.redeliver`), acting in the tenant as staff
  for a reason: the tenant's audit log and the staff trail both record `webhook.redelivered`
  with it.
- Jobs that failed for good (`core.outbox`, ADR 0025): every background job's last error,
  after its retries; listed, never retried from here (its own page above retries it when
  one makes sense).
- Gateway events set aside as dead letters (`billing.inbox`): given a fresh round of
  attempts (`gateway_event.retried` in the staff trail, with the reason). Payments: it needs
  `BILLING_MANAGE`.

Both retries are confirmed: the first post shows what will be retried and asks for the
reason, the confirmed one (`confirm=yes`) does it. The gateway and the event id in a path are
checked against their formats first (`admin.paths`): anything else is a 404.

Retries name the tenant in the path (`/jobs/tasks/{tenant_id}/{task_id}/retry`): an id of
another tenant's row under a tenant's id is a 404.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from admin.paths import GATEWAY, GATEWAY_EVENT_ID, path_token
from billing.inbox import dangerously_dead_letters, dangerously_retry_event
from core.errors import Conflict, Invalid, NotFound
from core.i18n import N_
from core.outbox import dangerously_failed_jobs
from core.tasks import find_task
from tenants.organizations import tenant_by_id
from tenants.permissions import StaffPermission
from tenants.staff import acting_in_tenant, with_reason
from tenants.tasks import dangerously_failed_tasks
from tenants.webhooks.delivery import dangerously_failed_deliveries, endpoint_of_delivery
from tenants.webhooks.endpoints import redeliver
from web.guards import StaffCtx
from web.pages import flash, form_error, form_of, redirect, render

TENANTS_READ = {"permission": StaffPermission.TENANTS_READ}
TENANTS_MANAGE = {"permission": StaffPermission.TENANTS_MANAGE}
BILLING_MANAGE = {"permission": StaffPermission.BILLING_MANAGE}

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
        failed_jobs=await dangerously_failed_jobs(LIMIT),
        limit=LIMIT,
        can_retry=staff.can(StaffPermission.TENANTS_MANAGE),
        can_retry_events=staff.can(StaffPermission.BILLING_MANAGE),
    )


def _confirm_page(
    request: Request[Any, Any, Any],
    form: dict[str, str],
    error: Invalid | None = None,
    **context: Any,
) -> Template:
    """The confirmation of a retry, with the reason to give (again, with `error`)."""
    if error is not None:
        return form_error(
            request, "admin/jobs_confirm.html", error, form, section="jobs", **context
        )
    return render(request, "admin/jobs_confirm.html", section="jobs", values=form, **context)


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
) -> Template | Redirect:
    tenant = await tenant_by_id(tenant_id)
    endpoint_id = await endpoint_of_delivery(acting_in_tenant(staff, tenant), delivery_id)
    form = await form_of(request)
    context: dict[str, Any] = {
        "kind": "delivery",
        "action": f"/admin/jobs/deliveries/{tenant.id}/{delivery_id}/retry",
        "tenant": tenant,
        "target": str(delivery_id),
    }
    if form.get("confirm") != "yes":
        return _confirm_page(request, form, **context)
    try:
        ctx = acting_in_tenant(with_reason(staff, form.get("reason", "")), tenant)
    except Invalid as error:
        return _confirm_page(request, form, error, **context)
    await redeliver(ctx, endpoint_id, delivery_id)
    flash(request, "The event is sent again, as a new delivery.")
    return redirect("/admin/jobs")


@post("/jobs/events/{gateway:str}/{event_id:str}/retry", opt=BILLING_MANAGE, status_code=303)
async def retry_event(
    request: Request[Any, Any, Any],
    gateway: FromPath[str],
    event_id: FromPath[str],
    staff: StaffCtx,
) -> Template | Redirect:
    path_token(gateway, GATEWAY)
    path_token(event_id, GATEWAY_EVENT_ID)
    form = await form_of(request)
    context: dict[str, Any] = {
        "kind": "event",
        "action": f"/admin/jobs/events/{gateway}/{event_id}/retry",
        "tenant": None,
        "target": f"{gateway} {event_id}",
    }
    if form.get("confirm") != "yes":
        return _confirm_page(request, form, **context)
    try:
        acting = with_reason(staff, form.get("reason", ""))
    except Invalid as error:
        return _confirm_page(request, form, error, **context)
    await dangerously_retry_event(acting, gateway, event_id)
    flash(request, "The gateway event is queued to be processed again.")
    return redirect("/admin/jobs")


handlers: list[Any] = [jobs_page, retry_task, retry_delivery, retry_event]
