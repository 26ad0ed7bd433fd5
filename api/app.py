"""The Litestar application factory: settings → database, jobs, mail, sessions → routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig

from api.guards import LoginRequired
from api.routes import api_v1, auth, console, participant, public
from api.runtime import connect, import_jobs
from api.sessions import SessionMiddleware
from api.web import locale_of
from core import database, jobs
from core.errors import UserError
from core.i18n import translate
from core.mail import configure_mailer, get_mailer, use_mailer
from core.ratelimit import MemoryRateLimiter, RedisRateLimiter
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

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
CSRF_MESSAGE = "This form has expired. Reload the page and send it again."


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/") or (
        "application/json" in request.headers.get("accept", "")
        and "text/html" not in request.headers.get("accept", "")
    )


def user_error_handler(request: Request[Any, Any, Any], error: UserError) -> Response[Any]:
    """Every error a user can cause: its status, its message in the user's language."""
    locale = locale_of(request)
    if isinstance(error, LoginRequired) and not _wants_json(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(path="/login", query_params={"next": target}, status_code=303)
    message = translate(locale, error.message, **error.params)
    return _render_error(request, error.status_code, message, error.field)


def http_error_handler(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """Litestar's own 4xx (unknown route, bad method, malformed JSON, CSRF) translated."""
    locale = locale_of(request)
    status = error.status_code
    if isinstance(error, PermissionDeniedException) and "CSRF" in str(error.detail):
        message = translate(locale, CSRF_MESSAGE)
    elif status == 400 and _wants_json(request) and error.detail:
        message = translate(locale, "The request is not valid: {detail}", detail=error.detail)
    else:
        message = translate(locale, _STATUS_MESSAGES.get(status, _STATUS_MESSAGES[400]))
    if status >= 500:
        log.error("server error on %s: %s", request.url.path, error.detail)
    return _render_error(request, status, message)


def server_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.exception("unhandled error on %s", request.url.path, exc_info=error)
    return _render_error(request, 500, translate(locale_of(request), _STATUS_MESSAGES[500]))


def _render_error(
    request: Request[Any, Any, Any], status: int, message: str, field: str | None = None
) -> Response[Any]:
    if _wants_json(request):
        body: dict[str, Any] = {"error": {"status": status, "message": message}}
        if field:
            body["error"]["field"] = field
        return Response(body, status_code=status)
    template = request.app.template_engine.get_template("error.html")  # type: ignore[union-attr]
    from api.web import _formatters
    from core.i18n import LOCALE_NAMES

    locale = locale_of(request)
    html = template.render(
        **_formatters(locale),
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
    return Response(html, status_code=status, media_type="text/html")


def _session_store(settings: Settings) -> Store:
    if settings.redis_url:
        return RedisStore.with_client(url=settings.redis_url, namespace="jalon:session")
    return FileStore(path=settings.data_dir / "sessions")


def create_app(settings: Settings | None = None, *, periodic_jobs: bool = False) -> Litestar:
    """The Jalon web application for `settings` (read from the environment by default).

    With `periodic_jobs` and no Redis (the embedded default, where no worker runs), the app
    also runs the periodic jobs (outbox and webhook sweeps, purges) in-process; the served
    application (`api.asgi`) asks for it, tests do not.
    """
    settings = settings or get_settings()
    sessions = _session_store(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if not database.DB.config.get("dsn"):
            connect(settings)
        # A pool started by the caller (the test suite) stays the caller's to close.
        owns_pool = database.DB.pool is None
        if owns_pool:
            await database.start_pool()
        # The queue and mailer are process-wide; whatever was there before comes back at exit.
        previous_queue, previous_mailer = jobs.get_queue(), get_mailer()
        queue = jobs.configure_queue(settings.redis_url)
        configure_mailer(settings.smtp_url, settings.mail_from)
        periodic: asyncio.Task[None] | None = None
        if periodic_jobs and not settings.redis_url:
            import_jobs()
            periodic = asyncio.create_task(jobs.run_periodic_in_process(queue))
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
            app.state.redis = redis
            app.state.limiter = RedisRateLimiter(redis)
        else:
            app.state.redis = None
            app.state.limiter = MemoryRateLimiter()
        try:
            yield
        finally:
            if periodic is not None:
                periodic.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await periodic
            await queue.close()
            await sessions.__aexit__(None, None, None)  # closes its Redis client, if any
            jobs.use_queue(previous_queue)
            use_mailer(previous_mailer)
            if app.state.redis is not None:
                await app.state.redis.aclose()
            if owns_pool:
                await database.close_pool()

    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_name="jalon_csrf",
        cookie_secure=settings.secure_cookies,
        cookie_httponly=True,
        exclude=["/api/v1", "/healthz", "/readyz"],
    )
    return Litestar(
        route_handlers=[
            # Pages for people: not part of the documented JSON API.
            Router(
                path="/",
                route_handlers=[*public.handlers, *auth.handlers, *participant.handlers],
                include_in_schema=False,
            ),
            *console.handlers,
            api_v1.api_router,
            create_static_files_router(
                path="/static", directories=[HERE / "static"], include_in_schema=False
            ),
        ],
        lifespan=[lifespan],
        csrf_config=csrf,
        middleware=[
            DefineMiddleware(
                SessionMiddleware,
                store=sessions,
                max_age=settings.session_max_age_seconds,
                secure=settings.secure_cookies,
            ),
        ],
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        exception_handlers={
            UserError: user_error_handler,
            HTTPException: http_error_handler,
            Exception: server_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="Jalon API",
            version="1",
            description="Tenant API of Jalon. Authenticate with a tenant API token.",
            path="/schema",
            # Each endpoint's docstring is written for API users: it is the operation's text.
            use_handler_docstrings=True,
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(security_schemes={**api_v1.SECURITY_SCHEMES}),
        ),
        request_max_body_size=2_000_000,
        debug=False,
    )
