"""Guards for every HTML front: a signed-in person, a tenant member, a staff member.

`signed_in` is a guard as it is. `tenant_member(permission)` and `staff_member(permission)`
make guards: the first resolves `/o/{slug}/…` to the person's context in that organization, the
second the person's staff context; each keeps the context for the handler (`Ctx`, `StaffCtx`).

They fail closed: the person must hold every permission named, the guard's and the one a
handler declares in `opt={"permission": …}` alike (a section's guard never stands in for a
stricter handler's), and a handler behind them that names none at all is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, get_args

from litestar.connection import ASGIConnection
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Template
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

from billing import seats
from core.errors import Forbidden, NotFound, Unauthenticated, UserError
from tenants.context import StaffContext, TenantContext
from tenants.organizations import member_context
from tenants.permissions import Permission, StaffPermission, staff_permissions_of
from web.pages import actor_for, current_user

log = logging.getLogger(__name__)

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
            and ctx.can(Permission.BILLING_READ)
            and renders_a_page(handler)
        ):
            # The console layout's seat banner (over capacity, suspended): for admins, on the
            # HTML pages only (never for a PDF, a file or JSON). `web.pages.render` shows it;
            # it is read here because rendering is synchronous and the query is not.
            connection.scope["state"]["seat_banner"] = await seats.banner(ctx)

    return guard


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
