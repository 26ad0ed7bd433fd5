"""The tenant console, `/o/{slug}/…`: dashboard, members, settings, audit log, API tokens,
and campaigns (`api.routes.campaigns`).

Every page is behind `tenant_member()`: signed-out visitors are sent to sign in, people who are
not members (and unknown organizations) get the same 404, and members without the handler's
permission get a 403. Ids in paths go through the services' accessors, so an id of another
organization is a 404 exactly like an id that does not exist: `NotFound` is never turned into
a form error.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler

from api.routes import (
    billing_console,
    billing_invoices,
    billing_usage,
    campaigns,
    learners,
    scim_console,
    sso_console,
    sso_domains_console,
    sso_saml_console,
    target_profiles,
    tasks,
    webhooks,
)
from campaigns.campaign_stats import organization_figures
from campaigns.participation.results import my_participations
from core.errors import Invalid, NotFound, UserError
from core.i18n import translate
from core.settings import get_settings
from tenants import audit, invitations, members, tokens
from tenants.organizations import (
    LOGO_MAX_BYTES,
    Organization,
    SettingsChange,
    get_organization,
    my_organizations,
    update_settings,
)
from tenants.permissions import TOKEN_SCOPES, Permission, Role
from web.guards import Ctx, signed_in, tenant_context, tenant_member
from web.pages import current_user, flash, form_error, form_of, locale_of, redirect, render

ROLES = [role.value for role in Role]
SCOPES = sorted(scope.value for scope in TOKEN_SCOPES)


@get("/o/", guards=[signed_in], include_in_schema=False)
async def organizations(
    request: Request[Any, Any, Any], all: FromQuery[str | None] = None
) -> Template | Redirect:
    """The person's organizations. Someone who belongs to exactly one (staff aside) is taken
    into it: this is where sign-in and the home page send people. `?all=1` lists anyway (to
    create another organization)."""
    user = await current_user(request)
    assert user is not None
    orgs = await my_organizations(user.id)
    if len(orgs) == 1 and all != "1" and not user.staff_role:
        return redirect(f"/o/{orgs[0].slug}/")
    if not orgs and not user.staff_role and await my_participations(user.id):
        # A participant, not an organizer: their tests and results, no "create an
        # organization" to push them to.
        return redirect("/me/results")
    return render(request, "orgs.html", organizations=orgs)


@get("/", opt={"permission": Permission.ORGANIZATION_READ})
async def dashboard(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    org = await get_organization(ctx)
    recent = (
        (await audit.list_events(ctx, audit.AuditFilter(), limit=5)).events
        if ctx.can(Permission.AUDIT_READ)
        else []
    )
    figures = await organization_figures(ctx) if ctx.can(Permission.CAMPAIGNS_READ) else None
    if figures is not None:  # every role: counted in its statement, no list loaded
        member_count, pending_count = figures.members, figures.pending_invitations
    else:
        member_count = len((await members.list_members(ctx, limit=None)).items)
        pending_count = len(await invitations.list_invitations(ctx))
    return render(
        request,
        "console/dashboard.html",
        ctx=ctx,
        org=org,
        member_count=member_count,
        pending_count=pending_count,
        recent=recent,
        figures=figures,
        can_create=ctx.can(Permission.CAMPAIGNS_MANAGE),
    )


async def _members_page(
    request: Request[Any, Any, Any],
    ctx: Ctx,
    error: UserError | None = None,
    invite_form: dict[str, str] | None = None,
) -> Template:
    """The members page; with `error`, re-rendered with its status and message: next to its
    field when it is about the invitation form (`invite_form`, what was typed), at the top of
    the page when it is about a member or an invitation in the lists.

    `NotFound` is not shown here: it goes to the error page like every other 404.
    """
    if isinstance(error, NotFound):
        raise error
    people = await members.list_members(ctx, limit=None, order=members.MemberOrder.ROLE)
    pending = await invitations.list_invitations(ctx)
    context: dict[str, Any] = {
        "members": people.items,
        "invitations": pending,
        "roles": ROLES,
        "me": ctx.actor.user_id,
    }
    if error is None:
        return render(request, "console/members.html", ctx=ctx, **context)
    if invite_form is not None:
        return form_error(request, "console/members.html", error, invite_form, ctx=ctx, **context)
    message = translate(locale_of(request), error.message, **error.params)
    return render(
        request,
        "console/members.html",
        status=error.status_code,
        ctx=ctx,
        errors={"__all__": message},
        **context,
    )


@get("/members", opt={"permission": Permission.MEMBERS_READ})
async def members_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _members_page(request, ctx)


@post("/members/invite", opt={"permission": Permission.MEMBERS_INVITE})
async def invite(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await form_of(request)
    try:
        await invitations.invite(
            ctx, form.get("email", ""), form.get("role", "member"), get_settings()
        )
    except UserError as error:
        return await _members_page(request, ctx, error, form)
    flash(request, "Invitation sent to {email}.", email=form.get("email", "").strip())
    return redirect(f"/o/{ctx.tenant.slug}/members")


@post("/members/{membership_id:str}/role", opt={"permission": Permission.MEMBERS_UPDATE})
async def change_role(
    request: Request[Any, Any, Any], ctx: Ctx, membership_id: FromPath[str]
) -> Template | Redirect:
    form = await form_of(request)
    try:
        await members.change_role(ctx, membership_id, form.get("role", ""))
    except UserError as error:
        return await _members_page(request, ctx, error)
    flash(request, "The role has been changed.")
    return redirect(f"/o/{ctx.tenant.slug}/members")


@get("/members/{membership_id:str}/remove", opt={"permission": Permission.MEMBERS_READ})
async def remove_member_confirm(
    request: Request[Any, Any, Any], ctx: Ctx, membership_id: FromPath[str]
) -> Template:
    """Asks to confirm removing a member (or leaving, for one's own membership), and says
    what it does. Removing someone else needs MEMBERS_REMOVE: refused here as on the form."""
    member = await members.get_member(ctx, membership_id)
    leaving = member.user_id == ctx.actor.user_id
    if not leaving:
        ctx.require(Permission.MEMBERS_REMOVE)
    return render(
        request,
        "console/confirm.html",
        ctx=ctx,
        what="member_leave" if leaving else "member_remove",
        subject=member,
        action=f"/o/{ctx.tenant.slug}/members/{member.id}/remove",
        back=f"/o/{ctx.tenant.slug}/members",
    )


@post("/members/{membership_id:str}/remove", opt={"permission": Permission.MEMBERS_READ})
async def remove_member(
    request: Request[Any, Any, Any], ctx: Ctx, membership_id: FromPath[str]
) -> Template | Redirect:
    # Any member may leave; removing someone else needs MEMBERS_REMOVE, checked by the service.
    # A form without the confirmation removes nobody: it leads to the confirmation page of
    # a membership that exists (an unknown or mangled id is a 404 here as on that page).
    if (await form_of(request)).get("confirm") != "yes":
        member = await members.get_member(ctx, membership_id)
        return redirect(f"/o/{ctx.tenant.slug}/members/{member.id}/remove")
    try:
        left = await members.remove_member(ctx, membership_id)
    except UserError as error:
        return await _members_page(request, ctx, error)
    if left:
        flash(request, "You have left {organization}.", organization=ctx.tenant.name)
        return redirect("/o/")
    flash(request, "The member has been removed.")
    return redirect(f"/o/{ctx.tenant.slug}/members")


@post("/invitations/{invitation_id:str}/resend", opt={"permission": Permission.MEMBERS_INVITE})
async def resend(
    request: Request[Any, Any, Any], ctx: Ctx, invitation_id: FromPath[str]
) -> Template | Redirect:
    try:
        await invitations.resend_invitation(ctx, invitation_id, get_settings())
    except UserError as error:
        return await _members_page(request, ctx, error)
    flash(request, "The invitation has been sent again.")
    return redirect(f"/o/{ctx.tenant.slug}/members")


@post("/invitations/{invitation_id:str}/revoke", opt={"permission": Permission.MEMBERS_INVITE})
async def revoke(
    request: Request[Any, Any, Any], ctx: Ctx, invitation_id: FromPath[str]
) -> Template | Redirect:
    try:
        await invitations.revoke_invitation(ctx, invitation_id)
    except UserError as error:
        return await _members_page(request, ctx, error)
    flash(request, "The invitation has been revoked.")
    return redirect(f"/o/{ctx.tenant.slug}/members")


def _settings_values(org: Organization) -> dict[str, Any]:
    """The settings form's fields as the organization has them."""
    return {
        "name": org.name,
        "default_locale": org.default_locale,
        "brand_colour": org.brand_colour,
    }


@get("/settings", opt={"permission": Permission.ORGANIZATION_READ})
async def settings_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    org = await get_organization(ctx)
    return render(request, "console/settings.html", ctx=ctx, org=org, values=_settings_values(org))


async def _logo_of(upload: object) -> tuple[str, bytes] | None:
    """The uploaded logo as (content type, bytes), or None when no file was chosen.

    At most one byte more than `LOGO_MAX_BYTES` is read: enough for the service to refuse an
    oversized file with its message, without holding more of it.
    """
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    return upload.content_type, await upload.read(LOGO_MAX_BYTES + 1)


@post("/settings", opt={"permission": Permission.ORGANIZATION_UPDATE})
async def settings_update(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        await update_settings(
            ctx,
            SettingsChange(
                name=values.get("name", ""),
                default_locale=values.get("default_locale", ""),
                brand_colour=values.get("brand_colour"),
                logo=await _logo_of(form.get("logo")),
                remove_logo=values.get("remove_logo") == "on",
            ),
        )
    except UserError as error:
        org = await get_organization(ctx)
        return form_error(
            request,
            "console/settings.html",
            error,
            {**_settings_values(org), **values},
            ctx=ctx,
            org=org,
        )
    flash(request, "Your changes are saved.")
    return redirect(f"/o/{ctx.tenant.slug}/settings")


def _audit_filter(values: dict[str, str]) -> audit.AuditFilter:
    return audit.clean_filter(values["action"], values["actor"], values["since"], values["until"])


@get("/audit", opt={"permission": Permission.AUDIT_READ})
async def audit_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    query = request.query_params
    values = {key: query.get(key) or "" for key in ("action", "actor", "since", "until")}
    actions = await audit.distinct_actions(ctx)
    try:
        page = await audit.list_events(ctx, _audit_filter(values), query.get("cursor"))
    except UserError as error:
        return form_error(
            request,
            "console/audit.html",
            error,
            values,
            ctx=ctx,
            events=[],
            next_cursor=None,
            actions=actions,
        )
    return render(
        request,
        "console/audit.html",
        ctx=ctx,
        events=page.events,
        next_cursor=page.next_cursor,
        actions=actions,
        values=values,
    )


@get("/tokens", opt={"permission": Permission.TOKENS_MANAGE})
async def tokens_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return render(
        request,
        "console/tokens.html",
        ctx=ctx,
        tokens=await tokens.list_tokens(ctx),
        scopes=SCOPES,
        issued=None,
        values={"expires_in_days": "90"},
    )


def _expiry_days(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise Invalid("Enter a number of days.", field="expires_in_days")
    return int(text)


@post("/tokens", opt={"permission": Permission.TOKENS_MANAGE})
async def tokens_create(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    form = await request.form()
    scopes = [v for v in form.getall("scopes") if isinstance(v, str)] if "scopes" in form else []
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        days = _expiry_days(values.get("expires_in_days", ""))
        issued = await tokens.create_token(ctx, values.get("name", ""), scopes, days)
    except UserError as error:
        return form_error(
            request,
            "console/tokens.html",
            error,
            values,
            ctx=ctx,
            tokens=await tokens.list_tokens(ctx),
            issued=None,
            scopes=SCOPES,
        )
    # The secret is shown on this response only: it is stored as a digest.
    return render(
        request,
        "console/tokens.html",
        ctx=ctx,
        tokens=await tokens.list_tokens(ctx),
        issued=issued,
        values={"expires_in_days": "90"},
        scopes=SCOPES,
    )


@get("/tokens/{token_id:str}/revoke", opt={"permission": Permission.TOKENS_MANAGE})
async def tokens_revoke_confirm(
    request: Request[Any, Any, Any], ctx: Ctx, token_id: FromPath[str]
) -> Template | Redirect:
    """Asks to confirm revoking a token, and says what it does; a revoked token's page leads
    back to the list."""
    token = await tokens.get_token(ctx, token_id)
    if token.revoked_at is not None:
        return redirect(f"/o/{ctx.tenant.slug}/tokens")
    return render(
        request,
        "console/confirm.html",
        ctx=ctx,
        what="token_revoke",
        subject=token,
        action=f"/o/{ctx.tenant.slug}/tokens/{token.id}/revoke",
        back=f"/o/{ctx.tenant.slug}/tokens",
    )


@post("/tokens/{token_id:str}/revoke", opt={"permission": Permission.TOKENS_MANAGE})
async def tokens_revoke(
    request: Request[Any, Any, Any], ctx: Ctx, token_id: FromPath[str]
) -> Redirect:
    # A form without the confirmation revokes nothing: it leads to the confirmation page of
    # a token that exists (an unknown or mangled id is a 404 here as on that page).
    if (await form_of(request)).get("confirm") != "yes":
        token = await tokens.get_token(ctx, token_id)
        return redirect(f"/o/{ctx.tenant.slug}/tokens/{token.id}/revoke")
    await tokens.revoke_token(ctx, token_id)
    flash(request, "The token has been revoked.")
    return redirect(f"/o/{ctx.tenant.slug}/tokens")


console_router = Router(
    path="/o/{slug:str}",
    guards=[tenant_member()],
    dependencies={"ctx": Provide(tenant_context, sync_to_thread=False)},
    # HTML pages: the OpenAPI schema documents the JSON API only.
    include_in_schema=False,
    route_handlers=[
        dashboard,
        members_page,
        invite,
        change_role,
        remove_member_confirm,
        remove_member,
        resend,
        revoke,
        settings_page,
        settings_update,
        audit_page,
        tokens_page,
        tokens_create,
        tokens_revoke_confirm,
        tokens_revoke,
        *campaigns.handlers,
        *target_profiles.handlers,
        *learners.handlers,
        *tasks.handlers,
        *webhooks.handlers,
        *billing_console.handlers,
        *billing_invoices.handlers,
        *billing_usage.handlers,
        *sso_console.handlers,
        *sso_saml_console.handlers,
        *sso_domains_console.handlers,
        *scim_console.handlers,
    ],
)

handlers: list[ControllerRouterHandler] = [organizations, console_router]
