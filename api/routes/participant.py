"""The participant's journey: a campaign code, its landing page, an account, the test one
challenge per page, the results and the consent to share them, and one's own results.

- `/c` and `/c/{code}…` are reached with a code only: the code names the campaign and so the
  tenant (`resolve_code`), before anyone is known.
- `/p/{slug}/{participation_id}…` are a signed-in person's own participation in the tenant
  `slug`: the services check that the participation is theirs, so another person's id, or an
  id under another tenant's slug, is the same 404 as an unknown one.

Every page works without JavaScript: plain forms, one challenge per page, Post/Redirect/Get.
The challenge form carries the challenge id, so a stale page (a second tab, the back button)
is refused with the current challenge shown again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler

from api.routes.auth import mail_sent, mail_sent_page, sign_in, terms_url
from api.routes.sso_signin import CAMPAIGN_SIGN_IN, sso_session
from campaigns.codes import LENGTH, is_well_formed, normalize_code
from campaigns.participation.answering import (
    ChallengeView,
    answer_state_read,
    current_challenge,
    current_challenge_read,
    extend_time,
    prepare_answer,
    read_current_challenge,
    record_answer,
)
from campaigns.participation.landing import (
    CampaignLanding,
    closed_campaign,
    own_latest_participation,
    participant_context,
    resolve_code,
)
from campaigns.participation.results import my_participations, result_details, share
from campaigns.participation.start import start_or_resume
from campaigns.problem_reports import report_problem
from core.errors import Conflict, Gone, Invalid, NotFound, UserError
from core.settings import get_settings
from sso.discovery import sign_in_connections
from tenants.accounts import (
    NewAccount,
    UserAccount,
    check_new_account,
    create_user,
    request_email_verification,
    request_signup_link,
)
from tenants.context import TenantContext, TenantSummary
from tenants.organizations import TenantRead, dangerously_enter_tenant_by_slug, tenant_by_slug
from web.guards import LoginRequired, signed_in
from web.kept_forms import keep_form, kept_form, kept_list
from web.pages import (
    actor_for,
    client_ip,
    current_user,
    flash,
    form_error,
    form_of,
    locale_of,
    prefer_locale,
    redirect,
    remember_user,
    render,
    session_of,
    session_user_id,
)
from web.requests import connection_peer

#: Asked when a code cannot be right, before any lookup (the check character caught it).
MISTYPED_MESSAGE = (
    "This code contains a typing mistake. Check each character: a code has 9 letters and "
    "digits, without 0, 1, I, L or O."
)
CODE_LENGTH_MESSAGE = "A campaign code has 9 characters."
#: The session key of the answer in progress sent with a problem report, checked again on the
#: challenge page the report comes back to.
CHOSEN = "report_chosen"


# --- the code ------------------------------------------------------------------------------


def _check_code(text: str) -> str:
    """The code as typed, normalized; `Invalid` with a message saying what is wrong."""
    code = normalize_code(text)
    if not code:
        raise Invalid("Enter the code you were given.", field="code")
    if len(code) != LENGTH:
        raise Invalid(CODE_LENGTH_MESSAGE, field="code")
    if not is_well_formed(code):
        raise Invalid(MISTYPED_MESSAGE, field="code")
    return code


@get("/c")
async def code_page(
    request: Request[Any, Any, Any], code: FromQuery[str | None] = None
) -> Template | Redirect:
    """The code form; a GET form, so that a code can also be shared as `/c?code=…`."""
    await current_user(request)
    if code is None:
        return render(request, "participant/code.html")
    try:
        normalized = _check_code(code)
        await resolve_code(normalized)
    except UserError as error:
        if error.field is None:
            error.field = "code"
        return form_error(request, "participant/code.html", error, {"code": code})
    return redirect(f"/c/{normalized}")


async def _landing_page(
    request: Request[Any, Any, Any],
    landing: CampaignLanding,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    context: dict[str, Any] = {"landing": landing, "tenant": landing.tenant}
    user = await current_user(request)
    if user is not None:
        # Back on the link after finishing: the results, not the start form again.
        ctx = participant_context(landing.tenant, actor_for(request, user))
        latest = await own_latest_participation(ctx, landing.campaign_id)
        if latest is not None and latest.status != "started":
            context["finished"] = f"/p/{landing.tenant.slug}/{latest.id}/results"
    if landing.sso_required:
        # An SSO-required campaign starts only after a sign-in through the organization's
        # identity provider, in this session; until then its connections are offered.
        marker = sso_session(request, landing.tenant.id)
        context["sso"] = marker
        context["sso_choices"] = (
            [] if marker is not None else await sign_in_connections(landing.tenant)
        )
    if error is not None:
        return form_error(request, "participant/landing.html", error, values or {}, **context)
    return render(request, "participant/landing.html", **context)


async def _landing(request: Request[Any, Any, Any], code: str) -> tuple[str, CampaignLanding]:
    """The campaign of `code`; its pages speak one of its languages to a visitor who chose none."""
    normalized = normalize_code(code)
    landing = await resolve_code(normalized)
    prefer_locale(
        request,
        landing.locales[0] if landing.locales else landing.tenant.default_locale,
        landing.locales,
    )
    return normalized, landing


async def _closed_page(request: Request[Any, Any, Any], code: str, gone: Gone) -> Template:
    """The 410 of a campaign that no longer takes participants; a signed-in person who
    finished it gets a link to their results there (the link was theirs too)."""
    user = await current_user(request)
    context: dict[str, Any] = {"message": gone.message, "params": gone.params}
    campaign = await closed_campaign(code) if user is not None else None
    if campaign is not None and user is not None:
        ctx = participant_context(campaign.tenant, actor_for(request, user))
        latest = await own_latest_participation(ctx, campaign.campaign_id)
        if latest is not None and latest.status != "started":
            context["finished"] = f"/p/{campaign.tenant.slug}/{latest.id}/results"
            context["campaign"] = campaign
            context["tenant"] = campaign.tenant
    return render(request, "participant/closed.html", status=410, **context)


@get("/c/{code:str}")
async def landing_page(request: Request[Any, Any, Any], code: FromPath[str]) -> Template | Redirect:
    await current_user(request)
    try:
        normalized, landing = await _landing(request, code)
    except Gone as gone:
        return await _closed_page(request, normalize_code(code), gone)
    if normalized != code:
        return redirect(f"/c/{normalized}")
    kept = kept_form(request, f"/c/{normalized}")
    if kept is not None:
        return await _landing_page(request, landing, *kept)
    return await _landing_page(request, landing)


@get("/c/{code:str}/start")
async def start_page(request: Request[Any, Any, Any], code: FromPath[str]) -> Redirect:
    """The start button's form lives on the campaign's page: a reload or a bookmark of the
    form's address leads there (an unknown code is the same 404), not to a 405."""
    normalized, _landing_of_code = await _landing(request, code)
    return redirect(f"/c/{normalized}")


@get("/c/{code:str}/sso")
async def sso_sign_in(
    request: Request[Any, Any, Any], code: FromPath[str], connection: FromQuery[str | None] = None
) -> Template | Redirect:
    """Send a participant of an SSO-required campaign to their organization's identity
    provider (`connection`, or the only one), coming back to the campaign's page."""
    normalized, landing = await _landing(request, code)
    choices = await sign_in_connections(landing.tenant)
    chosen = [c for c in choices if str(c.connection_id) == connection] if connection else []
    if not chosen and len(choices) == 1:
        chosen = choices
    if not landing.sso_required or not chosen:
        return redirect(f"/c/{normalized}")
    session_of(request)[CAMPAIGN_SIGN_IN] = {
        "tenant_id": str(landing.tenant.id),
        "code": normalized,
    }
    return redirect(chosen[0].start_url(f"/c/{normalized}"))


@get("/c/{code:str}/account")
async def account_page(
    request: Request[Any, Any, Any], code: FromPath[str], sent: FromQuery[str | None] = None
) -> Template | Redirect:
    normalized, landing = await _landing(request, code)
    if await current_user(request):
        return redirect(f"/c/{normalized}")
    if sent is not None:
        return mail_sent_page(request, "signup_link", again=f"/c/{normalized}/account")
    return render(
        request,
        "participant/account.html",
        landing=landing,
        tenant=landing.tenant,
        terms_url=terms_url(),
    )


async def _signup_by_link(request: Request[Any, Any, Any], code: str, new: NewAccount) -> Redirect:
    """Mail the sign-up link (or, for an address with an account, a sign-in link), then the
    page that says it is on its way (Post/Redirect/Get)."""
    await request_signup_link(
        new,
        get_settings(),
        f"/c/{code}",
        limiter=request.app.state.limiter,
        ip=client_ip(request),
    )
    return mail_sent(request, "signup_link", new.email, f"/c/{code}/account?sent=1")


@post("/c/{code:str}/account")
async def account_create(
    request: Request[Any, Any, Any], code: FromPath[str]
) -> Template | Redirect:
    """A participant's account, from the campaign's page: with a password, created at once;
    without (both password fields empty), by a link mailed to the address, which creates it
    when followed (`request_signup_link`) and brings the person back to the campaign."""
    normalized, landing = await _landing(request, code)
    form = await form_of(request)
    try:
        new = check_new_account(
            name=form.get("name"),
            password=form.get("password"),
            password_confirm=form.get("password_confirm"),
            locale=locale_of(request),
            default_locale=get_settings().default_locale,
            email=form.get("email", ""),
            terms=bool(form.get("terms")),
            password_optional=True,
        )
        if new.password is None:
            return await _signup_by_link(request, normalized, new)
        try:
            user = await create_user(new.email, new.name, new.password, new.locale)
        except Conflict:
            # The address has an account: the form does not say so (it would tell anyone
            # who has one); its owner is mailed a sign-in link, as on the link's way.
            return await _signup_by_link(request, normalized, new)
    except UserError as error:
        return form_error(
            request,
            "participant/account.html",
            error,
            form,
            landing=landing,
            tenant=landing.tenant,
            terms_url=terms_url(),
        )
    sign_in(request, user)
    await request_email_verification(user, get_settings())
    flash(request, "Your account is ready.")
    return redirect(f"/c/{normalized}")


@post("/c/{code:str}/start")
async def start(request: Request[Any, Any, Any], code: FromPath[str]) -> Template | Redirect:
    normalized, landing = await _landing(request, code)
    user = await current_user(request)
    if user is None:
        return Redirect(path="/login", query_params={"next": f"/c/{normalized}"}, status_code=303)
    form = await form_of(request)
    ctx = participant_context(landing.tenant, actor_for(request, user))
    marker = sso_session(request, landing.tenant.id)
    external_id = form.get("external_id") if landing.external_id_label else None
    if landing.external_id_label and marker is not None and marker.get("external_id"):
        # The identity provider's value (the connection's external-id claim) wins.
        external_id = marker["external_id"]
    try:
        participation = await start_or_resume(
            ctx,
            landing.campaign_id,
            external_id=external_id,
            locale=locale_of(request),
            via_sso=marker is not None,
        )
    except UserError as error:
        # The campaign's page again (a GET), the error beside the field, the value kept.
        keep_form(request, f"/c/{normalized}", error, form, fields=("external_id",))
        return redirect(f"/c/{normalized}")
    base = f"/p/{landing.tenant.slug}/{participation.id}"
    return redirect(base if participation.status == "started" else f"{base}/results")


# --- the test ------------------------------------------------------------------------------


async def _participant(request: Request[Any, Any, Any], slug: str) -> TenantContext:
    """The signed-in person as a participant of the tenant `slug` (404 when there is none)."""
    user = await current_user(request)
    assert user is not None  # the signed_in guard
    return participant_context(await tenant_by_slug(slug), actor_for(request, user))


@asynccontextmanager
async def _participant_transaction(
    request: Request[Any, Any, Any], slug: str, read: _Read | None = None
) -> AsyncIterator[tuple[TenantContext, list[dict[str, Any]] | None]]:
    """The signed-in person as a participant of the tenant `slug`, inside the one transaction
    of the request (ADR 0023): their account and the organization are read in it, with the
    page's first read of the tenant (`read`, made for this person) in the same statement when
    it can be; then the page's own work. Yields the context and the rows of `read` (None
    without one). Signed-out visitors (an account gone or inactive included) are sent to sign
    in, as the `signed_in` guard would; an unknown slug is a 404."""
    user_id = session_user_id(request)
    if user_id is None:
        raise LoginRequired()
    async with dangerously_enter_tenant_by_slug(
        user_id, slug, None if read is None else read(user_id)
    ) as found:
        if found is None:
            remember_user(request, None)
            raise LoginRequired()
        if remember_user(request, found.user) is None:  # signed out by a password change
            raise LoginRequired()
        if found.tenant is None:
            raise NotFound()
        yield (
            participant_context(found.tenant, actor_for(request, found.user)),
            None if read is None else found.rows,
        )


@dataclass(frozen=True)
class _AnsweredPage:
    """The test page an answer redirects to, as the answer just wrote it."""

    deadline: float
    user: UserAccount
    tenant: TenantSummary
    view: ChallengeView


#: The page each answer redirects to, kept by the process that recorded the answer for the
#: browser that follows the 303 on the same connection (so to the same process): that GET is
#: served from it, without a transaction (ADR 0023, addendum 5). Keyed by the session, the
#: page's path and the connection (`web.requests.connection_peer`); taken once; dropped by
#: any later form sent to the page; kept `ANSWERED_PAGE_SECONDS` at most,
#: `ANSWERED_PAGES_MAX` pages at most (the oldest go first). What it shows is the state the
#: answer committed, with the account and the organization as the answer read them, at most
#: that long before.
_ANSWERED_PAGES: OrderedDict[tuple[str, str, object], _AnsweredPage] = OrderedDict()
ANSWERED_PAGE_SECONDS = 2.0
ANSWERED_PAGES_MAX = 10_000


def _answered_key(request: Request[Any, Any, Any], here: str) -> tuple[str, str, object] | None:
    session_id = session_of(request).session_id
    if session_id is None:
        return None
    return session_id, here, connection_peer(request)


def _keep_answered_page(
    request: Request[Any, Any, Any], here: str, ctx: TenantContext, view: ChallengeView
) -> None:
    """Keep the next challenge an answer just chose for the redirect that follows, unless the
    page has a clock to start (a timed challenge's first showing is written by its page)."""
    key = _answered_key(request, here)
    user = request.scope.get("state", {}).get("user")
    if key is None or user is None or view.timer_seconds is not None:
        return
    pages = _ANSWERED_PAGES
    pages[key] = _AnsweredPage(time.monotonic() + ANSWERED_PAGE_SECONDS, user, ctx.tenant, view)
    pages.move_to_end(key)
    while len(pages) > ANSWERED_PAGES_MAX:
        pages.popitem(last=False)


def _forget_answered_page(request: Request[Any, Any, Any], here: str) -> None:
    """A form sent to the page (an answer, a report, more time): what an earlier answer kept
    for it may no longer be the page."""
    key = _answered_key(request, here)
    if key is not None:
        _ANSWERED_PAGES.pop(key, None)


def _answered_page(
    request: Request[Any, Any, Any], here: str
) -> tuple[TenantContext, ChallengeView] | None:
    """The page the answer of this session, on this connection, just chose for `here`, taken
    (once), if it is fresh and the session is signed in as the person who answered; None
    otherwise."""
    key = _answered_key(request, here)
    if key is None:
        return None
    kept = _ANSWERED_PAGES.pop(key, None)
    if kept is None or kept.deadline < time.monotonic():
        return None
    if session_user_id(request) != kept.user.id:
        return None
    if remember_user(request, kept.user) is None:  # the account as the answer read it
        return None
    return participant_context(kept.tenant, actor_for(request, kept.user)), kept.view


#: A page's first read of its tenant, made for the signed-in person (their id given).
_Read = Callable[[UUID], TenantRead]


def _reading(make: Callable[[UUID, UUID], TenantRead], participation_id: str) -> _Read | None:
    """The page's first read of participation `participation_id` for the signed-in person,
    or None for an id that is not one (the service answers 404 then, once the person and the
    organization are known)."""
    try:
        participation = UUID(participation_id)
    except ValueError:
        return None
    return lambda user_id: make(participation, user_id)


def _challenge_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    view: ChallengeView,
    error: UserError | None = None,
    values: dict[str, Any] | None = None,
    *,
    chosen: Sequence[str] = (),
    reporting: bool = False,
) -> Template:
    context: dict[str, Any] = {
        "challenge": view,
        "tenant": ctx.tenant,
        "answered": view.position - 1,
        # the answer in progress, checked again (after a problem report)
        "chosen": list(chosen),
        "reporting": reporting,
    }
    if error is None:
        return render(request, "participant/challenge.html", **context)
    return form_error(request, "participant/challenge.html", error, values or {}, **context)


# The test page and its answer form are the hot path (ADR 0023): no `signed_in` guard, whose
# account lookup would be a transaction of its own; `_participant_transaction` checks the
# same in the request's single transaction.
@get("/p/{slug:str}/{participation_id:str}")
async def challenge_page(
    request: Request[Any, Any, Any], slug: FromPath[str], participation_id: FromPath[str]
) -> Template | Redirect:
    here = f"/p/{slug}/{participation_id}"
    view: ChallengeView | None
    answered = _answered_page(request, here)
    if answered is not None:  # the redirect after an answer: the page it just chose
        ctx, view = answered
    else:
        read = _reading(current_challenge_read, participation_id)
        async with _participant_transaction(request, slug, read) as (ctx, state):
            view = await read_current_challenge(ctx, participation_id, state)
    if view is None:
        return redirect(f"{here}/results")
    # After a problem report (Post/Redirect/Get): the answer in progress checked again, and a
    # refused report's error with what was typed.
    kept_answer = session_of(request).get(CHOSEN)
    chosen: list[str] = []
    if isinstance(kept_answer, dict) and kept_answer.get("page") == here:
        session_of(request).pop(CHOSEN)
        chosen = [str(v) for v in kept_answer.get("answer", [])]
    kept = kept_form(request, here)
    if kept is None:
        return _challenge_page(request, ctx, view, chosen=chosen)
    error, values = kept
    chosen = [str(v) for v in values.pop("answer", [])]
    reporting = values.pop("reporting", None) == "yes"
    return _challenge_page(request, ctx, view, error, values, chosen=chosen, reporting=reporting)


def _answer_value(form: Any, kind: str) -> Any:
    """The submitted answer in the shape the service checks: an index, indices, or text."""
    values = [v for v in form.getall("answer") if isinstance(v, str)] if "answer" in form else []
    if kind == "short_text":
        return values[-1] if values else ""
    try:
        indices = [int(v) for v in values]
    except ValueError:
        indices = [-1]
    if kind == "single_choice":
        if len(indices) != 1:
            raise Invalid("Choose one of the offered answers.", field="answer")
        return indices[0]
    if not indices:
        raise Invalid("Choose one or more of the offered answers.", field="answer")
    return indices


@post("/p/{slug:str}/{participation_id:str}")
async def challenge_answer(
    request: Request[Any, Any, Any], slug: FromPath[str], participation_id: FromPath[str]
) -> Template | Redirect:
    form = await request.form()
    challenge_id = str(form.get("challenge_id") or "")
    skipped = form.get("action") == "skip"
    here = f"/p/{slug}/{participation_id}"
    _forget_answered_page(request, here)
    inputs = await prepare_answer()
    ctx: TenantContext | None = None
    try:
        read = _reading(answer_state_read, participation_id)
        async with _participant_transaction(request, slug, read) as (ctx, state):
            value = None if skipped else _answer_value(form, str(form.get("type") or ""))
            outcome = await record_answer(
                ctx,
                participation_id,
                challenge_id,
                value,
                skipped=skipped,
                inputs=inputs,
                state=state,
            )
    except (Conflict, Invalid) as error:
        if ctx is None:
            raise
        # A stale page or an answer of the wrong shape: the current challenge again, with why.
        view = await current_challenge(ctx, participation_id)
        if view is None:
            flash(request, error.message, **error.params)
            return redirect(f"{here}/results")
        if isinstance(error, Conflict):
            error.field = None
        text = {k: v for k, v in form.items() if isinstance(v, str) and k != "answer"}
        return _challenge_page(request, ctx, view, error, text)
    if outcome.late:
        flash(request, "The time for that question was up: your answer counts as wrong.")
    if outcome.completed:
        flash(request, "The test is over. Here are your results.")
        return redirect(f"{here}/results")
    if outcome.next_challenge is not None:
        _keep_answered_page(request, here, ctx, outcome.next_challenge)
    return redirect(here)


@post("/p/{slug:str}/{participation_id:str}/report", guards=[signed_in])
async def challenge_report(
    request: Request[Any, Any, Any], slug: FromPath[str], participation_id: FromPath[str]
) -> Template | Redirect:
    """A problem report, sent from the challenge page's form (ADR 0013): the same challenge
    comes back with a confirmation and the answer in progress still checked."""
    ctx = await _participant(request, slug)
    form = await request.form()
    chosen = [v for v in form.getall("answer") if isinstance(v, str)] if "answer" in form else []
    try:
        given = _answer_value(form, str(form.get("type") or ""))
    except Invalid:
        given = None  # nothing chosen yet: the report goes without an answer
    text = {k: v for k, v in form.items() if isinstance(v, str) and k != "answer"}
    here = f"/p/{slug}/{participation_id}"
    _forget_answered_page(request, here)
    try:
        outcome = await report_problem(
            ctx,
            participation_id,
            str(form.get("challenge_id") or ""),
            text.get("category"),
            text.get("comment"),
            given,
        )
    except Invalid as error:
        # The challenge page again (a GET), the report form open with the error beside its
        # field and what was typed, the answer in progress still checked.
        kept = {**text, "answer": chosen, "reporting": "yes"}
        keep_form(request, here, error, kept, fields=("category", "comment", "answer", "reporting"))
        return redirect(here)
    if outcome.recorded:
        flash(request, "Thank you: your report is sent to the team that writes the questions.")
    else:
        flash(request, "You had already reported this question: thank you, it is being looked at.")
    session_of(request)[CHOSEN] = {"page": here, "answer": kept_list(chosen)}
    return redirect(here)


@post("/p/{slug:str}/{participation_id:str}/more-time")
async def challenge_more_time(
    request: Request[Any, Any, Any], slug: FromPath[str], participation_id: FromPath[str]
) -> Redirect:
    """ "More time" on a timed question (WCAG 2.2.1), a button of the answer form: the time is
    extended on the server, and the challenge page comes back with the new time left and the
    answer in progress still checked."""
    form = await request.form()
    chosen = [v for v in form.getall("answer") if isinstance(v, str)] if "answer" in form else []
    here = f"/p/{slug}/{participation_id}"
    _forget_answered_page(request, here)
    try:
        async with _participant_transaction(request, slug) as (ctx, _):
            await extend_time(ctx, participation_id, str(form.get("challenge_id") or ""))
    except Conflict as error:
        flash(request, error.message, **error.params)
        return redirect(here)
    flash(request, "You have more time for this question. Your answer in progress is kept.")
    session_of(request)[CHOSEN] = {"page": here, "answer": kept_list(chosen)}
    return redirect(here)


@get("/p/{slug:str}/{participation_id:str}/report", guards=[signed_in])
async def challenge_report_page(
    request: Request[Any, Any, Any], slug: FromPath[str], participation_id: FromPath[str]
) -> Redirect:
    """The report form lives on the challenge page: a reload or a bookmark of the form's
    address leads there (one's own participation only), not to a 405."""
    async with _participant_transaction(request, slug) as (ctx, _):
        await read_current_challenge(ctx, participation_id)
    return redirect(f"/p/{slug}/{participation_id}")


# --- results -------------------------------------------------------------------------------


async def _results_page(
    request: Request[Any, Any, Any],
    ctx: TenantContext,
    participation_id: str,
    error: UserError | None = None,
) -> Template | Redirect:
    details = await result_details(ctx, participation_id, locale_of(request))
    if details.participation.status == "started":
        return redirect(f"/p/{ctx.tenant.slug}/{participation_id}")
    context: dict[str, Any] = {
        "details": details,
        "tenant": ctx.tenant,
        "slug": ctx.tenant.slug,
        "unverified": not await _may_share(request, ctx),
    }
    if error is None:
        return render(request, "participant/results.html", **context)
    return form_error(request, "participant/results.html", error, {}, **context)


@get("/p/{slug:str}/{participation_id:str}/results", guards=[signed_in])
async def results_page(
    request: Request[Any, Any, Any], slug: FromPath[str], participation_id: FromPath[str]
) -> Template | Redirect:
    ctx = await _participant(request, slug)
    kept = kept_form(request, f"/p/{slug}/{participation_id}/results")
    return await _results_page(request, ctx, participation_id, kept[0] if kept else None)


async def _may_share(request: Request[Any, Any, Any], ctx: TenantContext) -> bool:
    """Whether the signed-in person's address is proven, so that their results may be shared:
    verified (by its mail's link, a magic link, a reset, an invitation or an identity provider
    that vouched for it), or signed in through this organization's own identity provider."""
    user = await current_user(request)
    return user is not None and (
        user.email_verified or sso_session(request, ctx.tenant.id) is not None
    )


#: Why sharing is refused before the address is verified.
UNVERIFIED_MESSAGE = (
    "Confirm your email address before sharing your results: open the link we sent to {email}."
)


@post("/p/{slug:str}/{participation_id:str}/share", guards=[signed_in])
async def share_results(
    request: Request[Any, Any, Any], slug: FromPath[str], participation_id: FromPath[str]
) -> Template | Redirect:
    ctx = await _participant(request, slug)
    form = await form_of(request)
    results = f"/p/{slug}/{participation_id}/results"
    try:
        if not await _may_share(request, ctx):
            user = await current_user(request)
            await result_details(ctx, participation_id, locale_of(request))  # theirs, or 404
            raise Conflict(UNVERIFIED_MESSAGE, email=user.email if user else "")
        await share(ctx, participation_id, consent=form.get("consent") == "yes")
    except (Conflict, Invalid) as error:
        keep_form(request, results, error, form, fields=("consent",))
        return redirect(f"{results}#share-title")
    flash(request, "Your results are shared with {organization}.", organization=ctx.tenant.name)
    return redirect(results)


@get("/p/{slug:str}/{participation_id:str}/share", guards=[signed_in])
async def share_page(
    request: Request[Any, Any, Any], slug: FromPath[str], participation_id: FromPath[str]
) -> Redirect:
    """The consent form lives on the results page: a reload or a bookmark of the form's
    address leads there (one's own participation only), not to a 405."""
    ctx = await _participant(request, slug)
    await result_details(ctx, participation_id, locale_of(request))
    return redirect(f"/p/{slug}/{participation_id}/results")


@get("/me/results", guards=[signed_in])
async def my_results(request: Request[Any, Any, Any]) -> Template:
    user = await current_user(request)
    assert user is not None
    return render(request, "participant/mine.html", participations=await my_participations(user.id))


handlers: list[ControllerRouterHandler] = [
    code_page,
    landing_page,
    sso_sign_in,
    account_page,
    account_create,
    start,
    start_page,
    challenge_page,
    challenge_answer,
    challenge_report,
    challenge_report_page,
    challenge_more_time,
    results_page,
    share_results,
    share_page,
    my_results,
]
