"""The tenant console, `/o/{slug}/…`: dashboard, members, settings, audit log, API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import Provide
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.guards import Ctx, signed_in, tenant_context, tenant_member
from api.web import current_user, flash, form_error, form_of, redirect, render
from core.errors import Invalid, UserError
from core.settings import get_settings
from tenants import audit, members, tokens
from tenants.organizations import (
    SettingsChange,
    get_organization,
    my_organizations,
    update_settings,
)
from tenants.permissions import TOKEN_SCOPES, Permission, Role

ROLES = [role.value for role in Role]


@get("/o/", guards=[signed_in])
async def organizations(request: Request[Any, Any, Any]) -> Template | Redirect:
    user = await current_user(request)
    assert user is not None
    orgs = await my_organizations(user.id)
    return render(request, "orgs.html", organizations=orgs)


@get("/", opt={"permission": Permission.ORGANIZATION_READ})
async def dashboard(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    org = await get_organization(ctx)
    people = await members.list_members(ctx)
    pending = await members.list_invitations(ctx)
    recent = (
        (await audit.list_events(ctx, audit.AuditFilter(), limit=5)).events
        if ctx.can(Permission.AUDIT_READ) else []
    )
    return render(request, "console/dashboard.html", ctx=ctx, org=org, member_count=len(people),
                  pending_count=len(pending), recent=recent)


async def _members_page(request: Request[Any, Any, Any], ctx: Ctx,
                        error: UserError | None = None,
                        values: dict[str, str] | None = None) -> Template:
    people = await members.list_members(ctx)
    pending = await members.list_invitations(ctx)
    context = {"members": people, "invitations": pending, "roles": ROLES,
               "me": ctx.actor.user_id}
    if error is not None:
        return form_error(request, "console/members.html", error, values or {}, ctx=ctx,
                          **context)
    return render(request, "console/members.html", ctx=ctx, **context)


@get("/members", opt={"permission": Permission.MEMBERS_READ})
async def members_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _members_page(request, ctx)


@post("/members/invite", opt={"permission": Permission.MEMBERS_INVITE})
async def invite(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await form_of(request)
    try:
        await members.invite(ctx, form.get("email", ""), form.get("role", "member"),
                             get_settings())
    except UserError as error:
        return await _members_page(request, ctx, error, form)
    flash(request, "Invitation sent to {email}.", email=form.get("email", "").strip())
    return redirect(f"/o/{ctx.tenant.slug}/members")


@post("/members/{membership_id:str}/role", opt={"permission": Permission.MEMBERS_UPDATE})
async def change_role(request: Request[Any, Any, Any], ctx: Ctx,
                      membership_id: FromPath[str]) -> Template | Redirect:
    form = await form_of(request)
    try:
        await members.change_role(ctx, membership_id, form.get("role", ""))
    except UserError as error:
        return await _members_page(request, ctx, error, form)
    flash(request, "The role has been changed.")
    return redirect(f"/o/{ctx.tenant.slug}/members")


@post("/members/{membership_id:str}/remove", opt={"permission": Permission.MEMBERS_READ})
async def remove_member(request: Request[Any, Any, Any], ctx: Ctx,
                        membership_id: FromPath[str]) -> Template | Redirect:
    # Any member may leave; removing someone else is checked by the service.
    try:
        own = await members.own_membership_id(ctx)
        await members.remove_member(ctx, membership_id)
    except UserError as error:
        return await _members_page(request, ctx, error, {})
    if str(own) == membership_id:
        flash(request, "You have left {organization}.", organization=ctx.tenant.name)
        return redirect("/o/")
    flash(request, "The member has been removed.")
    return redirect(f"/o/{ctx.tenant.slug}/members")


@post("/invitations/{invitation_id:str}/resend", opt={"permission": Permission.MEMBERS_INVITE})
async def resend(request: Request[Any, Any, Any], ctx: Ctx,
                 invitation_id: FromPath[str]) -> Template | Redirect:
    try:
        await members.resend_invitation(ctx, invitation_id, get_settings())
    except UserError as error:
        return await _members_page(request, ctx, error, {})
    flash(request, "The invitation has been sent again.")
    return redirect(f"/o/{ctx.tenant.slug}/members")


@post("/invitations/{invitation_id:str}/revoke", opt={"permission": Permission.MEMBERS_INVITE})
async def revoke(request: Request[Any, Any, Any], ctx: Ctx,
                 invitation_id: FromPath[str]) -> Template | Redirect:
    try:
        await members.revoke_invitation(ctx, invitation_id)
    except UserError as error:
        return await _members_page(request, ctx, error, {})
    flash(request, "The invitation has been revoked.")
    return redirect(f"/o/{ctx.tenant.slug}/members")


@get("/settings", opt={"permission": Permission.ORGANIZATION_READ})
async def settings_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    org = await get_organization(ctx)
    return render(request, "console/settings.html", ctx=ctx, org=org, values=org)


@post("/settings", opt={"permission": Permission.ORGANIZATION_UPDATE})
async def settings_update(request: Request[Any, Any, Any],
                          ctx: Ctx) -> Template | Redirect:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get("logo")
    try:
        logo = None
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(200_001)
            if len(data) > 200_000:
                raise Invalid("The logo must weigh 100 KB at most.", field="logo")
            logo = (upload.content_type, data)
        await update_settings(ctx, SettingsChange(
            name=values.get("name", ""),
            default_locale=values.get("default_locale", ""),
            brand_colour=values.get("brand_colour"),
            logo=logo,
            remove_logo=values.get("remove_logo") == "on",
        ))
    except UserError as error:
        org = await get_organization(ctx)
        return form_error(request, "console/settings.html", error, {**org, **values}, ctx=ctx,
                          org=org)
    flash(request, "Your changes are saved.")
    return redirect(f"/o/{ctx.tenant.slug}/settings")


def _parse_day(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        from datetime import UTC

        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise Invalid("Enter a date as YYYY-MM-DD.", field=field) from None


@get("/audit", opt={"permission": Permission.AUDIT_READ})
async def audit_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    query = request.query_params
    values = {key: query.get(key, "") for key in ("action", "actor", "since", "until")}
    actions = await audit.distinct_actions(ctx)
    try:
        filters = audit.AuditFilter(
            action=values["action"] or None,
            actor=values["actor"][:200] or None,
            since=_parse_day(values["since"], "since"),
            until=_parse_day(values["until"], "until"),
        )
        page = await audit.list_events(ctx, filters, query.get("cursor"))
    except UserError as error:
        return form_error(request, "console/audit.html", error, values, ctx=ctx,
                          events=[], next_cursor=None, actions=actions)
    return render(request, "console/audit.html", ctx=ctx, events=page.events,
                  next_cursor=page.next_cursor, actions=actions, values=values)


@get("/tokens", opt={"permission": Permission.TOKENS_MANAGE})
async def tokens_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return render(request, "console/tokens.html", ctx=ctx, tokens=await tokens.list_tokens(ctx),
                  scopes=sorted(s.value for s in TOKEN_SCOPES), issued=None,
                  values={"expires_in_days": "90"})


@post("/tokens", opt={"permission": Permission.TOKENS_MANAGE})
async def tokens_create(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    form = await request.form()
    scopes = [v for v in form.getall("scopes") if isinstance(v, str)] if "scopes" in form else []
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    context = {"scopes": sorted(s.value for s in TOKEN_SCOPES)}
    try:
        days_text = values.get("expires_in_days", "").strip()
        try:
            days = int(days_text) if days_text else None
        except ValueError:
            raise Invalid("Enter a number of days.", field="expires_in_days") from None
        issued = await tokens.create_token(ctx, values.get("name", ""), scopes, days)
    except UserError as error:
        return form_error(request, "console/tokens.html", error, values, ctx=ctx,
                          tokens=await tokens.list_tokens(ctx), issued=None, **context)
    # The secret is shown on this response only: it is stored as a digest.
    return render(request, "console/tokens.html", ctx=ctx, tokens=await tokens.list_tokens(ctx),
                  issued=issued, values={"expires_in_days": "90"}, **context)


@post("/tokens/{token_id:str}/revoke", opt={"permission": Permission.TOKENS_MANAGE})
async def tokens_revoke(request: Request[Any, Any, Any], ctx: Ctx,
                        token_id: FromPath[str]) -> Redirect:
    await tokens.revoke_token(ctx, token_id)
    flash(request, "The token has been revoked.")
    return redirect(f"/o/{ctx.tenant.slug}/tokens")


console_router = Router(
    path="/o/{slug:str}",
    guards=[tenant_member],
    dependencies={"ctx": Provide(tenant_context, sync_to_thread=False)},
    route_handlers=[
        dashboard, members_page, invite, change_role, remove_member, resend, revoke,
        settings_page, settings_update, audit_page, tokens_page, tokens_create, tokens_revoke,
    ],
)

handlers = [organizations, console_router]
