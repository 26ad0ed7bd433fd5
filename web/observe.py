"""What every request leaves behind for the operators: its latency in the Prometheus metrics,
by route template (never the raw path, whose ids would make a series per participant), and
the ids its log lines carry (`core.logging`): the request id, taken from a well-formed
`X-Request-ID` or made up, and echoed in the response; the tenant and user, read from the
request when a line is written.

`install(app)` wraps the whole application, outside routing and the exception handlers, so
that unknown paths (404) and server errors (500) are measured too, with the status sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core import metrics
from core.logging import (
    LogContext,
    accepted_request_id,
    close_context,
    new_request_id,
    open_context,
)

#: The route template of the answer POST: its latency is also the answer-cycle metric.
ANSWER_ROUTE = "/p/{slug}/{participation_id}"
#: What requests that matched no route are counted under.
UNMATCHED = "unmatched"
#: The pool gauges are refreshed from requests at most this often (seconds): in multiprocess
#: mode a scrape reaches one worker, and reads the others' gauges as they last wrote them.
POOL_REFRESH_SECONDS = 5.0

_REQUEST_ID_HEADER = b"x-request-id"
#: One line per request (route template, status, milliseconds, the ids) at DEBUG level:
#: off by default, as the server's access log (JALON_ACCESS_LOG) says what was asked
#: and answered.
access_log = logging.getLogger("jalon.access")


def _ids(scope: Scope) -> tuple[str | None, str | None]:
    """The tenant and user of the request, as far as it got: the tenant context a guard set,
    else the signed-in person of the session. Reads what is there, never queries."""
    state: dict[str, Any] = scope.get("state") or {}
    ctx = state.get("ctx")
    tenant_id = str(ctx.tenant_id) if ctx is not None else None
    user_id = str(ctx.user_id) if ctx is not None and ctx.user_id is not None else None
    if user_id is None:
        session: Any = scope.get("jalon_session")
        found = session.get("user_id") if session is not None else None
        user_id = str(found) if found else None
    return tenant_id, user_id


def route_template(scope: Scope) -> str:
    """The matched route's template (Litestar's, parameters without their types:
    `/p/{slug}/{participation_id}`), or `unmatched`."""
    template: str = scope.get("path_template") or UNMATCHED
    return template


class ObserveMiddleware:
    """Times each HTTP request and gives it a request id and a log context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._pool_refreshed = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER:
                request_id = accepted_request_id(value.decode("latin-1"))
                break
        request_id = request_id or new_request_id()
        echoed = (_REQUEST_ID_HEADER, request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = open_context(LogContext(request_id=request_id, resolve=lambda: _ids(scope)))
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method: str = scope["method"]
            metrics.observe_request(route, method, status, elapsed)
            if method == "POST" and route == ANSWER_ROUTE:
                metrics.observe_answer_cycle(elapsed)
            if access_log.isEnabledFor(logging.DEBUG):
                milliseconds = round(elapsed * 1000, 1)
                access_log.debug(
                    "%s %s %d %.1f ms",
                    method,
                    route,
                    status,
                    milliseconds,
                    extra={"route": route, "status": status, "duration_ms": milliseconds},
                )
            now = time.monotonic()
            if now - self._pool_refreshed > POOL_REFRESH_SECONDS:
                self._pool_refreshed = now
                metrics.refresh_pool_gauges()
            close_context(token)


def install(app: Litestar) -> Litestar:
    """Wrap `app`'s request handling (routing, exception handlers and all) in the observer."""
    app.asgi_handler = ObserveMiddleware(app.asgi_handler)
    return app
