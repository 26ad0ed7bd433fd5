"""Read-only impersonation: a staff member opens a tenant's console as its owner would see
it, for a reason, for a limited time (`settings.impersonation_minutes`).

The session holds it (`web.guards.IMPERSONATION_SESSION`); the tenant guard
(`web.guards._impersonation`) gives that console a read-only context with a banner, refuses
anything but a read, and the transactions are `READ ONLY` besides. Starting and stopping
are recorded in the tenant's audit log (as the service provider) and in the staff trail."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core.errors import Invalid, UserError
from core.settings import get_settings
from tenants import staff as staff_service
from tenants.context import StaffContext
from tenants.organizations import tenant_by_id
from tenants.permissions import StaffPermission
from web.guards import IMPERSONATION_SESSION, StaffCtx
from web.pages import flash, form_error, form_of, redirect, render, session_of

TENANTS_READ = {"permission": StaffPermission.TENANTS_READ}


@get("/tenants/{tenant_id:uuid}/actions/impersonate", opt=TENANTS_READ)
async def impersonate_page(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template:
    tenant = await tenant_by_id(tenant_id)
    return render(
        request,
        "admin/impersonate.html",
        section="tenants",
        target=tenant,
        minutes=get_settings().impersonation_minutes,
    )


@post("/tenants/{tenant_id:uuid}/actions/impersonate", opt=TENANTS_READ, status_code=303)
async def impersonate(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant_id: FromPath[UUID]
) -> Template | Redirect:
    form = await form_of(request)
    settings = get_settings()
    try:
        reason = staff_service.clean_reason(form.get("reason"))
        if not form.get("confirm"):
            raise Invalid("Tick the box to confirm.", field="confirm")
        await tenant_by_id(tenant_id)  # an unknown tenant ends nothing
        await _end_previous(request, staff)  # the previous view's "stopped" before "started"
        tenant = await staff_service.start_impersonation(staff, tenant_id, reason)
    except UserError as error:
        target = await tenant_by_id(tenant_id)
        return form_error(
            request,
            "admin/impersonate.html",
            error,
            form,
            section="tenants",
            target=target,
            minutes=settings.impersonation_minutes,
        )
    session_of(request)[IMPERSONATION_SESSION] = {
        "tenant_id": str(tenant.id),
        "slug": tenant.slug,
        "until": time.time() + settings.impersonation_minutes * 60,
        "reason": reason,
    }
    return redirect(f"/o/{tenant.slug}/")


async def _end_previous(request: Request[Any, Any, Any], staff: StaffContext) -> None:
    """A view already open ends as the next one starts (both audit logs say so)."""
    record = session_of(request).pop(IMPERSONATION_SESSION)
    if isinstance(record, dict) and "tenant_id" in record:
        await staff_service.stop_impersonation(
            staff, UUID(str(record["tenant_id"])), str(record.get("reason") or "ended")
        )


@post("/impersonation/stop", opt=TENANTS_READ, status_code=303)
async def stop(request: Request[Any, Any, Any], staff: StaffCtx) -> Redirect:
    """End the read-only view (the banner's button). Without one going on, back to the
    tenants."""
    session = session_of(request)
    record = session.get(IMPERSONATION_SESSION)
    session.pop(IMPERSONATION_SESSION)
    # A new id: a request still running under the old one cannot write the view back when
    # it saves its session (`web.sessions`: a session whose id is gone is not saved).
    session.rotate()
    if not isinstance(record, dict) or "tenant_id" not in record:
        return redirect("/admin/tenants")
    tenant_id = UUID(str(record["tenant_id"]))
    await staff_service.stop_impersonation(staff, tenant_id, str(record.get("reason") or "ended"))
    flash(request, "You are no longer viewing this organization.")
    return redirect(f"/admin/tenants/{tenant_id}")


handlers: list[Any] = [impersonate_page, impersonate, stop]
