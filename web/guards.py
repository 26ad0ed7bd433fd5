"""Guards for every HTML front: a signed-in person, a tenant member, a staff member.

`signed_in` is a guard as it is. `tenant_member(permission)` and `staff_member(permission)`
make guards: the first resolves `/o/{slug}/…` to the person's context in that organization, the
second the person's staff context; each checks `permission` (or, when none is given, the one a
handler declares in `opt={"permission": …}`) and keeps the context for the handler (`Ctx`,
`StaffCtx`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

from core.errors import Forbidden, NotFound, Unauthenticated, UserError
from tenants.context import StaffContext, TenantContext
from tenants.organizations import member_context
from tenants.permissions import Permission, StaffPermission, staff_permissions_of
from web.pages import actor_for, current_user

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


class LoginRequired(Unauthenticated):
    """Raised for signed-out visitors of a page that needs an account: they are sent to sign in."""

    def __init__(self) -> None:
        super().__init__("Sign in to continue.")


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


def tenant_member(permission: Permission | None = None) -> Guard:
    """A guard: the signed-in person's context in `/o/{slug}/…`, holding `permission` (or the
    handler's `opt["permission"]`). Not a member and no such organization both answer 404."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        try:
            user = await current_user(connection)
            if user is None:
                raise LoginRequired()
            actor = actor_for(connection, user)
            ctx = await member_context(connection.path_params["slug"], user, actor)
            needed: Permission | None = permission or handler.opt.get("permission")
            if needed is not None and not ctx.can(needed):
                raise Forbidden()
        except UserError:
            await _close_uploads(connection)
            raise
        connection.scope["state"]["ctx"] = ctx

    return guard


def staff_member(permission: StaffPermission | None = None) -> Guard:
    """A guard: the signed-in person's staff context, holding `permission` (or the handler's
    `opt["permission"]`). A person who is not staff gets a 404: the back office does not
    say it exists to them."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        try:
            user = await current_user(connection)
            if user is None:
                raise LoginRequired()
            if user.staff_role is None:
                raise NotFound()
            staff = StaffContext(
                actor=actor_for(connection, user, kind="staff"),
                role=user.staff_role,
                permissions=staff_permissions_of(user.staff_role),
            )
            needed: StaffPermission | None = permission or handler.opt.get("permission")
            if needed is not None and not staff.can(needed):
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
