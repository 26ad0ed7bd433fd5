"""CSRF protection bound to the server-side session.

Each session holds a random secret (`_csrf`); the token a form carries is the HMAC of that
secret with `JALON_SECRET_KEY`. A POST (any unsafe method) on a protected path must bring the
token of its own session, compared in constant time: a token read in another visitor's session
is refused, unlike a double-submit cookie, where any visitor's cookie-and-token pair would do.

- The secret is created the first time a session is shown an HTML page (that is when a form
  can carry its token), so JSON answers, redirects and static files make no session.
- The check runs before the handler, so the form of the page shown before sign-in still signs
  in; a session that gets a new id (sign-in, sign-out, second factor) drops its secret, and
  the next page gives the new session a new token.
- Paths in `exclude` (token-authenticated APIs, webhooks, health probes) and handlers with
  `opt={"exclude_from_csrf": True}` (the SAML assertion consumer) are not checked.
- A refusal raises `PermissionDeniedException` with "CSRF" in its detail: the front's error
  handler answers 403 with `web.front.CSRF_MESSAGE` in the user's language.

Templates get the token as Litestar's `csrf_input` (and `csrf_token()`), as before.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Any

from litestar.connection import Request
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware._utils import build_exclude_path_pattern, should_bypass_middleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from web.sessions import get_session

#: The session key of the per-session secret.
SESSION_KEY = "_csrf"
#: The form field and the header that carry the token.
FORM_FIELD = "_csrf_token"
HEADER = "x-csrftoken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXCLUDE_OPT_KEY = "exclude_from_csrf"
REFUSED = "CSRF token verification failed"


def csrf_token_for(secret_key: str, session_secret: str) -> str:
    """The token forms of a session carry: its secret, keyed with the server's secret key."""
    return hmac.new(
        secret_key.encode(), b"jalon-csrf:" + session_secret.encode(), hashlib.sha256
    ).hexdigest()


class CSRFMiddleware:
    """Checks the token of every unsafe request against the request's session; sets the
    session's token for the templates of safe ones. Runs inside `SessionMiddleware`."""

    def __init__(self, app: ASGIApp, secret_key: str, exclude: Sequence[str]) -> None:
        self.app = app
        self.secret_key = secret_key
        # Patterns are searched anywhere in a path: each is anchored, so `/healthz` does not
        # exempt `/o/healthz-corp/settings`.
        self.exclude = build_exclude_path_pattern(
            exclude=[f"^{re.escape(path)}(/|$)" for path in exclude], middleware_cls=type(self)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or should_bypass_middleware(
            scope=scope,
            scopes={ScopeType.HTTP},
            exclude_opt_key=EXCLUDE_OPT_KEY,
            exclude_path_pattern=self.exclude,
        ):
            await self.app(scope, receive, send)
            return
        session = get_session(scope)
        stored = session.get(SESSION_KEY)
        state = ScopeState.from_scope(scope)
        if scope["method"] in SAFE_METHODS:
            secret = stored if isinstance(stored, str) and stored else secrets.token_hex(32)
            state.csrf_token = csrf_token_for(self.secret_key, secret)
            await self.app(scope, receive, self._keeping(secret, scope, send))
            return
        sent = await self._sent_token(scope, receive)
        if not (isinstance(stored, str) and stored and sent):
            raise PermissionDeniedException(REFUSED)
        expected = csrf_token_for(self.secret_key, stored)
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise PermissionDeniedException(REFUSED)
        state.csrf_token = expected
        await self.app(scope, receive, self._keeping(stored, scope, send))

    def _keeping(self, secret: str, scope: Scope, send: Send) -> Send:
        """`send`, storing `secret` in the session when an HTML page is answered (and dropping
        it when the session got a new id during the request)."""
        session = get_session(scope)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                if session.previous_id is not None:
                    # A new id (sign-in, sign-out…): its pages get a new token.
                    if SESSION_KEY in session:
                        session.pop(SESSION_KEY)
                elif SESSION_KEY not in session and _is_html(message):
                    session[SESSION_KEY] = secret
            await send(message)

        return send_wrapper

    @staticmethod
    async def _sent_token(scope: Scope, receive: Receive) -> str | None:
        request: Request[Any, Any, Any] = scope["litestar_app"].request_class(
            scope=scope, receive=receive
        )
        token = request.headers.get(HEADER)
        if not token:
            content_type, _ = request.content_type
            if content_type in {RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART}:
                form = await request.form()
                value = form.get(FORM_FIELD)
                token = value if isinstance(value, str) else None
        return token or None


def _is_html(message: Message) -> bool:
    headers: list[tuple[bytes, bytes]] = list(message.get("headers") or [])  # type: ignore[call-overload]
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.startswith(b"text/html")
    return False


def csrf_middleware(secret_key: str, exclude: Sequence[str]) -> DefineMiddleware:
    """The CSRF check of every form, except under the paths in `exclude`."""
    return DefineMiddleware(CSRFMiddleware, secret_key=secret_key, exclude=exclude)
