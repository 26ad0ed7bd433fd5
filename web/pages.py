"""What every page handler shares, in the console and the back office alike: the signed-in
person, the language, rendering, forms and one-time notices."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import MediaType
from litestar.response import Redirect, Template

from core.errors import Invalid, UserError
from core.i18n import LOCALE_NAMES, LOCALES, best_locale, translate
from core.l10n import Width, format_clock, format_day, format_moment, plural, zone_name, zone_named
from core.settings import Settings, get_settings
from tenants.accounts import UserAccount, get_user
from tenants.context import Actor, ActorKind, TenantContext
from web.audit_text import describe_details
from web.sessions import Session, get_session
from web.templating import localized

LOCALE_COOKIE = "jalon_locale"


def session_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Session:
    return get_session(connection.scope)


async def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> UserAccount | None:
    """The signed-in person, loaded once per request; None when signed out."""
    state = connection.scope.setdefault("state", {})
    if "user" in state:
        user: UserAccount | None = state["user"]
        return user
    user_id = session_user_id(connection)
    account = None if user_id is None else await get_user(user_id)
    return remember_user(connection, account)


def session_user_id(connection: ASGIConnection[Any, Any, Any, Any]) -> UUID | None:
    """The id of the person this session was signed in as, not yet checked against their
    account (`current_user` does, or a page reading the account with its own work); None
    when signed out. A malformed id ends the session."""
    user_id = session_of(connection).get("user_id")
    if not user_id:
        return None
    try:
        return UUID(str(user_id))
    except ValueError:
        session_of(connection).clear()
        return None


#: The session's key for the moment it signed in (epoch seconds), compared with the
#: account's `sessions_valid_after` (ADR 0027).
SIGNED_IN_AT = "signed_in_at"


def remember_user(
    connection: ASGIConnection[Any, Any, Any, Any], user: UserAccount | None
) -> UserAccount | None:
    """Keep the account read for this request, so `current_user` does not read it again: by
    `current_user` itself, or by a page that reads it in its own transaction (ADR 0023). None,
    for a session whose account is gone or inactive, ends the session; so does an account
    whose password changed since this session signed in (ADR 0027). The account, or None
    when the session ended."""
    session = session_of(connection)
    if user is not None and not user.session_is_current(session.get(SIGNED_IN_AT)):
        user = None
    if user is None and session.get("user_id"):
        session.clear()
    connection.scope.setdefault("state", {})["user"] = user
    return user


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    client = connection.client
    return client.host if client else "0.0.0.0"  # noqa: S104 - a label, not a bind address


def actor_for(
    connection: ASGIConnection[Any, Any, Any, Any],
    user: UserAccount | None,
    *,
    kind: ActorKind = "user",
) -> Actor:
    """The audit log's view of who is making this request (`kind` "staff" in the back office)."""
    return Actor(
        kind=kind if user else "system",
        user_id=user.id if user else None,
        label=user.email if user else "",
        ip=client_ip(connection),
        user_agent=connection.headers.get("user-agent", "")[:500],
    )


def locale_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The request's language, the first of:

    1. the person's choice: their account's language, kept in their session too (so pages
       drawn before the account is loaded, a refused CSRF token say, still speak it), else the
       language a visitor picked in the menu (a cookie);
    2. what the page belongs to (`prefer_locale`): a campaign's languages (the browser's
       favourite among them, else the campaign's first), or an organization's default;
    3. the browser's Accept-Language, among every supported language;
    4. the instance's default (JALON_DEFAULT_LOCALE).

    A program calling with an API or SCIM token has no account and no menu: the
    Accept-Language it sends with each request is its choice (1), the organization's
    default only stands in when it sends none that we speak.
    """
    state = connection.scope.get("state", {})
    user: UserAccount | None = state.get("user")
    if user is not None and user.locale in LOCALES:
        return user.locale
    ctx: TenantContext | None = state.get("ctx")
    if ctx is not None and ctx.actor.kind == "api_token":
        return best_locale(connection.headers.get("accept-language"), ctx.tenant.default_locale)
    session: Session | None = connection.scope.get("jalon_session")  # type: ignore[assignment]
    if session is not None and session.get("locale") in LOCALES:
        return str(session["locale"])
    cookie = connection.cookies.get(LOCALE_COOKIE)
    if cookie in LOCALES:
        return str(cookie)
    header = connection.headers.get("accept-language")
    preferred: tuple[str, tuple[str, ...]] | None = state.get("locale_context")
    if preferred is None and ctx is not None:
        preferred = (ctx.tenant.default_locale, ())
    if preferred is not None:
        default, offered = preferred
        among = tuple(x for x in offered if x in LOCALES) or (
            (default,) if default in LOCALES else ()
        )
        if among:
            return best_locale(header, default, among=among)
    return best_locale(header, get_settings().default_locale)


def prefer_locale(
    connection: ASGIConnection[Any, Any, Any, Any], default: str, offered: Sequence[str] = ()
) -> None:
    """Tell `locale_of` what this page belongs to, for a visitor who chose no language: a
    campaign offered in `offered` (the first its default), or an organization whose default
    language is `default` (no `offered`). It then outranks the browser's Accept-Language."""
    connection.scope.setdefault("state", {})["locale_context"] = (default, tuple(offered))


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths may be redirect targets (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def redirect(path: str) -> Redirect:
    """A 303 See Other, the answer to a successful form post."""
    return Redirect(path=path, status_code=303)


def flash(connection: ASGIConnection[Any, Any, Any, Any], message: str, **params: Any) -> None:
    """A one-time notice for the next page, stored untranslated (translated when shown)."""
    session = session_of(connection)
    notices = list(session.get("flash", []))
    notices.append({"message": message, "params": params})
    session["flash"] = notices


UTC = ZoneInfo("UTC")

#: Shown on every page while the session store (Redis) is out of reach (`web.sessions`).
SESSIONS_DEGRADED_MESSAGE = (
    "Jalon is running with reduced service: your answers are saved, but you may be asked to "
    "sign in again."
)


def page_helpers(locale: str, zone: tzinfo | None = UTC) -> dict[str, Any]:
    """Translation, plurals and date formatting for a page (`core.l10n`): moments in `zone`
    (the organization's), with that zone named.

    - `_(message, **params)`; `ngettext(singular, plural, count, **params)` for every count;
    - `format_dt(moment, width, in_zone=None)`: "3 Dec 2026, 14:05 (Europe/Paris)", no seconds;
    - `format_day(day_or_moment, width)`: "3 Dec 2026";
    - `format_clock(moment)`: "14:05 (Europe/Paris)";
    - `zone_name`: the zone's name, for a column header that states it once;
    - `audit_details(details, skip)`: an audit event's details as readable lines.
    """

    def gettext(message: str, **params: Any) -> str:
        return translate(locale, message, **params)

    def ngettext(singular: str, plural_form: str, count: int, **params: Any) -> str:
        return plural(locale, singular, plural_form, count, **params)

    def format_dt(
        value: datetime | None, width: Width = "medium", in_zone: str | None = None
    ) -> str:
        # `in_zone`: a row's own organization's zone, on a page that lists several
        return format_moment(value, locale, zone_named(in_zone) if in_zone else zone, width)

    def format_day_in_zone(value: date | datetime | None, width: Width = "medium") -> str:
        return format_day(value, locale, zone, width)

    def format_clock_in_zone(value: datetime | None) -> str:
        return format_clock(value, locale, zone)

    def audit_details(details: dict[str, Any] | None, skip: tuple[str, ...] = ()) -> list[str]:
        return [line.text(locale) for line in describe_details(locale, details, zone, skip=skip)]

    return {
        "_": gettext,
        "ngettext": ngettext,
        "format_dt": format_dt,
        "format_day": format_day_in_zone,
        "format_clock": format_clock_in_zone,
        "zone_name": zone_name(zone),
        "audit_details": audit_details,
    }


def _page_zone(ctx: TenantContext | None, context: dict[str, Any]) -> tzinfo:
    """The zone a page shows its times in: the organization's, whether the page is the
    console's (`ctx`) or a participant's (the campaign's organization, `tenant=`)."""
    if ctx is not None:
        return ctx.tenant.zone
    tenant = context.get("tenant")
    zone = getattr(tenant, "zone", None)
    return zone if isinstance(zone, tzinfo) else UTC


def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    ctx: TenantContext | None = None,
    **context: Any,
) -> Template:
    """Render `template` in the request's language with the page chrome's context."""
    if "_" in context:  # compiled in as the translation (web.templating): never a value
        raise ValueError("`_` is the page's translation: give the value another name")
    locale = locale_of(request)
    settings: Settings = get_settings()
    session = session_of(request)
    notices = session.pop("flash", []) if status < 400 else []
    if request.scope.get("jalon_sessions_degraded"):
        notices = [{"message": SESSIONS_DEGRADED_MESSAGE, "params": {}}, *notices]
    state = request.scope.get("state", {})
    base = {
        **page_helpers(locale, _page_zone(ctx, context)),
        "locale": locale,
        "locales": LOCALE_NAMES,
        "user": state.get("user"),
        "ctx": ctx,
        "tenant": ctx.tenant if ctx else None,
        "seat_banner": state.get("seat_banner") if ctx else None,
        # a staff member's read-only view of this tenant: the banner on every page
        "impersonation": state.get("impersonation") if ctx else None,
        # the back office's staff context (`web.guards.staff_member`), for its navigation
        "staff": state.get("staff"),
        "notices": [translate(locale, n["message"], **n["params"]) for n in notices],
        "dev_outbox": settings.dev_outbox,
        "path": request.url.path,
        "errors": {},
        "values": {},
    }
    base.update(context)
    # the media type given: Litestar would guess it from the file name on every page
    return Template(
        template_name=localized(template, locale),  # its fixed texts compiled in (web.templating)
        context=base,
        status_code=status,
        media_type=MediaType.HTML,
    )


def form_error(
    request: Request[Any, Any, Any],
    template: str,
    error: UserError,
    values: dict[str, Any],
    *,
    ctx: TenantContext | None = None,
    **context: Any,
) -> Template:
    """Re-render a form with what was typed and the error next to its field (nothing lost)."""
    locale = locale_of(request)
    errors = {
        each.field or "__all__": translate(locale, each.message, **each.params)
        for each in reversed(getattr(error, "errors", None) or [error])
    }  # reversed: where two name one field, the first is shown
    safe_values = {k: v for k, v in values.items() if "password" not in k and k != "_csrf_token"}
    return render(
        request,
        template,
        status=error.status_code,
        ctx=ctx,
        errors=errors,
        values=safe_values,
        **context,
    )


#: Control characters no form field may hold (NUL, which PostgreSQL's text cannot store,
#: among them); tab and line breaks stay for text areas.
_FORM_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BAD_CHARACTERS = "This field contains characters that are not allowed."


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The submitted form's text fields (last value wins; uploads are read separately).
    `Invalid` (422) naming the first field that holds a control character other than a tab
    or a line break: no handler has to guard its queries against them."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    for key, value in fields.items():
        if _FORM_CONTROLS.search(value) or _FORM_CONTROLS.search(key):
            raise Invalid(BAD_CHARACTERS, field=key)
    return fields
