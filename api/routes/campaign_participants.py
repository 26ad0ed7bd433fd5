"""A campaign's participants in the console: inviting the organization's learners by mail
(`/o/{slug}/campaigns/{id}/invite`) and one participant's page
(`/o/{slug}/campaigns/{id}/participants/{participation_id}`), which the participants table
links to.

Inviting is for those who manage campaigns (`org:campaigns:manage`); the participant's page
for every member who reads learners. Ids go through the services' accessors: another
organization's campaign or participation is the 404 of an unknown one.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from campaigns import invitations, service
from campaigns.content import frozen_bank
from campaigns.learners import learner_groups
from campaigns.participant_details import participant_detail
from core.errors import UserError
from core.i18n import in_language
from core.settings import get_settings
from tenants.context import TenantContext
from tenants.permissions import Permission
from web.guards import Ctx
from web.kept_forms import keep_form, kept_form
from web.pages import flash, form_error, form_of, locale_of, redirect, render

READ = {"permission": Permission.CAMPAIGNS_READ}
MANAGE = {"permission": Permission.CAMPAIGNS_MANAGE}


async def _invite_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    campaign_id: str,
    values: dict[str, Any],
    error: UserError | None = None,
) -> Template:
    campaign = await service.get_campaign(ctx, campaign_id)
    groups = await learner_groups(ctx)
    group = values.get("group") or None
    audience = await invitations.invitation_audience(
        ctx, campaign.id, group if group in groups else None
    )
    context: dict[str, Any] = {
        "campaign": campaign,
        "groups": groups,
        "audience": audience,
        "reminder_choices": invitations.REMINDER_CHOICES,
        "link": get_settings().campaign_link(campaign.code),
    }
    if error is None:
        return render(request, "console/campaign_invite.html", ctx=ctx, values=values, **context)
    return form_error(request, "console/campaign_invite.html", error, values, ctx=ctx, **context)


@get("/campaigns/{campaign_id:str}/invite", opt=MANAGE)
async def invite_page(
    request: Request[Any, Any, Any],
    ctx: Ctx,
    campaign_id: FromPath[str],
    group: FromQuery[str | None] = None,
) -> Template:
    """The invitation form: whom (every learner, or a group), which reminders, and how many
    learners it would reach."""
    kept = kept_form(request, f"/o/{ctx.tenant.slug}/campaigns/{campaign_id}/invite")
    if kept is not None:
        return await _invite_page(request, ctx, campaign_id, kept[1], kept[0])
    values: dict[str, Any] = {
        "group": group or "",
        "reminders": [str(day) for day in invitations.REMINDER_CHOICES],
    }
    return await _invite_page(request, ctx, campaign_id, values)


@post("/campaigns/{campaign_id:str}/invite", opt=MANAGE)
async def invite(request: Request[Any, Any, Any], ctx: Ctx, campaign_id: FromPath[str]) -> Redirect:
    """Invite the learners; the mails go out from a job. Back to the form either way
    (Post/Redirect/Get), which tells what was done or what was refused."""
    form = await form_of(request)
    raw = await request.form()
    # No box ticked: no reminder (the field is then absent from the form).
    chosen = raw.getall("reminders") if "reminders" in raw else []
    ticked = [value for value in chosen if isinstance(value, str)]
    page = f"/o/{ctx.tenant.slug}/campaigns/{campaign_id}/invite"
    try:
        days = invitations.clean_reminder_days(ticked)
        sent = await invitations.invite_learners(
            ctx,
            campaign_id,
            group=form.get("group") or None,
            reminder_days=days,
            limiter=request.app.state.limiter,
        )
    except UserError as error:
        if error.status_code == 404:
            raise
        keep_form(request, page, error, {"group": form.get("group", ""), "reminders": ticked})
        return redirect(page)
    if sent.invited:
        flash(
            request,
            "The invitations are on their way: each learner receives a mail with the "
            "campaign’s link in a few minutes.",
        )
    else:
        flash(
            request,
            "Nobody new to invite: every learner chosen was invited already, has "
            "finished the campaign or has no email address.",
        )
    return redirect(page)


@get("/campaigns/{campaign_id:str}/participants/{participation_id:str}", opt=READ)
async def participant_page(
    request: Request[Any, Any, Any],
    ctx: Ctx,
    campaign_id: FromPath[str],
    participation_id: FromPath[str],
) -> Template:
    """One participant of the campaign: who, where they stand, their levels once shared,
    and the invitation mails sent to them."""
    detail = await participant_detail(ctx, campaign_id, participation_id)
    campaign = await service.get_campaign(ctx, detail.participation.campaign_id)
    return render(
        request,
        "console/campaign_participant.html",
        ctx=ctx,
        campaign=campaign,
        detail=detail,
        titles=_competence_titles(campaign.bank_version, locale_of(request)),
    )


def _competence_titles(bank_version: str, locale: str) -> dict[str, str]:
    bank = frozen_bank(bank_version)
    return {
        code: in_language(competence.title, locale) for code, competence in bank.competences.items()
    }


handlers = [invite_page, invite, participant_page]
