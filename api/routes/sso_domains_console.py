"""Verified domains and the sign-in policy in the tenant console, `/o/{slug}/sso/domains` and
`/o/{slug}/sso/policy`.

Owners and admins only (`org:sso:manage`). A domain's id goes through `sso.domains`'
accessor, so another organization's domain is the 404 of an unknown one.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core.errors import UserError
from sso import domains, policy
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import flash, form_error, form_of, redirect, render

MANAGE = {"permission": Permission.SSO_MANAGE}


async def _domains_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    context: dict[str, Any] = {
        "domains": await domains.list_domains(ctx),
        "development_zone": domains.development_zone() is not None,
        "is_reserved": domains.is_reserved,
    }
    if error is None:
        return render(request, "console/sso_domains.html", ctx=ctx, **context)
    return form_error(request, "console/sso_domains.html", error, values or {}, ctx=ctx, **context)


@get("/sso/domains", opt=MANAGE)
async def domains_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _domains_page(request, ctx)


@post("/sso/domains", opt=MANAGE)
async def domain_add(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await form_of(request)
    try:
        claim = await domains.add_domain(ctx, form.get("domain", ""))
    except UserError as error:
        return await _domains_page(request, ctx, error, form)
    flash(
        request,
        "{domain} is added. Publish its TXT record, then verify it.",
        domain=claim.display_name,
    )
    return redirect(f"/o/{ctx.tenant.slug}/sso/domains")


@post("/sso/domains/{domain_id:str}/verify", opt=MANAGE)
async def domain_verify(
    request: Request[Any, Any, Any], ctx: Ctx, domain_id: FromPath[str]
) -> Template | Redirect:
    try:
        claim = await domains.verify_domain(ctx, domain_id, domains.get_resolver())
    except UserError as error:
        if error.status_code == 404:
            raise
        error.field = None  # an action's refusal: shown at the top of the page
        return await _domains_page(request, ctx, error)
    flash(request, "{domain} is verified.", domain=claim.display_name)
    return redirect(f"/o/{ctx.tenant.slug}/sso/domains")


@post("/sso/domains/{domain_id:str}/publish", opt=MANAGE)
async def domain_publish(
    request: Request[Any, Any, Any], ctx: Ctx, domain_id: FromPath[str]
) -> Template | Redirect:
    """Development only: publish a test domain's record in the demo's DNS zone."""
    try:
        claim = await domains.publish_in_development_zone(ctx, domain_id)
    except UserError as error:
        if error.status_code == 404:
            raise
        return await _domains_page(request, ctx, error)
    flash(
        request,
        "The record of {domain} is published in the development DNS.",
        domain=claim.display_name,
    )
    return redirect(f"/o/{ctx.tenant.slug}/sso/domains")


@post("/sso/domains/{domain_id:str}/delete", opt=MANAGE)
async def domain_remove(
    request: Request[Any, Any, Any], ctx: Ctx, domain_id: FromPath[str]
) -> Redirect:
    claim = await domains.remove_domain(ctx, domain_id)
    flash(request, "{domain} is removed.", domain=claim.display_name)
    return redirect(f"/o/{ctx.tenant.slug}/sso/domains")


async def _policy_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    page = await policy.policy_page(ctx)
    context: dict[str, Any] = {
        "owners": page.owners,
        "has_enabled_connection": page.has_enabled_connection,
    }
    if error is None:
        current = {
            "sso_required": page.policy.sso_required_for_members,
            "break_glass": str(page.policy.break_glass_user_id or ""),
        }
        return render(request, "console/sso_policy.html", ctx=ctx, values=current, **context)
    return form_error(request, "console/sso_policy.html", error, values or {}, ctx=ctx, **context)


@get("/sso/policy", opt=MANAGE)
async def policy_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _policy_page(request, ctx)


@post("/sso/policy", opt=MANAGE)
async def policy_update(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await form_of(request)
    values: dict[str, Any] = {
        "sso_required": bool(form.get("sso_required")),
        "break_glass": form.get("break_glass", ""),
    }
    try:
        await policy.set_policy(ctx, values["sso_required"], values["break_glass"] or None)
    except UserError as error:
        return await _policy_page(request, ctx, error, values)
    flash(request, "The sign-in policy is saved.")
    return redirect(f"/o/{ctx.tenant.slug}/sso/policy")


handlers = [
    domains_page,
    domain_add,
    domain_verify,
    domain_publish,
    domain_remove,
    policy_page,
    policy_update,
]
