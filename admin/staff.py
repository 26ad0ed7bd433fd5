"""Our own staff (superadmins only): who holds a back-office role, adding someone, changing a
role, disabling an account, resetting a lost second factor; and the staff trail (every staff
action, for whoever may read tenants).

Each change to a staff member has its own confirmation page: a reason, a tick to confirm,
then post-redirect-get. The rules (never oneself, never the last superadmin) are in
`tenants.staff`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from core.errors import Invalid, UserError
from core.i18n import N_
from core.settings import get_settings
from tenants import staff as staff_service
from tenants.context import StaffContext
from tenants.permissions import StaffPermission, StaffRole
from tenants.staff_trail import dangerously_staff_trail
from web.guards import StaffCtx
from web.pages import flash, form_error, form_of, redirect, render

STAFF_MANAGE = {"permission": StaffPermission.STAFF_MANAGE}
TENANTS_READ = {"permission": StaffPermission.TENANTS_READ}

#: The roles as the forms offer them (labels translated in the templates).
ROLES = [
    (StaffRole.SUPERADMIN.value, "Superadmin"),
    (StaffRole.ACCOUNT_MANAGER.value, "Account manager"),
    (StaffRole.SUPPORT.value, "Support"),
    (StaffRole.CONTENT_EDITOR.value, "Content editor"),
]
CONFIRM = "Tick the box to confirm."


def _confirmed(form: dict[str, str]) -> None:
    if not form.get("confirm"):
        raise Invalid(CONFIRM, field="confirm")


async def _list_page(
    request: Request[Any, Any, Any],
    staff: StaffContext,
    *,
    error: UserError | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    members = await staff_service.list_staff(staff)
    context: dict[str, Any] = {"section": "staff", "members": members, "roles": ROLES}
    if error is not None:
        return form_error(request, "admin/staff.html", error, values or {}, **context)
    return render(request, "admin/staff.html", values={"role": "support"}, **context)


@get("/staff", opt=STAFF_MANAGE, name="admin_staff")
async def staff_list(request: Request[Any, Any, Any], staff: StaffCtx) -> Template:
    return await _list_page(request, staff)


@post("/staff", opt=STAFF_MANAGE, status_code=303)
async def staff_create(request: Request[Any, Any, Any], staff: StaffCtx) -> Template | Redirect:
    form = await form_of(request)
    try:
        member = await staff_service.create_staff(
            staff, form.get("email", ""), form.get("name", ""), form.get("role", ""), get_settings()
        )
    except UserError as error:
        return await _list_page(request, staff, error=error, values=form)
    flash(request, "{email} is now on the staff.", email=member.email)
    return redirect("/admin/staff")


#: The changes a superadmin can make to a staff member, each on its own confirmation page.
ACTIONS = {
    "role": "Change the role",
    "disable": "Disable the account",
    "reset-second-factor": "Reset the second factor",
}


async def _action_page(
    request: Request[Any, Any, Any],
    staff: StaffContext,
    user_id: UUID,
    action: str,
    *,
    error: UserError | None = None,
    values: dict[str, str] | None = None,
) -> Template:
    member = await staff_service.staff_member_by_id(staff, user_id)
    context: dict[str, Any] = {
        "section": "staff",
        "member": member,
        "action": action,
        "title": ACTIONS[action],
        "roles": ROLES,
    }
    if error is not None:
        return form_error(request, "admin/staff_action.html", error, values or {}, **context)
    return render(request, "admin/staff_action.html", values={"role": member.role}, **context)


async def _act(
    request: Request[Any, Any, Any], staff: StaffContext, user_id: UUID, action: str
) -> Template | Redirect:
    form = await form_of(request)
    reason = form.get("reason", "")
    try:
        staff_service.clean_reason(reason)
        _confirmed(form)
        if action == "role":
            await staff_service.change_staff_role(staff, user_id, form.get("role", ""), reason)
        elif action == "disable":
            await staff_service.disable_staff(staff, user_id, reason)
        else:
            await staff_service.reset_second_factor(staff, user_id, reason)
    except UserError as error:
        return await _action_page(request, staff, user_id, action, error=error, values=form)
    flash(request, _DONE[action])
    return redirect("/admin/staff")


#: What each action on a staff member says once done (marked for translation).
_DONE = {
    "role": N_("The role has been changed."),
    "disable": N_("The account no longer has access to the back office."),
    "reset-second-factor": N_(
        "The second factor has been reset: it is set up again at the next sign-in."
    ),
}


@get("/staff/{user_id:uuid}/role", opt=STAFF_MANAGE)
async def role_page(
    request: Request[Any, Any, Any], staff: StaffCtx, user_id: FromPath[UUID]
) -> Template:
    return await _action_page(request, staff, user_id, "role")


@post("/staff/{user_id:uuid}/role", opt=STAFF_MANAGE, status_code=303)
async def role_change(
    request: Request[Any, Any, Any], staff: StaffCtx, user_id: FromPath[UUID]
) -> Template | Redirect:
    return await _act(request, staff, user_id, "role")


@get("/staff/{user_id:uuid}/disable", opt=STAFF_MANAGE)
async def disable_page(
    request: Request[Any, Any, Any], staff: StaffCtx, user_id: FromPath[UUID]
) -> Template:
    return await _action_page(request, staff, user_id, "disable")


@post("/staff/{user_id:uuid}/disable", opt=STAFF_MANAGE, status_code=303)
async def disable(
    request: Request[Any, Any, Any], staff: StaffCtx, user_id: FromPath[UUID]
) -> Template | Redirect:
    return await _act(request, staff, user_id, "disable")


@get("/staff/{user_id:uuid}/reset-second-factor", opt=STAFF_MANAGE)
async def reset_page(
    request: Request[Any, Any, Any], staff: StaffCtx, user_id: FromPath[UUID]
) -> Template:
    return await _action_page(request, staff, user_id, "reset-second-factor")


@post("/staff/{user_id:uuid}/reset-second-factor", opt=STAFF_MANAGE, status_code=303)
async def reset(
    request: Request[Any, Any, Any], staff: StaffCtx, user_id: FromPath[UUID]
) -> Template | Redirect:
    return await _act(request, staff, user_id, "reset-second-factor")


@get("/trail", opt=TENANTS_READ, name="admin_trail")
async def trail(
    request: Request[Any, Any, Any], staff: StaffCtx, tenant: FromQuery[str | None] = None
) -> Template:
    """The staff trail, newest first; `?tenant=<organization id>` narrows it to one."""
    tenant_id: UUID | None = None
    values = {"tenant": tenant or ""}
    if tenant and tenant.strip():
        try:
            tenant_id = UUID(tenant.strip())
        except ValueError:
            error = Invalid("Enter an organization id (a UUID).", field="tenant")
            return form_error(
                request,
                "admin/trail.html",
                error,
                values,
                section="trail",
                entries=[],
                roles=dict(ROLES),
            )
    entries = await dangerously_staff_trail(staff, tenant_id=tenant_id, limit=200)
    return render(
        request,
        "admin/trail.html",
        section="trail",
        entries=entries,
        values=values,
        roles=dict(ROLES),
    )


handlers: list[Any] = [
    staff_list,
    staff_create,
    role_page,
    role_change,
    disable_page,
    disable,
    reset_page,
    reset,
    trail,
]
