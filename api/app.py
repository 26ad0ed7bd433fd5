"""The Litestar application factory: settings → database, jobs, mail, sessions → routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components

from admin.app import TEMPLATES as ADMIN_TEMPLATES
from admin.app import admin_router
from api import api_docs, dev_idp
from api.api_docs import RedocPage, SwaggerPage
from api.routes import (
    api_v1,
    auth,
    billing_console,
    billing_stripe,
    console,
    participant,
    public,
    scim,
    sso_oidc,
    sso_saml,
)
from api.routes import metrics as metrics_route
from api.runtime import connect, import_jobs
from core import database, jobs, metrics
from core.mail import configure_mailer, get_mailer, use_mailer
from core.ratelimit import PROCESS_LIMITER, RedisRateLimiter
from core.settings import Settings, get_settings
from web import observe
from web.front import (
    EXCEPTION_HANDLERS,
    csrf_config,
    session_middleware,
    session_store,
    static_files,
    template_config,
)
from web.headers import add_security_headers, brand_stylesheet
from web.requests import JalonRequest

HERE = Path(__file__).parent


def create_app(settings: Settings | None = None, *, periodic_jobs: bool = False) -> Litestar:
    """The Jalon web application for `settings` (read from the environment by default).

    With `periodic_jobs` and no Redis (the embedded default, where no worker runs), the app
    also runs the periodic jobs (outbox and webhook sweeps, purges) in-process; the served
    application (`api.asgi`) asks for it, tests do not.
    """
    settings = settings or get_settings()
    sessions = session_store(settings)
    # Every job is registered before a request can enqueue one (the queue checks the name),
    # and every webhook event before a form lists them or an endpoint is saved.
    import_jobs()

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
            periodic = asyncio.create_task(jobs.run_periodic_in_process(queue))
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
            app.state.redis = redis
            app.state.limiter = RedisRateLimiter(redis)
        else:
            app.state.redis = None
            app.state.limiter = PROCESS_LIMITER  # the in-process jobs count with it too
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
            metrics.process_exited()

    # The demo's development identity provider, only when asked for (`api.dev_idp`).
    dev_idp_routes = [dev_idp.dev_idp_router(settings)] if settings.dev_idp else []
    dev_idp_state = {"dev_idp": dev_idp.DevIdentityProvider(settings)} if settings.dev_idp else {}
    app = Litestar(
        state=State(dev_idp_state),
        route_handlers=[
            # Pages for people: not part of the documented JSON API.
            Router(
                path="/",
                route_handlers=[
                    *public.handlers,
                    *billing_console.public_handlers,
                    *auth.handlers,
                    *participant.handlers,
                    *sso_oidc.handlers,
                    *sso_saml.handlers,
                ],
                include_in_schema=False,
            ),
            *console.handlers,
            admin_router(),
            *billing_stripe.webhook_handlers(settings),
            api_v1.api_router,
            scim.scim_router,
            *dev_idp_routes,
            *metrics_route.handlers(settings),
            static_files(),
            *api_docs.assets_handlers(),
            brand_stylesheet,
        ],
        lifespan=[lifespan],
        middleware=[
            session_middleware(settings, sessions),
            csrf_config(
                settings,
                exclude=[
                    "/api/v1",
                    "/scim/v2",
                    "/healthz",
                    "/readyz",
                    billing_stripe.WEBHOOK_PATH,
                    # the provider's token endpoint is called by the OIDC client, not a form
                    dev_idp.PATH,
                ],
            ),
        ],
        template_config=template_config(HERE / "templates", ADMIN_TEMPLATES),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Jalon API",
            version="1",
            description="Tenant API of Jalon. Authenticate with a tenant API token.",
            path="/schema",
            # Each endpoint's docstring is written for API users: it is the operation's text.
            use_handler_docstrings=True,
            # Swagger UI (also at /schema) and Redoc, from files Jalon serves: api.api_docs
            render_plugins=[SwaggerPage(), RedocPage()],
            components=Components(security_schemes={**api_v1.SECURITY_SCHEMES}),
        ),
        request_max_body_size=2_000_000,
        # JSON bodies nested deeper than any of ours: a 400, never a RecursionError.
        request_class=JalonRequest,
        # CSP, nosniff, referrer policy, HSTS over https, no-store: web.headers.
        before_send=[add_security_headers],
        # logging is the process's (core.logging, set by `jalon serve`), not Litestar's
        logging_config=None,
        debug=False,
    )
    # request latency by route, request ids in the logs (around routing and error pages)
    return observe.install(app)
