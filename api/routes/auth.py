"""Sign-in, sign-out, password reset, magic links, signup, invitations and one's account."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from core.errors import Gone, UserError
from core.settings import get_settings
from core.validation import clean_email, clean_new_password, slugify
from sso.discovery import connections_for_email
from sso.policy import sso_required_connections
from tenants import accounts
from tenants.account_events import record_password_change
from tenants.accounts import UserAccount
from tenants.invitations import InviteeAccountForm, accept_invitation, pending_invitation
from tenants.organizations import KINDS, OrganizationFields
from tenants.organizations import signup as signup_service
from web.guards import signed_in
from web.pages import (
    SIGNED_IN_AT,
    actor_for,
    client_ip,
    current_user,
    flash,
    form_error,
    form_of,
    redirect,
    render,
    safe_next,
    session_of,
)


def sign_in(request: Request[Any, Any, Any], user: UserAccount) -> None:
    """Start a session for `user` (a fresh session id: no fixation), in their language."""
    session = session_of(request)
    session.clear()
    session.rotate()
    session["user_id"] = str(user.id)
    session["locale"] = user.locale
    # A password change ends the sessions that signed in before it (ADR 0027).
    session[SIGNED_IN_AT] = time.time()
    request.scope["state"]["user"] = user


def landing(user: UserAccount) -> str:
    """Where a person lands after signing in when nothing else was asked: staff in the back
    office (its second factor first), everyone else on their organizations."""
    return "/admin" if user.staff_role else "/o/"


def terms_url() -> str:
    """Where the sign-up forms' terms checkbox links: the operator's terms
    (`JALON_TERMS_URL`) when set, else Jalon's plain page."""
    return get_settings().terms_url or "/terms"


@get("/terms")
async def terms_page(request: Request[Any, Any, Any]) -> Template:
    """Jalon's terms of use, public: what is stored about a person, who sees their results,
    for how long, how to have it deleted (the operator completes the legal notice)."""
    await current_user(request)
    return render(request, "terms.html")


@get("/login", name="login")
async def login_page(
    request: Request[Any, Any, Any],
    next: FromQuery[str | None] = None,
    email: FromQuery[str | None] = None,
    step: FromQuery[str | None] = None,
) -> Template | Redirect:
    if await current_user(request):
        return redirect(safe_next(next, "/o/"))
    # The email comes first (home-realm discovery); `?email=` or `?step=password` opens the
    # password step (a break-glass owner whose domain goes to an identity provider that is
    # down needs it).
    step = "password" if email or step == "password" else "email"
    return render(
        request, "login.html", step=step, next=safe_next(next, ""), values={"email": email or ""}
    )


async def _sso_required_page(
    request: Request[Any, Any, Any], user: UserAccount, next_path: str
) -> Template | None:
    """The page that refuses a password (or magic link) to a person whose organization
    requires SSO, offering its connections; None when they may use one."""
    required = await sso_required_connections(user.id)
    if required is None:
        return None
    return render(
        request,
        "login.html",
        status=403,
        step="choose",
        choices=required,
        sso_required=True,
        next=next_path,
    )


@post("/login")
async def login(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Two steps: an email alone is sent to its organization's identity provider when its
    domain is verified (one connection: there; several: a choice), else to the password
    step; an email with a password signs in (scripts and password managers post both)."""
    form = await form_of(request)
    next_path = safe_next(form.get("next"), "")
    if "password" not in form:
        try:
            email = clean_email(form.get("email"))
        except UserError as error:
            return form_error(request, "login.html", error, form, step="email", next=next_path)
        choices = await connections_for_email(email)
        if len(choices) == 1:
            return redirect(choices[0].start_url(next_path))
        if choices:
            return render(request, "login.html", step="choose", choices=choices, next=next_path)
        return render(
            request, "login.html", step="password", next=next_path, values={"email": email}
        )
    try:
        user = await accounts.authenticate(
            form.get("email", ""),
            form.get("password", ""),
            client_ip(request),
            request.app.state.limiter,
            get_settings(),
        )
    except UserError as error:
        return form_error(request, "login.html", error, form, step="password", next=next_path)
    refused = await _sso_required_page(request, user, next_path)
    if refused is not None:
        return refused
    sign_in(request, user)
    return redirect(safe_next(next_path, landing(user)))


@post("/logout")
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    session = session_of(request)
    session.clear()
    session.rotate()
    flash(request, "You are signed out.")
    return redirect("/")


#: The session key of the address a sign-in or reset link was last asked for: the page that
#: says it is on its way (Post/Redirect/Get) names it, and a reload sends nothing again.
MAIL_SENT_TO = "mail_sent_to"


#: What the page after asking for a link says, by kind of link and whether the address is
#: known to the session (it always is, but for a bookmark of the page): never whether an
#: account exists.
MAIL_SENT_MESSAGES = {
    ("magic_link", True): "If an account exists for {email}, a sign-in link is on its way. "
    "It works once, for 15 minutes.",
    ("magic_link", False): "If an account exists for that address, a sign-in link is on its "
    "way. It works once, for 15 minutes.",
    ("password_reset", True): "If an account exists for {email}, a link to choose a new "
    "password is on its way. It works once, for an hour.",
    ("password_reset", False): "If an account exists for that address, a link to choose a new "
    "password is on its way. It works once, for an hour.",
    ("signup_link", True): "A link to finish creating your account is on its way to {email}. "
    "It works once, for an hour. If the address has an account already, the link signs you in.",
    ("signup_link", False): "A link to finish creating your account is on its way. It works "
    "once, for an hour. If the address has an account already, the link signs you in.",
}
_ASK_AGAIN = {"magic_link": "/login/link", "password_reset": "/password/forgot"}


def mail_sent_page(request: Request[Any, Any, Any], kind: str, again: str = "") -> Template:
    """The GET page after asking for a sign-in (`kind` "magic_link"), reset
    ("password_reset") or sign-up link ("signup_link"): the same words whether or not an
    account exists for the address; `again` is where to ask again (the kind's own form by
    default)."""
    sent = session_of(request).get(MAIL_SENT_TO)
    email = sent.get("email") if isinstance(sent, dict) and sent.get("kind") == kind else None
    return render(
        request,
        "mail_sent.html",
        sent_message=MAIL_SENT_MESSAGES[kind, bool(email)],
        params={"email": email},
        again=again or _ASK_AGAIN[kind],
    )


def mail_sent(request: Request[Any, Any, Any], kind: str, email: str, page: str) -> Redirect:
    """After mailing a link: remember the address for `mail_sent_page`, then Post/Redirect/Get
    to `page` (a reload of it sends nothing again)."""
    session_of(request)[MAIL_SENT_TO] = {"kind": kind, "email": email}
    return redirect(page)


@get("/login/link")
async def magic_link_page(
    request: Request[Any, Any, Any],
    next: FromQuery[str | None] = None,
    email: FromQuery[str | None] = None,
    sent: FromQuery[str | None] = None,
) -> Template:
    if sent is not None:
        return mail_sent_page(request, "magic_link")
    return render(
        request, "magic_link.html", next=safe_next(next, ""), values={"email": email or ""}
    )


@post("/login/link")
async def magic_link_request(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Mail a sign-in link, then Post/Redirect/Get to a page that says so: a reload of it
    sends nothing again, and it reads the same whether or not the account exists."""
    form = await form_of(request)
    try:
        email = clean_email(form.get("email"))
        await accounts.request_magic_link(
            email,
            get_settings(),
            safe_next(form.get("next"), "/o/"),
            limiter=request.app.state.limiter,
            ip=client_ip(request),
        )
    except UserError as error:
        return form_error(request, "magic_link.html", error, form, next=form.get("next", ""))
    return mail_sent(request, "magic_link", email, "/login/link?sent=1")


@get("/login/link/{token:str}")
async def magic_link_confirm(
    request: Request[Any, Any, Any], token: FromPath[str], next: FromQuery[str | None] = None
) -> Template:
    # A button, not an automatic sign-in: mail scanners that prefetch links must not use them.
    return render(request, "magic_link_confirm.html", token=token, next=safe_next(next, "/o/"))


@post("/login/link/{token:str}")
async def magic_link_consume(
    request: Request[Any, Any, Any], token: FromPath[str]
) -> Template | Redirect:
    form = await form_of(request)
    try:
        signed = await accounts.consume_magic_link(token)
    except UserError as error:
        return form_error(request, "magic_link.html", error, {})
    return await _signed_in_by_link(request, signed, safe_next(form.get("next"), ""))


async def _signed_in_by_link(
    request: Request[Any, Any, Any], signed: accounts.LinkSignIn, next_path: str
) -> Template | Redirect:
    """After a sign-in or sign-up link: the SSO-required refusal, or the session, what the
    link changed said, and `next_path` (else where the person lands)."""
    user = signed.account
    refused = await _sso_required_page(request, user, next_path)
    if refused is not None:
        return refused
    sign_in(request, user)
    if signed.created:
        flash(request, "Your account is ready.")
    if signed.password_dropped:
        flash(
            request,
            "Your address is confirmed. The password chosen before it was confirmed no longer "
            "works: choose a new one with “Forgot your password?” when you want one.",
        )
    return redirect(next_path or landing(user))


@get("/signup/link/{token:str}")
async def signup_link_confirm(
    request: Request[Any, Any, Any], token: FromPath[str], next: FromQuery[str | None] = None
) -> Template:
    """A sign-up link's page: a button, as for a sign-in link (mail scanners open links)."""
    return render(request, "signup_link_confirm.html", token=token, next=safe_next(next, "/o/"))


@post("/signup/link/{token:str}")
async def signup_link_consume(
    request: Request[Any, Any, Any], token: FromPath[str]
) -> Template | Redirect:
    """Create the account a sign-up link describes (or sign in the one its address has by
    now), sign it in, and go where the link said (the campaign it was asked from)."""
    form = await form_of(request)
    back = safe_next(form.get("next"), "")
    try:
        signed = await accounts.complete_signup(token)
    except UserError as error:
        return form_error(
            request, "signup_link_confirm.html", error, {}, token=None, next=back, again=back
        )
    return await _signed_in_by_link(request, signed, back)


@get("/password/forgot")
async def password_forgot_page(
    request: Request[Any, Any, Any], sent: FromQuery[str | None] = None
) -> Template:
    if sent is not None:
        return mail_sent_page(request, "password_reset")
    return render(request, "password_forgot.html")


@post("/password/forgot")
async def password_forgot(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Mail a reset link, then Post/Redirect/Get (as `magic_link_request`)."""
    form = await form_of(request)
    try:
        email = clean_email(form.get("email"))
        await accounts.request_password_reset(
            email, get_settings(), limiter=request.app.state.limiter, ip=client_ip(request)
        )
    except UserError as error:
        return form_error(request, "password_forgot.html", error, form)
    return mail_sent(request, "password_reset", email, "/password/forgot?sent=1")


@get("/password/reset/{token:str}")
async def password_reset_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    return render(request, "password_reset.html", token=token)


@post("/password/reset/{token:str}")
async def password_reset(
    request: Request[Any, Any, Any], token: FromPath[str]
) -> Template | Redirect:
    form = await form_of(request)
    try:
        password = clean_new_password(form.get("password"), form.get("password_confirm"))
        user = await accounts.reset_password(token, password)
    except UserError as error:
        return form_error(request, "password_reset.html", error, form, token=token)
    refused = await _sso_required_page(request, user, "")
    if refused is not None:
        return refused
    sign_in(request, user)
    flash(request, "Your password has been changed.")
    return redirect(landing(user))


@get("/signup")
async def signup_page(request: Request[Any, Any, Any]) -> Template:
    await current_user(request)
    return render(
        request,
        "signup.html",
        kinds=KINDS,
        values={"country": "FR", "kind": "company"},
        terms_url=terms_url(),
    )


@post("/signup")
async def signup(request: Request[Any, Any, Any]) -> Template | Redirect:
    form = await form_of(request)
    user = await current_user(request)
    settings = get_settings()
    try:
        slug = form.get("slug") or slugify(form.get("organization_name", ""))
        fields = OrganizationFields(
            name=form.get("organization_name", ""),
            slug=slug,
            kind=form.get("kind", ""),
            country=form.get("country", ""),
            default_locale=form.get("locale") or (user.locale if user else settings.default_locale),
            siret=form.get("siret") or None,
            vat_number=form.get("vat_number") or None,
        )
        new_owner = None
        if user is None:
            new_owner = accounts.check_new_account(
                name=form.get("name"),
                password=form.get("password"),
                password_confirm=form.get("password_confirm"),
                locale=form.get("locale"),
                default_locale=settings.default_locale,
                email=form.get("email", ""),
                terms=bool(form.get("terms")),
            )
        owner, tenant = await signup_service(fields, user, new_owner, actor_for(request, user))
        if user is None:
            sign_in(request, owner)
            await accounts.request_email_verification(owner, settings)
    except UserError as error:
        return form_error(request, "signup.html", error, form, kinds=KINDS, terms_url=terms_url())
    flash(
        request,
        "Welcome! {organization} is ready: its trial has started.",
        organization=tenant.name,
    )
    return redirect(f"/o/{tenant.slug}/")


@get("/email/verify/{token:str}")
async def email_verify_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    """The link of a verification mail: a button, as mail scanners open links by themselves
    and must not verify anything."""
    await current_user(request)
    return render(request, "email_verify.html", token=token)


@post("/email/verify/{token:str}")
async def email_verify(
    request: Request[Any, Any, Any], token: FromPath[str]
) -> Template | Redirect:
    """Verify the address the token was mailed to (the token's own account, whoever is
    signed in: another person's link verifies them, not you), then Post/Redirect/Get."""
    user = await current_user(request)
    try:
        verified = await accounts.verify_email(token)
    except UserError as error:
        return form_error(request, "message.html", error, {}, title="Confirm your email address")
    if user is not None and user.id == verified.id:
        request.scope["state"]["user"] = verified
    flash(request, "The address {email} is verified.", email=verified.email)
    return redirect("/o/" if user is not None else "/login")


@post("/account/verify-email", guards=[signed_in])
async def email_verify_again(request: Request[Any, Any, Any]) -> Redirect:
    """Send the verification mail again (limited to a few an hour), back to the page that
    asked (`next`)."""
    form = await form_of(request)
    user = await current_user(request)
    assert user is not None
    back = safe_next(form.get("next"), "/account")
    try:
        await accounts.resend_email_verification(user, request.app.state.limiter, get_settings())
    except UserError as error:
        flash(request, error.message, **error.params)
        return redirect(back)
    flash(request, "We sent the verification mail again to {email}.", email=user.email)
    return redirect(back)


@get("/invitations/{slug:str}/{token:str}")
async def invitation_page(
    request: Request[Any, Any, Any], slug: FromPath[str], token: FromPath[str]
) -> Template:
    await current_user(request)
    try:
        invitation = await pending_invitation(slug, token)
    except Gone as error:
        return form_error(request, "message.html", error, {}, title="Invitation")
    return render(request, "invitation.html", invitation=invitation, slug=slug, token=token)


@post("/invitations/{slug:str}/{token:str}")
async def invitation_accept(
    request: Request[Any, Any, Any], slug: FromPath[str], token: FromPath[str]
) -> Template | Redirect:
    form = await form_of(request)
    user = await current_user(request)
    typed = None
    if user is None:
        typed = InviteeAccountForm(
            name=form.get("name"),
            password=form.get("password"),
            password_confirm=form.get("password_confirm"),
            locale=form.get("locale"),
            default_locale=get_settings().default_locale,
        )
    try:
        account, org_slug = await accept_invitation(
            slug, token, user, typed, actor_for(request, user)
        )
    except Gone as error:
        return form_error(request, "message.html", error, {}, title="Invitation")
    except UserError as error:
        try:
            invitation = await pending_invitation(slug, token)
        except Gone as gone:
            return form_error(request, "message.html", gone, {}, title="Invitation")
        return form_error(
            request, "invitation.html", error, form, invitation=invitation, slug=slug, token=token
        )
    if user is None:
        sign_in(request, account)
    flash(request, "You have joined the organization.")
    return redirect(f"/o/{org_slug}/")


@get("/account", guards=[signed_in])
async def account_page(request: Request[Any, Any, Any]) -> Template:
    user = await current_user(request)
    assert user is not None
    return render(request, "account.html", values={"name": user.name, "locale": user.locale})


@post("/account/password", guards=[signed_in])
async def account_password(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Change one's password in place: the current one, the new one twice (every error at
    once, throttled as sign-in is). The person's other sessions end; this one goes on under
    a new id. Recorded in the audit log of each of their organizations, in the password's
    own transaction."""
    form = await form_of(request)
    user = await current_user(request)
    assert user is not None
    actor = actor_for(request, user)
    try:
        changed = await accounts.change_password(
            user,
            form.get("current_password"),
            form.get("password"),
            form.get("password_confirm"),
            client_ip(request),
            request.app.state.limiter,
            get_settings(),
            record=lambda account: record_password_change(account, actor),
        )
    except UserError as error:
        profile = {"name": user.name, "locale": user.locale}
        return form_error(request, "account.html", error, {**profile, **form}, password_form=True)
    # This session goes on, past the cut-off and under a new id; its other keys (a staff
    # member's second factor) stay.
    session = session_of(request)
    session.rotate()
    session[SIGNED_IN_AT] = time.time()
    request.scope["state"]["user"] = changed
    flash(request, "Your password has been changed. Your other sessions are signed out.")
    return redirect("/account")


@post("/account", guards=[signed_in])
async def account_update(request: Request[Any, Any, Any]) -> Template | Redirect:
    form = await form_of(request)
    user = await current_user(request)
    assert user is not None
    try:
        updated = await accounts.update_profile(user, form.get("name", ""), form.get("locale", ""))
    except UserError as error:
        return form_error(request, "account.html", error, form)
    request.scope["state"]["user"] = updated
    session_of(request)["locale"] = updated.locale
    flash(request, "Your changes are saved.")
    return redirect("/account")


handlers = [
    terms_page,
    login_page,
    login,
    logout,
    magic_link_page,
    magic_link_request,
    magic_link_confirm,
    magic_link_consume,
    signup_link_confirm,
    signup_link_consume,
    password_forgot_page,
    password_forgot,
    password_reset_page,
    password_reset,
    signup_page,
    signup,
    email_verify_page,
    email_verify,
    email_verify_again,
    invitation_page,
    invitation_accept,
    account_page,
    account_update,
    account_password,
]
