"""Campaigns in the tenant console, `/o/{slug}/campaigns…`: the list and the creation form,
a campaign's page (its link, statistics and shared results), its edit form and its close,
archive, reopen and duplicate actions.

Every member reads campaigns (`org:campaigns:read`); owners and admins create and change
them (`org:campaigns:manage`). Campaign ids go through the service's accessor, so another
organization's id is the 404 of an unknown one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from api.routes import campaign_dashboard, campaign_participants
from campaigns import campaign_listing, exports, service
from campaigns.campaign_fields import (
    CAMPAIGN_TYPES,
    EXTERNAL_ID_FORMATS,
    Campaign,
    CampaignFields,
    last_open_day,
    offered_locales,
)
from campaigns.campaign_stats import CampaignStats, campaign_stats
from campaigns.content import current_bank, frozen_bank
from campaigns.profile_catalogue import catalogue
from campaigns.target_profiles import list_target_profiles
from core.errors import Invalid, UserError
from core.i18n import in_language
from core.settings import get_settings
from sso.discovery import sso_available
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.pages import flash, form_error, form_of, locale_of, redirect, render

READ = {"permission": Permission.CAMPAIGNS_READ}
MANAGE = {"permission": Permission.CAMPAIGNS_MANAGE}
NEW_CAMPAIGN = {
    "type": "assessment",
    "target_profile": "catalogue:digcomp",
    "locales": ("fr", "en"),
    "consumes_seat": True,
}


async def _profile_options(ctx: TenantContext, locale: str) -> list[tuple[str, str]]:
    """(value, label) of the target profiles to choose from: the catalogue, then the
    organization's own."""
    options = [
        (f"catalogue:{p.key}", p.title.get(locale) or p.title["en"])
        for p in catalogue(current_bank())
    ]
    options += [(f"custom:{p.id}", p.name) for p in await list_target_profiles(ctx)]
    return options


def _fields(
    form: Any, current: Campaign | None = None, *, sso_offered: bool = False
) -> CampaignFields:
    """The campaign's fields from the form (`current`: the campaign being edited); the dates
    go as typed, for the service to read in the organization's time zone. The SSO box counts
    only while the organization has an enabled connection (`sso_offered`): otherwise the
    campaign keeps what it had."""
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    kind, _, ref = values.get("target_profile", "").partition(":")
    if kind not in ("catalogue", "custom") or not ref:
        raise Invalid("Choose one of the offered target profiles.", field="target_profile")
    delay = values.get("retake_delay_days", "").strip() or "0"
    if not delay.isascii() or not delay.isdigit() or len(delay) > 5:
        raise Invalid("Enter a number of days.", field="retake_delay_days")
    locales = (
        tuple(v for v in form.getall("locales") if isinstance(v, str)) if "locales" in form else ()
    )
    return CampaignFields(
        name=values.get("name", ""),
        type=values.get("type", ""),
        profile_key=ref if kind == "catalogue" else None,
        target_profile_id=ref if kind == "custom" else None,
        locales=locales,
        landing_text=values.get("landing_text", ""),
        external_id_label=values.get("external_id_label") or None,
        external_id_format=values.get("external_id_format") or "text",
        opens_on=values.get("opens_at", ""),
        closes_on=values.get("closes_at", ""),
        retake_allowed=values.get("retake_allowed") == "yes",
        retake_delay_days=int(delay),
        consumes_seat=values.get("consumes_seat") == "yes",
        sso_required=(
            values.get("sso_required") == "yes"
            if sso_offered
            else (current.sso_required if current else False)
        ),
    )


async def _list_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    context: dict[str, Any] = {
        "campaigns": await campaign_listing.all_campaigns(ctx),
        "profiles": await _profile_options(ctx, locale_of(request)),
        "types": CAMPAIGN_TYPES,
        "formats": EXTERNAL_ID_FORMATS,
        "all_locales": offered_locales(current_bank()),
        "sso_offered": await sso_available(ctx),
    }
    if error is None:
        return render(request, "console/campaigns.html", ctx=ctx, values=NEW_CAMPAIGN, **context)
    return form_error(request, "console/campaigns.html", error, values or {}, ctx=ctx, **context)


@get("/campaigns", opt=READ)
async def campaigns_page(request: Request[Any, Any, Any], ctx: Ctx) -> Template:
    return await _list_page(request, ctx)


@post("/campaigns", opt=MANAGE)
async def campaign_create(request: Request[Any, Any, Any], ctx: Ctx) -> Template | Redirect:
    form = await request.form()
    try:
        fields = _fields(form, sso_offered=await sso_available(ctx))
        campaign = await service.create_campaign(ctx, fields)
    except UserError as error:
        values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        values["locales"] = [v for v in form.getall("locales")] if "locales" in form else []
        return await _list_page(request, ctx, error, values)
    flash(
        request,
        "The campaign {name} is open. Its code is {code}.",
        name=campaign.name,
        code=campaign.code,
    )
    return redirect(f"/o/{ctx.tenant.slug}/campaigns/{campaign.id}")


def _competence_rows(campaign: Campaign, stats: CampaignStats, locale: str) -> list[dict[str, Any]]:
    bank = frozen_bank(campaign.bank_version)
    rows = []
    for code in campaign.profile.competences:
        found = stats.competences.get(code)
        title = bank.competences[code].title if code in bank.competences else {}
        rows.append(
            {
                "code": code,
                "title": in_language(title, locale),
                "average": found.average_level if found else None,
                "distribution": found.distribution if found else (0,) * 9,
                "max_level": campaign.profile.max_level(code),
            }
        )
    return rows


async def _campaign_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    campaign_id: str,
    error: UserError | None = None,
) -> Template:
    campaign = await service.get_campaign(ctx, campaign_id)
    stats = await campaign_stats(ctx, campaign.id)
    context: dict[str, Any] = {
        "campaign": campaign,
        "stats": stats,
        "link": get_settings().campaign_link(campaign.code),
        "competences": _competence_rows(campaign, stats, locale_of(request)),
        "export_in_background": exports.runs_in_background(stats.shared),
    }
    board = await campaign_dashboard.dashboard(request, ctx, campaign.id)
    context.update(board.context)
    error = error or board.error
    if error is None:
        return render(request, "console/campaign.html", ctx=ctx, **context)
    return form_error(request, "console/campaign.html", error, {}, ctx=ctx, **context)


@get("/campaigns/{campaign_id:str}", opt=READ)
async def campaign_page(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template:
    return await _campaign_page(request, ctx, campaign_id)


async def _change(
    request: Request[Any, Any, Any], ctx: TenantContext, campaign_id: str, action: str
) -> Template | Redirect:
    """Close, archive, reopen or duplicate; a refusal (an archived campaign, say) shows the
    campaign page again with its reason."""
    page = f"/o/{ctx.tenant.slug}/campaigns/{campaign_id}"
    try:
        match action:
            case "close":
                await service.close_campaign(ctx, campaign_id)
                flash(request, "The campaign is closed: nobody new can start it.")
            case "archive":
                await service.archive_campaign(ctx, campaign_id)
                flash(request, "The campaign is archived: its link no longer works.")
            case "activate":
                await service.activate_campaign(ctx, campaign_id)
                flash(request, "The campaign is open.")
            case _:
                copy = await service.duplicate_campaign(ctx, campaign_id, locale=locale_of(request))
                flash(request, "This is a draft copy of the campaign, with a new code.")
                return redirect(f"/o/{ctx.tenant.slug}/campaigns/{copy.id}")
    except UserError as error:
        if error.status_code == 404:
            raise
        error.field = None
        return await _campaign_page(request, ctx, campaign_id, error)
    return redirect(page)


#: The statuses in which closing or archiving has nothing left to do.
_ALREADY = {"close": ("closed", "archived"), "archive": ("archived",)}


async def _confirmation(
    request: Request[Any, Any, Any], ctx: TenantContext, campaign_id: str, action: str
) -> Template | Redirect:
    """The page that asks to confirm closing or archiving, and says what it does; its button
    posts the confirmed form to the same address. A campaign already closed or archived (an
    old tab, a bookmark) leads back to its page, as a revoked token's page does."""
    campaign = await service.get_campaign(ctx, campaign_id)
    base = f"/o/{ctx.tenant.slug}/campaigns/{campaign.id}"
    if campaign.status in _ALREADY[action]:
        return redirect(base)
    return render(
        request,
        "console/confirm.html",
        ctx=ctx,
        what=f"campaign_{action}",
        subject=campaign,
        action=f"{base}/{action}",
        back=base,
    )


async def _confirmed_change(
    request: Request[Any, Any, Any], ctx: TenantContext, campaign_id: str, action: str
) -> Template | Redirect:
    """Close or archive once confirmed; a form without the confirmation (an old page, a
    script) acts on nothing and is sent to the confirmation page of a campaign that exists:
    an unknown, mangled or other tenant's id is a 404, as on that page."""
    form = await form_of(request)
    if form.get("confirm") != "yes":
        campaign = await service.get_campaign(ctx, campaign_id)
        return redirect(f"/o/{ctx.tenant.slug}/campaigns/{campaign.id}/{action}")
    return await _change(request, ctx, campaign_id, action)


@get("/campaigns/{campaign_id:str}/close", opt=MANAGE)
async def campaign_close_confirm(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template | Redirect:
    return await _confirmation(request, ctx, campaign_id, "close")


@post("/campaigns/{campaign_id:str}/close", opt=MANAGE)
async def campaign_close(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template | Redirect:
    return await _confirmed_change(request, ctx, campaign_id, "close")


@get("/campaigns/{campaign_id:str}/archive", opt=MANAGE)
async def campaign_archive_confirm(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template | Redirect:
    return await _confirmation(request, ctx, campaign_id, "archive")


@post("/campaigns/{campaign_id:str}/archive", opt=MANAGE)
async def campaign_archive(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template | Redirect:
    return await _confirmed_change(request, ctx, campaign_id, "archive")


@post("/campaigns/{campaign_id:str}/activate", opt=MANAGE)
async def campaign_activate(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template | Redirect:
    return await _change(request, ctx, campaign_id, "activate")


@post("/campaigns/{campaign_id:str}/duplicate", opt=MANAGE)
async def campaign_duplicate(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template | Redirect:
    return await _change(request, ctx, campaign_id, "duplicate")


def _edit_values(campaign: Campaign, ctx: TenantContext) -> dict[str, Any]:
    """The campaign as the form shows it: dates in the organization's time zone, the closing
    date as the last open day."""
    fields = campaign.fields()
    zone = ctx.tenant.zone
    closes = last_open_day(fields.closes_at, zone) if fields.closes_at else None
    return {
        "name": fields.name,
        "type": fields.type,
        "target_profile": (
            f"custom:{fields.target_profile_id}"
            if fields.target_profile_id
            else f"catalogue:{fields.profile_key}"
        ),
        "locales": list(fields.locales),
        "landing_text": fields.landing_text,
        "external_id_label": fields.external_id_label or "",
        "external_id_format": fields.external_id_format,
        "opens_at": fields.opens_at.astimezone(zone).date().isoformat() if fields.opens_at else "",
        "closes_at": closes.isoformat() if closes else "",
        "retake_allowed": fields.retake_allowed,
        "retake_delay_days": str(fields.retake_delay_days),
        "consumes_seat": fields.consumes_seat,
        "sso_required": fields.sso_required,
    }


async def _edit_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    campaign: Campaign,
    values: dict[str, Any],
    error: UserError | None = None,
) -> Template:
    stats = await campaign_stats(ctx, campaign.id)
    context: dict[str, Any] = {
        "campaign": campaign,
        "profiles": await _profile_options(ctx, locale_of(request)),
        "all_locales": offered_locales(current_bank()),
        "locked": stats.started > 0,
        "sso_offered": await sso_available(ctx),
    }
    if error is None:
        return render(request, "console/campaign_edit.html", ctx=ctx, values=values, **context)
    return form_error(request, "console/campaign_edit.html", error, values, ctx=ctx, **context)


@get("/campaigns/{campaign_id:str}/edit", opt=MANAGE)
async def campaign_edit_page(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template:
    campaign = await service.get_campaign(ctx, campaign_id)
    return await _edit_page(request, ctx, campaign, _edit_values(campaign, ctx))


@post("/campaigns/{campaign_id:str}/edit", opt=MANAGE)
async def campaign_edit(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Template | Redirect:
    form = await request.form()
    current = await service.get_campaign(ctx, campaign_id)
    try:
        fields = _fields(form, current, sso_offered=await sso_available(ctx))
        campaign = await service.update_campaign(ctx, campaign_id, fields)
    except UserError as error:
        if error.status_code == 404:
            raise
        values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        values["locales"] = [v for v in form.getall("locales")] if "locales" in form else []
        return await _edit_page(request, ctx, current, values, error)
    flash(request, "The campaign is saved.")
    return redirect(f"/o/{ctx.tenant.slug}/campaigns/{campaign.id}")


def _csv_dialect(request: Request[Any, Any, Any], separator: str | None) -> exports.CsvDialect:
    """The CSV dialect of the person's spreadsheet: their language's (`;` and `,` in French,
    Dutch and German), or the separator they chose on the export form."""
    return exports.csv_dialect(locale_of(request), separator or None)


async def _export(
    request: Request[Any, Any, Any], ctx: TenantContext, campaign_id: str, export_format: str
) -> Stream | Redirect:
    """A small export streams at once (bounded memory whatever its size); a large one is
    started from the campaign page's buttons, as a background task, and never by a GET."""
    locale = ctx.tenant.default_locale
    body: AsyncIterator[str] | AsyncIterator[bytes]
    try:
        if export_format == "csv":
            dialect = _csv_dialect(request, request.query_params.get("separator"))
            name, body = await exports.results_csv(ctx, campaign_id, locale, dialect)
        else:
            name, body = await exports.results_xlsx(ctx, campaign_id, locale)
    except exports.RunsInBackground:
        flash(request, "This campaign has many results: start its export with the buttons below.")
        return redirect(f"/o/{ctx.tenant.slug}/campaigns/{campaign_id}")
    return Stream(
        body,
        media_type=exports.CONTENT_TYPES[export_format],
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@get("/campaigns/{campaign_id:str}/results.csv", opt=READ)
async def campaign_results_csv(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Stream | Redirect:
    """The shared results as CSV (UTF-8 with BOM), headers in the organization's language,
    cells separated as the person's spreadsheet expects (`?separator=semicolon|comma` to
    choose)."""
    return await _export(request, ctx, campaign_id, "csv")


@get("/campaigns/{campaign_id:str}/results.xlsx", opt=READ)
async def campaign_results_xlsx(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Stream | Redirect:
    """The shared results as an XLSX workbook, the same columns as the CSV."""
    return await _export(request, ctx, campaign_id, "xlsx")


@post("/campaigns/{campaign_id:str}/exports", opt=READ)
async def campaign_export_start(
    request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]
) -> Redirect:
    """Start the export (`format`: csv or xlsx) as a background task; follow its progress.
    Every member who reads the results may, as they may download a small export."""
    form = await form_of(request)
    task_id = await exports.start_export(
        ctx,
        campaign_id,
        form.get("format", ""),
        ctx.tenant.default_locale,
        _csv_dialect(request, form.get("separator")),
    )
    return redirect(f"/o/{ctx.tenant.slug}/tasks/{task_id}")


handlers = [
    campaigns_page,
    campaign_results_csv,
    campaign_results_xlsx,
    campaign_export_start,
    campaign_create,
    campaign_page,
    campaign_close,
    campaign_archive,
    campaign_close_confirm,
    campaign_archive_confirm,
    campaign_activate,
    campaign_duplicate,
    campaign_edit_page,
    campaign_edit,
    *campaign_participants.handlers,
]
