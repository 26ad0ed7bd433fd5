"""The console's SCIM page, `/o/{slug}/sso/scim`: the tokens a directory provisions the
organization with (made, shown once, revoked) and what each directory group means here (a
role, a learner group). Owners and admins only (`org:sso:manage`); another organization's
token or mapping is the 404 of an unknown one.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core.errors import UserError
from core.settings import get_settings
from sso import scim
from sso.scim_tokens import IssuedScimToken, create_scim_token, list_scim_tokens, revoke_scim_token
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import flash, form_error, form_of, redirect, render

MANAGE = {"permission": Permission.SSO_MANAGE}
TEMPLATE = "console/sso_scim.html"


async def _page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    *,
    issued: IssuedScimToken | None = None,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    context: dict[str, Any] = {
        "tokens": await list_scim_tokens(ctx),
        "mappings": await scim.list_group_mappings(ctx),
        "roles": scim.MAPPED_ROLES,
        "issued": issued,
        "scim_url": get_settings().base_url + "/scim/v2",
    }
    if error is not None:
        return form_error(request, TEMPLATE, error, values or {}, ctx=ctx, **context)
    return render(request, TEMPLATE, ctx=ctx, values={"role": "admin"}, **context)


@get("/sso/scim", opt=MANAGE)
async def scim_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _page(request, ctx)


@post("/sso/scim/tokens", opt=MANAGE)
async def scim_token_create(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    form = await form_of(request)
    try:
        issued = await create_scim_token(ctx, form.get("name", ""))
    except UserError as error:
        return await _page(request, ctx, error=error, values=form)
    # The secret is on this response only: it is stored as a digest.
    return await _page(request, ctx, issued=issued)


@post("/sso/scim/tokens/{token_id:str}/revoke", opt=MANAGE)
async def scim_token_revoke(
    request: Request[Any, Any, Any], ctx: Ctx, token_id: FromPath[str]
) -> Redirect:
    await revoke_scim_token(ctx, token_id)
    flash(request, "The SCIM token has been revoked.")
    return redirect(f"/o/{ctx.tenant.slug}/sso/scim")


@post("/sso/scim/mappings", opt=MANAGE)
async def scim_mapping_set(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await form_of(request)
    try:
        await scim.set_group_mapping(
            ctx, form.get("group_name", ""), form.get("role", ""), form.get("learner_group", "")
        )
    except UserError as error:
        return await _page(request, ctx, error=error, values=form)
    flash(request, "The group mapping has been saved.")
    return redirect(f"/o/{ctx.tenant.slug}/sso/scim")


@post("/sso/scim/mappings/{mapping_id:str}/remove", opt=MANAGE)
async def scim_mapping_remove(
    request: Request[Any, Any, Any], ctx: Ctx, mapping_id: FromPath[str]
) -> Redirect:
    await scim.remove_group_mapping(ctx, mapping_id)
    flash(request, "The group mapping has been removed.")
    return redirect(f"/o/{ctx.tenant.slug}/sso/scim")


handlers = [scim_page, scim_token_create, scim_token_revoke, scim_mapping_set, scim_mapping_remove]
