"""Pages anyone may open: home, health, language switch, organization logos, documentation
pages, dev outbox."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Redirect, Template
from redis.exceptions import RedisError

from core import database
from core.i18n import LOCALES
from core.mail import recent_mail
from core.settings import get_settings
from tenants.organizations import logo
from web.documents import document
from web.pages import LOCALE_COOKIE, current_user, form_of, redirect, render, safe_next, session_of


@get("/")
async def home(request: Request[Any, Any, Any]) -> Template | Redirect:
    if await current_user(request):
        return redirect("/o/")
    return render(request, "home.html")


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    """The database (and Redis, when configured) answer."""
    try:
        # A pool whose connections were killed reconnects here; a server that is down or
        # hanging answers "unavailable" within seconds, never a 500.
        database_ok = await asyncio.wait_for(database.ping(), timeout=3)
    except Exception:
        database_ok = False
    checks = {"database": "ok" if database_ok else "unavailable"}
    redis = request.app.state.get("redis")
    if redis is not None:
        try:
            await asyncio.wait_for(redis.ping(), timeout=2)
            checks["redis"] = "ok"
        except (OSError, TimeoutError, RedisError):
            checks["redis"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return Response(
        {"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503
    )


@post("/locale")
async def set_locale(request: Request[Any, Any, Any]) -> Redirect:
    form = await form_of(request)
    locale = form.get("locale", "")
    response = redirect(safe_next(form.get("next"), "/"))
    if locale in LOCALES:
        response.cookies.append(
            Cookie(
                key=LOCALE_COOKIE,
                value=locale,
                max_age=365 * 24 * 3600,
                path="/",
                samesite="lax",
                httponly=True,
                secure=get_settings().secure_cookies,
            )
        )
        user = await current_user(request)
        if user is not None:
            session_of(request)["locale"] = locale
        if user is not None and user.locale != locale:
            from tenants.accounts import update_profile

            await update_profile(user, user.name, locale)
    return response


@get("/logos/{slug:str}")
async def organization_logo(slug: FromPath[str]) -> Response[bytes]:
    found = await logo(slug)
    if found is None:
        raise NotFoundException()
    content_type, data = found
    return Response(
        data,
        media_type=content_type,
        headers={
            "cache-control": "public, max-age=300",
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
            "x-content-type-options": "nosniff",
        },
    )


def loopback_client(request: Request[Any, Any, Any]) -> bool:
    """True when the connection's client address (the ASGI scope's, never a header's) is a
    loopback address. Behind a proxy trusted by `JALON_FORWARDED_ALLOW_IPS`, `jalon serve`'s
    proxy-headers middleware has already put the proxied client there, so a remote visitor
    through a local proxy is not loopback."""
    client = request.scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


FAVICON = Path(__file__).resolve().parents[2] / "web" / "static" / "favicon.ico"


@get("/favicon.ico", sync_to_thread=False)
def favicon() -> File:
    """The icon browsers and feed readers ask for at the root (pages link the SVG one in
    /static), cached for a day."""
    return File(
        FAVICON,
        content_disposition_type="inline",
        media_type="image/x-icon",
        headers={"cache-control": "public, max-age=86400"},
    )


@get("/docs/{name:str}")
async def documentation(request: Request[Any, Any, Any], name: FromPath[str]) -> Template:
    """A page of Jalon's documentation (`docs/*.md`, e.g. `/docs/webhooks`), public, rendered
    from Markdown with raw HTML escaped (`web.documents`); 404 for any other name."""
    found = document(name)
    if found is None:
        raise NotFoundException()
    title, body = found
    return render(request, "document.html", title=title, body=body)


@get("/dev/outbox")
async def dev_outbox(request: Request[Any, Any, Any]) -> Template:
    """Mail the development server would have sent, with clickable links: only in development
    mode without SMTP, and only to a client on this machine (it shows every organization's
    sign-in links); anyone else gets a 404, as if it did not exist."""
    if not get_settings().dev_outbox or not loopback_client(request):
        raise NotFoundException()
    await current_user(request)
    return render(request, "dev_outbox.html", messages=await recent_mail())


handlers = [
    home,
    healthz,
    readyz,
    set_locale,
    organization_logo,
    favicon,
    documentation,
    dev_outbox,
]
