"""Guards for every HTML front: a signed-in person, a tenant member, a staff member.

`signed_in` is a guard as it is. `tenant_member(permission)` and `staff_member(permission)`
make guards: the first resolves `/o/{slug}/…` to the person's context in that organization, the
second the person's staff context; each keeps the context for the handler (`Ctx`, `StaffCtx`).
A staff context needs the second factor passed in this session, and not gone idle
(`SecondFactorRequired`); a staff member impersonating a tenant gets that tenant's console
read-only (`tenant_member`).

They fail closed: the person must hold every permission named, the guard's and the one a
handler declares in `opt={"permission": …}` alike (a section's guard never stands in for a
stricter handler's), and a handler behind them that names none at all is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, get_args
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Template
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

from billing import seats
from core.errors import Forbidden, NotFound, Unauthenticated, UserError
from core.settings import get_settings
from tenants.accounts import UserAccount
from tenants.context import StaffContext, TenantContext
from tenants.organizations import member_context, tenant_by_id
from tenants.permissions import (
    Permission,
    Role,
    StaffPermission,
    permissions_of,
    staff_permissions_of,
)
from web.pages import actor_for, current_user, session_of

log = logging.getLogger(__name__)

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


class LoginRequired(Unauthenticated):
    """Raised for signed-out visitors of a page that needs an account: they are sent to sign in."""

    def __init__(self) -> None:
        super().__init__("Sign in to continue.")


class SecondFactorRequired(Unauthenticated):
    """Raised for a staff member whose session has not passed the second factor, or has been
    idle too long: they are sent to `SECOND_FACTOR_PATH` (JSON clients get a 401)."""

    def __init__(self) -> None:
        super().__init__("Confirm your identity with your authenticator app to continue.")


#: Where a staff member enters their TOTP code (or sets it up, the first time).
SECOND_FACTOR_PATH = "/admin/second-factor"
#: The session's record of the staff second factor: {"user_id", "seen"} (epoch seconds of the
#: last request, for the idle timeout).
STAFF_SESSION = "staff"
#: The session's read-only impersonation: {"tenant_id", "slug", "until", "reason"}.
IMPERSONATION_SESSION = "impersonation"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def second_factor_passed(connection: ASGIConnection[Any, Any, Any, Any], user_id: UUID) -> None:
    """Record in the session that `user_id` passed the second factor just now (the session gets
    a new id: its privilege changed)."""
    session = session_of(connection)
    session.rotate()
    session[STAFF_SESSION] = {"user_id": str(user_id), "seen": time.time()}


def _second_factor_fresh(connection: ASGIConnection[Any, Any, Any, Any], user_id: UUID) -> bool:
    """Whether this session passed the second factor as `user_id` and has not been idle for
    longer than the settings allow; keeps it alive when it has."""
    session = session_of(connection)
    record = session.get(STAFF_SESSION)
    now = time.time()
    idle = get_settings().staff_idle_minutes * 60
    if (
        not isinstance(record, dict)
        or record.get("user_id") != str(user_id)
        or not isinstance(record.get("seen"), int | float)
        or now - record["seen"] > idle
    ):
        session.pop(STAFF_SESSION)
        session.pop(IMPERSONATION_SESSION)
        return False
    if now - record["seen"] > 30:  # not a session write on every request
        session[STAFF_SESSION] = {**record, "seen": now}
    return True


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Signed-out visitors are sent to sign in (JSON clients get a 401)."""
    if await current_user(connection) is None:
        raise LoginRequired()


async def _close_uploads(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    # Litestar closes a request's uploaded files after the handler, but a guard runs before
    # that safety net: files the CSRF middleware parsed from a multipart form would stay open.
    form = ScopeState.from_scope(connection.scope).form
    if form is not Empty:
        await FormMultiDict.from_form_data(form).close()


def _required(
    permission: Permission | StaffPermission | None, handler: BaseRouteHandler
) -> list[Any]:
    """Every permission the guard and the handler name; a handler that names none at all is
    refused (logged: it is a programming error), never let through."""
    required = [p for p in (permission, handler.opt.get("permission")) if p is not None]
    if not required:
        log.error("%s is behind a permission guard but names no permission", handler)
        raise Forbidden()
    return required


def tenant_member(permission: Permission | None = None) -> Guard:
    """A guard: the signed-in person's context in `/o/{slug}/…`, holding `permission` and the
    handler's `opt["permission"]`. Not a member and no such organization both answer 404."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        try:
            user = await current_user(connection)
            if user is None:
                raise LoginRequired()
            ctx = await _impersonation(connection, user)
            if ctx is None:
                actor = actor_for(connection, user)
                ctx = await member_context(connection.path_params["slug"], user, actor)
            if not all(ctx.can(needed) for needed in _required(permission, handler)):
                raise Forbidden()
        except UserError:
            await _close_uploads(connection)
            raise
        connection.scope["state"]["ctx"] = ctx
        if (
            connection.scope.get("method") == "GET"
            and not ctx.read_only
            and ctx.can(Permission.BILLING_READ)
            and renders_a_page(handler)
        ):
            # The console layout's seat banner (over capacity, suspended): for admins, on the
            # HTML pages only (never for a PDF, a file or JSON). `web.pages.render` shows it;
            # it is read here because rendering is synchronous and the query is not.
            connection.scope["state"]["seat_banner"] = await seats.banner(ctx)

    return guard


async def _impersonation(
    connection: ASGIConnection[Any, Any, Any, Any], user: UserAccount
) -> TenantContext | None:
    """The read-only context of a staff member impersonating the tenant of this path, or None
    when the session impersonates no tenant, another one, or no longer may (expired, no longer
    staff, second factor stale: the impersonation then ends). Anything but a read is refused
    here, and its transactions are `READ ONLY` besides: the database refuses the write a page
    might attempt anyway."""
    record = session_of(connection).get(IMPERSONATION_SESSION)
    if not isinstance(record, dict) or record.get("slug") != connection.path_params.get("slug"):
        return None
    staff = staff_permissions_of(user.staff_role)
    if (
        StaffPermission.TENANTS_READ not in staff
        or not user.staff_second_factor
        or not _second_factor_fresh(connection, user.id)
        or not isinstance(record.get("until"), int | float)
        or time.time() > record["until"]
    ):
        session_of(connection).pop(IMPERSONATION_SESSION)
        return None
    if connection.scope.get("method") not in _SAFE_METHODS:
        raise Forbidden("You are viewing this organization read-only: nothing can be changed.")
    tenant = await tenant_by_id(UUID(record["tenant_id"]))
    actor = replace(actor_for(connection, user, kind="staff"), reason=str(record["reason"]))
    until_at = datetime.fromtimestamp(record["until"], UTC)
    connection.scope["state"]["impersonation"] = {**record, "until_at": until_at}
    # The console as its owner sees it: an owner's permissions and role (the console's
    # services on campaigns, learners and tasks serve people with a role only).
    return TenantContext(
        tenant=tenant,
        actor=actor,
        permissions=permissions_of(Role.OWNER),
        role=Role.OWNER.value,
        read_only=True,
    )


def renders_a_page(handler: BaseRouteHandler) -> bool:
    """Whether `handler` answers with an HTML page (a `Template`, alone or among others)."""
    annotation = handler.parsed_fn_signature.return_type.annotation
    return annotation is Template or Template in get_args(annotation)


def staff_member(permission: StaffPermission | None = None) -> Guard:
    """A guard: the signed-in person's staff context, holding `permission` (or the handler's
    `opt["permission"]`). A signed-in person who is not staff gets a 404 (the back office does
    not say it exists to them), a staff member without the permission a 403."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        try:
            user = await current_user(connection)
            if user is None:
                raise LoginRequired()
            if user.staff_role is None:
                raise NotFound()
            # a second factor reset since (a lost phone) ends the sessions that passed the old one
            if not user.staff_second_factor or not _second_factor_fresh(connection, user.id):
                raise SecondFactorRequired()
            staff = StaffContext(
                actor=actor_for(connection, user, kind="staff"),
                role=user.staff_role,
                permissions=staff_permissions_of(user.staff_role),
            )
            if not all(staff.can(needed) for needed in _required(permission, handler)):
                raise Forbidden()
        except UserError:
            await _close_uploads(connection)
            raise
        connection.scope["state"]["staff"] = staff

    return guard


def tenant_context(request: ASGIConnection[Any, Any, Any, Any]) -> TenantContext:
    """The context `tenant_member` resolved (a dependency for handlers)."""
    ctx: TenantContext = request.scope["state"]["ctx"]
    return ctx


def staff_context(request: ASGIConnection[Any, Any, Any, Any]) -> StaffContext:
    """The context `staff_member` resolved (a dependency for back-office handlers)."""
    staff: StaffContext = request.scope["state"]["staff"]
    return staff


#: How handlers ask for the resolved contexts.
Ctx = NamedDependency[TenantContext]
StaffCtx = NamedDependency[StaffContext]
