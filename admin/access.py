"""The staff second factor: entering a TOTP code (or a recovery code) after the password, and
setting the authenticator app up the first time (a QR code, then the recovery codes, shown
once). These pages need only a signed-in staff member: every other back-office page needs
the second factor passed in this session (`web.guards.staff_member`)."""

from __future__ import annotations

from typing import Any

import segno
from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from core.errors import Invalid, NotFound, TooManyRequests
from core.ratelimit import RateLimiter
from tenants import staff as staff_service
from tenants.permissions import StaffPermission, staff_permissions_of
from web.guards import LoginRequired, second_factor_passed
from web.pages import client_ip, current_user, form_error, form_of, redirect, render, safe_next

#: Codes tried per staff member and per address before a pause (a 6-digit code must not be
#: guessable by brute force).
ATTEMPTS = 5
WINDOW_SECONDS = 300


async def staff_signing_in(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A signed-in staff member, second factor or not (for the second factor's own pages);
    anyone else is sent to sign in, or told the back office does not exist (404)."""
    user = await current_user(connection)
    if user is None:
        raise LoginRequired()
    if user.staff_role is None:
        raise NotFound()


TOO_MANY = "Too many wrong codes. Wait a few minutes and try again."


async def _check(limiter: RateLimiter, keys: list[str], attempt: Any) -> Any:
    """Run `attempt()` unless the member (`keys[0]`) or the address (`keys[1:]`) has had too
    many tries in the window.

    The member's count is taken first, atomically, before the code is looked at: codes sent in
    parallel cannot all slip under the limit (each request's own hit decides, a 6th gets
    `TooManyRequests` whatever the others are doing). A success clears it. The address counts
    only failures (a success there would lock an office behind one address out after five
    sign-ins), checked before and hit after: a race on it is bounded by the members' own."""
    member, addresses = keys[0], keys[1:]
    for key in addresses:
        if await limiter.count(key) >= ATTEMPTS:
            raise TooManyRequests(TOO_MANY)
    if await limiter.hit(member, WINDOW_SECONDS) > ATTEMPTS:
        raise TooManyRequests(TOO_MANY)
    try:
        result = await attempt()
    except Invalid:
        for key in addresses:
            await limiter.hit(key, WINDOW_SECONDS)
        raise
    await limiter.reset(member)
    return result


def _keys(request: Request[Any, Any, Any], user_id: Any) -> list[str]:
    return [f"staff-2fa:{user_id}", f"staff-2fa-ip:{client_ip(request)}"]


async def _user(request: Request[Any, Any, Any]) -> Any:
    user = await current_user(request)
    assert user is not None  # the guard saw to it
    return user


@get("/second-factor", guards=[staff_signing_in], name="admin_second_factor")
async def second_factor_page(
    request: Request[Any, Any, Any], next: FromQuery[str | None] = None
) -> Template | Redirect:
    user = await _user(request)
    member = await staff_service.staff_member_of(user.id)
    if member is None:
        raise NotFound()
    if not member.second_factor:
        return redirect("/admin/second-factor/setup")
    return render(request, "admin/second_factor.html", next=safe_next(next, "/admin"))


@post("/second-factor", guards=[staff_signing_in], status_code=303)
async def second_factor(request: Request[Any, Any, Any]) -> Template | Redirect:
    user = await _user(request)
    form = await form_of(request)
    next_path = safe_next(form.get("next"), "/admin")

    async def attempt() -> None:
        if not await staff_service.verify_second_factor(user.id, form.get("code", "")):
            raise Invalid(staff_service.WRONG_CODE, field="code")

    try:
        await _check(request.app.state.limiter, _keys(request, user.id), attempt)
    except (Invalid, TooManyRequests) as error:
        return form_error(request, "admin/second_factor.html", error, {}, next=next_path)
    second_factor_passed(request, user.id)
    return redirect(_landing(user, form.get("next")))


def _landing(user: Any, asked: str | None) -> str:
    """Where the code page leads: the page asked for, else the dashboard, or the content
    pages for staff who may not read tenants (the dashboard would be a 403 to them)."""
    default = "/admin"
    if StaffPermission.TENANTS_READ not in staff_permissions_of(user.staff_role):
        default = "/admin/content"
    wanted = safe_next(asked, default)
    return default if wanted == "/admin" else wanted


def _qr_svg(uri: str) -> str:
    # An inline SVG (no image request, no third party): the app scans it from the screen.
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#111827", light="#ffffff")


@get("/second-factor/setup", guards=[staff_signing_in], name="admin_second_factor_setup")
async def setup_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    user = await _user(request)
    try:
        secret = await staff_service.begin_enrolment(user.id)
    except Invalid:
        return redirect("/admin/second-factor")  # already set up
    uri = staff_service.provisioning_uri(secret, user.email)
    return render(request, "admin/second_factor_setup.html", secret=secret, qr=_qr_svg(uri))


@post("/second-factor/setup", guards=[staff_signing_in], status_code=200)
async def setup(request: Request[Any, Any, Any]) -> Template | Redirect:
    user = await _user(request)
    form = await form_of(request)
    try:
        codes = await _check(
            request.app.state.limiter,
            _keys(request, user.id),
            lambda: staff_service.confirm_enrolment(user.id, form.get("code", "")),
        )
    except (Invalid, TooManyRequests) as error:
        try:
            secret = await staff_service.begin_enrolment(user.id)
        except Invalid:
            return redirect("/admin/second-factor")
        uri = staff_service.provisioning_uri(secret, user.email)
        return form_error(
            request,
            "admin/second_factor_setup.html",
            error,
            {},
            secret=secret,
            qr=_qr_svg(uri),
        )
    second_factor_passed(request, user.id)
    return render(request, "admin/recovery_codes.html", codes=codes)


handlers: list[Any] = [second_factor_page, second_factor, setup_page, setup]
