"""Guards: sign-in and tenant membership, with the permission a handler declares in `opt`."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

from api.web import actor_for, current_user
from core.errors import Forbidden, Unauthenticated, UserError
from tenants.context import TenantContext
from tenants.organizations import member_context
from tenants.permissions import Permission


class LoginRequired(Unauthenticated):
    """Raised for signed-out visitors of a page that needs an account: they are sent to sign in."""

    def __init__(self) -> None:
        super().__init__("Sign in to continue.")


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if await current_user(connection) is None:
        raise LoginRequired()


async def _close_uploads(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    # Litestar closes a request's uploaded files after the handler, but a guard runs before
    # that safety net: files the CSRF middleware parsed from a multipart form would stay open.
    form = ScopeState.from_scope(connection.scope).form
    if form is not Empty:
        await FormMultiDict.from_form_data(form).close()


async def tenant_member(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Resolve `/o/{slug}/…` to the person's context there and check the handler's permission.

    Not a member and no such organization both answer 404.
    """
    try:
        await _tenant_member(connection, handler)
    except UserError:
        await _close_uploads(connection)
        raise


async def _tenant_member(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    user = await current_user(connection)
    if user is None:
        raise LoginRequired()
    ctx = await member_context(connection.path_params["slug"], user, actor_for(connection, user))
    permission: Permission | None = handler.opt.get("permission")
    if permission is not None and not ctx.can(permission):
        raise Forbidden()
    connection.scope["state"]["ctx"] = ctx


def tenant_context(request: ASGIConnection[Any, Any, Any, Any]) -> TenantContext:
    """The context `tenant_member` resolved (a dependency for handlers)."""
    ctx: TenantContext = request.scope["state"]["ctx"]
    return ctx


#: How handlers ask for the resolved context.
Ctx = NamedDependency[TenantContext]
