"""What an HTML front mounts, in the console and the back office alike: the templates (the
shared base, macros and error page, then each front's own), the stylesheet and scripts, CSRF,
server-side sessions, and error pages in the user's language."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from litestar import Request, Response, Router
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig
from litestar.types import ExceptionHandlersMap
from redis.exceptions import ConnectionError as RedisConnectionError

from core.errors import UserError
from core.i18n import LOCALE_NAMES, translate
from core.settings import Settings, get_settings
from web.csrf import csrf_middleware
from web.guards import SECOND_FACTOR_PATH, LoginRequired, SecondFactorRequired
from web.pages import locale_of, page_helpers
from web.session_store import PipelinedRedisStore
from web.sessions import SessionMiddleware
from web.templating import PageEngine

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
#: The shared templates (base, macros, error and message pages) and the stylesheet.
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

_STATUS_MESSAGES = {
    400: "The request could not be understood.",
    401: "Sign in to continue.",
    403: "You do not have permission to do this.",
    404: "This page does not exist, or you do not have access to it.",
    405: "This action is not available here.",
    413: "What you sent is too large.",
    415: "This type of content is not accepted.",
    429: "Too many requests. Wait a moment and try again.",
    500: "Something went wrong on our side. The team has been told; try again later.",
}
#: The prefix of the session keys in Redis.
SESSION_NAMESPACE = "jalon:session"
CSRF_MESSAGE = "This form has expired. Reload the page and send it again."


def template_config(*directories: Path) -> TemplateConfig[PageEngine]:
    """Jinja templates from `directories` (a front's own first), then the shared ones. Each is
    compiled once per process: no file is looked at again on each page (`jalon serve` has no
    reload mode; restart it to see a template changed), and once per language for pages
    (`web.templating`)."""
    return TemplateConfig(
        directory=[*directories, TEMPLATES],
        engine=PageEngine,
        engine_callback=_no_reload,
    )


def _no_reload(engine: PageEngine) -> None:
    engine.engine.auto_reload = False


def static_files() -> Router:
    """`/static/…`: the stylesheet and scripts every page links to."""
    return create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False)


def csrf_config(settings: Settings, exclude: Sequence[str]) -> DefineMiddleware:
    """CSRF protection of every form, bound to the session (`web.csrf`), except for the paths
    in `exclude` (token-authenticated APIs, webhooks, health probes) and what lies under them.
    It must come after `session_middleware` in the middleware list."""
    return csrf_middleware(settings.secret_key, exclude)


def session_store(settings: Settings) -> Store:
    """Where sessions live: Redis when configured (one pipelined connection, TLS through
    Litestar's client), files in the data directory otherwise."""
    if settings.redis_url and settings.redis_url.startswith("rediss://"):
        return RedisStore.with_client(url=settings.redis_url, namespace=SESSION_NAMESPACE)
    if settings.redis_url:
        return PipelinedRedisStore(settings.redis_url, namespace=SESSION_NAMESPACE)
    return FileStore(path=settings.data_dir / "sessions")


def session_middleware(settings: Settings, store: Store) -> DefineMiddleware:
    """Server-side sessions kept in `store`."""
    return DefineMiddleware(
        SessionMiddleware,
        store=store,
        max_age=settings.session_max_age_seconds,
        secure=settings.secure_cookies,
    )


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/") or (
        "application/json" in request.headers.get("accept", "")
        and "text/html" not in request.headers.get("accept", "")
    )


def user_error_handler(request: Request[Any, Any, Any], error: UserError) -> Response[Any]:
    """Every error a user can cause: its status, its message in the user's language."""
    locale = locale_of(request)
    if isinstance(error, LoginRequired | SecondFactorRequired) and not _wants_json(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        path = "/login" if isinstance(error, LoginRequired) else SECOND_FACTOR_PATH
        return Redirect(path=path, query_params={"next": target}, status_code=303)
    message = translate(locale, error.message, **error.params)
    return _render_error(request, error.status_code, message, error.field)


def http_error_handler(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """Litestar's own 4xx (unknown route, bad method, malformed JSON, CSRF) translated."""
    locale = locale_of(request)
    status = error.status_code
    field: str | None = None
    if isinstance(error, PermissionDeniedException) and "CSRF" in str(error.detail):
        message = translate(locale, CSRF_MESSAGE)
    elif status == 400 and _wants_json(request) and error.detail:
        detail, field = _validation_detail(error)
        message = translate(locale, "The request is not valid: {detail}", detail=detail)
    else:
        message = translate(locale, _STATUS_MESSAGES.get(status, _STATUS_MESSAGES[400]))
    if status >= 500:
        log.error("server error on %s: %s", request.url.path, error.detail)
    # A 405 names the methods the path takes (`Allow`, RFC 9110), as Litestar's router says.
    return _render_error(request, status, message, field, headers=error.headers)


def _validation_detail(error: HTTPException) -> tuple[str, str | None]:
    """What a parameter or body validation error says, and the field at fault: Litestar puts
    them in `extra` ({"key", "message", "source"}); the API's error body carries them as
    `message` and `field`, like the 422s of the domain."""
    extra = error.extra if isinstance(error.extra, list) else []
    problems = [item for item in extra if isinstance(item, dict) and item.get("message")]
    if not problems:
        return str(error.detail), None
    keys = [str(item["key"]) for item in problems if item.get("key")]
    detail = "; ".join(
        f"{item['key']}: {item['message']}" if item.get("key") else str(item["message"])
        for item in problems
    )
    return detail, keys[0] if keys else None


def read_only_handler(
    request: Request[Any, Any, Any], error: asyncpg.ReadOnlySQLTransactionError
) -> Response[Any]:
    """A write attempted in a read-only transaction by a staff member impersonating a tenant:
    the database refused it, and the person is told why, never shown a 500. Anywhere else it
    is a bug (or a read-only replica), and a server error."""
    if not request.scope.get("state", {}).get("impersonation"):
        return server_error_handler(request, error)
    message = translate(
        locale_of(request), "You are viewing this organization read-only: nothing can be changed."
    )
    return _render_error(request, 403, message)


def server_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.exception("unhandled error on %s", request.url.path, exc_info=error)
    return _render_error(request, 500, translate(locale_of(request), _STATUS_MESSAGES[500]))


UNAVAILABLE_MESSAGE = (
    "The service is briefly unavailable, and nothing of this request was saved. "
    "Try again in a moment."
)


def unavailable_handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """The database or Redis did not answer (a connection killed, a server restarting): a 503
    saying to try again, never a 500; the request's transaction was rolled back whole."""
    log.warning("service unavailable on %s: %r", request.url.path, error)
    response = _render_error(request, 503, translate(locale_of(request), UNAVAILABLE_MESSAGE))
    response.headers["retry-after"] = "5"
    return response


#: What a server that does not answer raises (ADR 0025).
UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    ConnectionError,
    RedisConnectionError,
)

#: The exception handlers of every front.
EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    UserError: user_error_handler,
    HTTPException: http_error_handler,
    asyncpg.ReadOnlySQLTransactionError: read_only_handler,
    **dict.fromkeys(UNAVAILABLE, unavailable_handler),
    Exception: server_error_handler,
}


def _render_error(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    if _wants_json(request):
        body: dict[str, Any] = {"error": {"status": status, "message": message}}
        if field:
            body["error"]["field"] = field
        return Response(body, status_code=status, headers=headers)
    template = request.app.template_engine.get_template("error.html")  # type: ignore[union-attr]
    locale = locale_of(request)
    html = template.render(
        **page_helpers(locale),
        locale=locale,
        locales=LOCALE_NAMES,
        status_code=status,
        message=message,
        user=request.scope.get("state", {}).get("user"),
        ctx=None,
        tenant=None,
        notices=[],
        dev_outbox=get_settings().dev_outbox,
        path=request.url.path,
        errors={},
        values={},
        csrf_input="",
        request=request,
    )
    return Response(html, status_code=status, media_type="text/html", headers=headers)
