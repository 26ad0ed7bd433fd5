"""The security headers of every response, set in one place (a `before_send` hook of the
application, so error pages, refusals and unknown routes carry them too):

- on HTML pages, a Content-Security-Policy without `'unsafe-inline'`: scripts and styles come
  from our own files only (`/static/…`, and `/brand/…` for an organization's colour), no page
  may be framed, and forms post to Jalon only, except on the sign-in page, whose form may lead
  to an organization's identity provider (a browser checks the redirects that follow a form post
  against `form-action`, and identity providers are on other origins);
- on every response, `X-Content-Type-Options: nosniff` and a `Referrer-Policy`;
- `Strict-Transport-Security` when the request came over https (its scheme as the server saw
  it, after a trusted proxy's headers);
- `Cache-Control: no-store` on every response that is not a static file and did not choose its
  own caching: pages of signed-in people, exports and downloads, API answers.

The API's documentation pages (`/schema/…`) get the same policy: their viewers are files
served by Jalon. A page may change directives of its own policy through `request.state`
(`PAGE_POLICY`): Redoc's page allows the styles that carry its nonce, and its search worker.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import get
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Response
from litestar.types import Message, Scope

from core.colours import WHITE_TEXT, readable_on_white, text_on

_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    # logos are served by Jalon; a logo chosen in the settings form is previewed as a data URL
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
#: Pages whose form may be answered by a redirect to an identity provider: the sign-in page
#: (home-realm discovery sends an email's domain to its provider). A campaign's SSO starts
#: from a link, which `form-action` does not govern.
_SSO_FORMS = re.compile(r"^/login/?$")
#: The `request.state` key of a page's own directives ({directive: value}), which replace
#: the policy's (the API's Redoc page sets them).
PAGE_POLICY = "content_security_policy"


def _policy(**changes: str) -> str:
    return "; ".join(f"{name} {value}" for name, value in {**_POLICY, **changes}.items())


CONTENT_SECURITY_POLICY = _policy()
#: Forms that may end at an identity provider on another origin (over https).
SSO_CONTENT_SECURITY_POLICY = _policy(**{"form-action": "'self' https:"})
REFERRER_POLICY = "strict-origin-when-cross-origin"
HSTS = "max-age=31536000"


def _uncached(path: str) -> bool:
    return not path.startswith("/static/")


_NOSNIFF = (b"x-content-type-options", b"nosniff")
_REFERRER = (b"referrer-policy", REFERRER_POLICY.encode("latin-1"))
_HSTS = (b"strict-transport-security", HSTS.encode("latin-1"))
_NO_STORE = (b"cache-control", b"no-store")
_NO_FRAMES = (b"x-frame-options", b"DENY")  # frame-ancestors for older browsers
_CSP = b"content-security-policy"
_POLICY_BYTES = CONTENT_SECURITY_POLICY.encode("latin-1")
_SSO_POLICY_BYTES = SSO_CONTENT_SECURITY_POLICY.encode("latin-1")


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Add the headers of this module's docstring to a response about to start. A header the
    response set itself is kept. The raw header list is read once and appended to: this runs
    on every response (ADR 0023, addendum 3)."""
    if message["type"] != "http.response.start":
        return
    raw = MutableScopeHeaders.from_message(message).headers
    present: dict[bytes, bytes] = {}
    for name, value in raw:
        present.setdefault(name.lower(), value)
    path: str = scope.get("path", "")
    if _NOSNIFF[0] not in present:
        raw.append(_NOSNIFF)
    if _REFERRER[0] not in present:
        raw.append(_REFERRER)
    if scope.get("scheme") == "https" and _HSTS[0] not in present:
        raw.append(_HSTS)
    if _NO_STORE[0] not in present and _uncached(path):
        raw.append(_NO_STORE)
    if present.get(b"content-type", b"").startswith(b"text/html"):
        if _CSP not in present:
            own: dict[str, str] | None = scope.get("state", {}).get(PAGE_POLICY)
            if _SSO_FORMS.match(path):
                policy = _SSO_POLICY_BYTES
            elif own:
                policy = _policy(**own).encode("latin-1")
            else:
                policy = _POLICY_BYTES
            raw.append((_CSP, policy))
        if _NO_FRAMES[0] not in present:
            raw.append(_NO_FRAMES)


_COLOUR = re.compile(r"^([0-9a-f]{6})\.css$")


def brand_css(colour: str) -> str:
    """The brand colour's custom properties: the colour, the text that reads on it (dark or
    white, by contrast ratio), and a shade of it that reads as text on white (links)."""
    on_brand = text_on(colour) or WHITE_TEXT
    return (
        f":root {{ --brand: {colour}; --on-brand: {on_brand}; "
        f"--brand-text: {readable_on_white(colour)}; }}\n"
    )


@get("/brand/{name:str}", include_in_schema=False, sync_to_thread=False)
def brand_stylesheet(name: FromPath[str]) -> Response[Any]:
    """`/brand/1d4ed8.css`: an organization's colour as a stylesheet, which its pages link to
    (an inline `<style>` would need `'unsafe-inline'`). The colour is the name: the file never
    changes and is cached for a year."""
    match = _COLOUR.match(name)
    if match is None:
        raise NotFoundException
    return Response(
        brand_css(f"#{match.group(1)}"),
        media_type="text/css",
        headers={"cache-control": "public, max-age=31536000, immutable"},
    )
