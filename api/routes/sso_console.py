"""Single sign-on in the tenant console, `/o/{slug}/sso…`: the list of identity-provider
connections (with the links to domains, the sign-in policy and SCIM), the OIDC connection
form (new and edit; the client secret is write-only), and the buttons every connection has:
enable, disable, delete. "Test this connection" is a link to the protocol's own start
(`/sso/{slug}/{protocol}/{id}/start?test=1`).

Owners and admins only (`org:sso:manage`). Ids go through `sso.connections`' accessors, so
another organization's connection is the 404 of an unknown one.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.routes.sso_oidc import callback_url
from core.errors import NotFound, UserError
from sso import connections, oidc
from sso.connections import format_role_mapping, parse_role_mapping
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import flash, form_error, form_of, redirect, render

MANAGE = {"permission": Permission.SSO_MANAGE}


@get("/sso", opt=MANAGE)
async def sso_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return render(
        request,
        "console/sso.html",
        ctx=ctx,
        connections=await connections.list_connections(ctx),
    )


def _form(values: dict[str, str]) -> oidc.OidcConnectionForm:
    return oidc.OidcConnectionForm(
        name=values.get("name", ""),
        issuer=values.get("issuer", ""),
        client_id=values.get("client_id", ""),
        client_secret=values.get("client_secret") or None,
        scopes=values.get("scopes", ""),
        role_mapping=parse_role_mapping(values.get("role_mapping")),
        default_role=values.get("default_role", "member"),
        external_id_claim=values.get("external_id_claim", ""),
        groups_claim=values.get("groups_claim", ""),
        email_verified_trusted=values.get("email_verified_trusted") == "yes",
    )


def _form_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    values: dict[str, Any],
    *,
    connection: connections.IdentityConnection | None = None,
    error: UserError | None = None,
) -> Template:
    context: dict[str, Any] = {
        "connection": connection,
        "redirect_uri": callback_url(ctx.tenant.slug, connection.id) if connection else None,
    }
    values = {k: v for k, v in values.items() if k != "client_secret"}  # never shown back
    if error is None:
        return render(request, "console/sso_oidc_form.html", ctx=ctx, values=values, **context)
    return form_error(request, "console/sso_oidc_form.html", error, values, ctx=ctx, **context)


@get("/sso/oidc/new", opt=MANAGE)
async def oidc_new_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    defaults = {"scopes": " ".join(oidc.DEFAULT_SCOPES), "default_role": "member"}
    return _form_page(request, ctx, defaults)


@post("/sso/oidc/new", opt=MANAGE)
async def oidc_create(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    values = await form_of(request)
    try:
        connection_id = await oidc.save_connection(ctx, _form(values))
    except UserError as error:
        return _form_page(request, ctx, values, error=error)
    flash(
        request,
        "The connection is saved, and disabled. Register the redirect URI below at your "
        "provider, test the connection, then enable it.",
    )
    return redirect(f"/o/{ctx.tenant.slug}/sso/oidc/{connection_id}")


def _values(connection: connections.IdentityConnection) -> dict[str, Any]:
    settings = oidc.OidcSettings.of(connection)
    return {
        "name": connection.name,
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "scopes": " ".join(settings.scopes),
        "role_mapping": format_role_mapping(connection.role_mapping),
        "default_role": connection.default_role,
        "external_id_claim": connection.external_id_claim,
        "groups_claim": settings.groups_claim,
        "email_verified_trusted": "yes" if settings.email_verified_trusted else "",
    }


async def _oidc_connection(
    ctx: TenantContext, connection_id: str
) -> connections.IdentityConnection:
    connection = await connections.get_connection(ctx, connection_id)
    if connection.protocol != "oidc":
        raise NotFound()
    return connection


@get("/sso/oidc/{connection_id:str}", opt=MANAGE)
async def oidc_edit_page(
    request: Request[Any, Any, Any], ctx: Ctx, connection_id: FromPath[str]
) -> Template:
    connection = await _oidc_connection(ctx, connection_id)
    return _form_page(request, ctx, _values(connection), connection=connection)


@post("/sso/oidc/{connection_id:str}", opt=MANAGE)
async def oidc_update(
    request: Request[Any, Any, Any], ctx: Ctx, connection_id: FromPath[str]
) -> Template | Redirect:
    connection = await _oidc_connection(ctx, connection_id)
    values = await form_of(request)
    try:
        await oidc.save_connection(ctx, _form(values), connection.id)
    except UserError as error:
        if error.status_code == 404:
            raise
        return _form_page(request, ctx, values, connection=connection, error=error)
    flash(request, "The connection is saved.")
    return redirect(f"/o/{ctx.tenant.slug}/sso/oidc/{connection.id}")


async def _action(
    request: Request[Any, Any, Any], ctx: TenantContext, connection_id: str, action: str
) -> Redirect:
    match action:
        case "enable":
            await connections.set_enabled(ctx, connection_id, True)
            flash(request, "The connection is enabled: people can sign in with it.")
        case "disable":
            await connections.set_enabled(ctx, connection_id, False)
            flash(request, "The connection is disabled: nobody signs in with it.")
        case _:
            await connections.delete_connection(ctx, connection_id)
            flash(request, "The connection is deleted.")
    return redirect(f"/o/{ctx.tenant.slug}/sso")


@post("/sso/connections/{connection_id:str}/enable", opt=MANAGE)
async def connection_enable(
    request: Request[Any, Any, Any], ctx: Ctx, connection_id: FromPath[str]
) -> Redirect:
    return await _action(request, ctx, connection_id, "enable")


@post("/sso/connections/{connection_id:str}/disable", opt=MANAGE)
async def connection_disable(
    request: Request[Any, Any, Any], ctx: Ctx, connection_id: FromPath[str]
) -> Redirect:
    return await _action(request, ctx, connection_id, "disable")


@post("/sso/connections/{connection_id:str}/delete", opt=MANAGE)
async def connection_delete(
    request: Request[Any, Any, Any], ctx: Ctx, connection_id: FromPath[str]
) -> Redirect:
    return await _action(request, ctx, connection_id, "delete")


handlers = [
    sso_page,
    oidc_new_page,
    oidc_create,
    oidc_edit_page,
    oidc_update,
    connection_enable,
    connection_disable,
    connection_delete,
]
