"""Fixtures for HTTP tests: the real application on the test database, and a browser-like
client that keeps cookies and sends the CSRF token of the last page it loaded."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar

from api.app import create_app
from core.settings import Settings
from tenants.accounts import UserAccount
from tests.api.running import asgi_transport, running
from tests.db import as_tenant

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


class Browser:
    """A thin wrapper over the test client that behaves like a person's browser."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(path, **kwargs)
        match = _CSRF.search(response.text)
        if match:
            self.csrf = match.group(1)
        return response

    async def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        page: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Submit a form as if from `page` (default: the form's own path)."""
        await self.get(page or "/login")
        form = {"_csrf_token": self.csrf, **(data or {})}
        return await self.client.post(path, data=form, **kwargs)

    async def login(self, user: UserAccount, password: str = PASSWORD) -> httpx.Response:
        response = await self.post("/login", {"email": user.email, "password": password})
        assert response.status_code == 303, response.text
        # The session got a new id, and its forms a new token (`web.csrf`): load a page of
        # the signed-in session, as a browser following the redirect would.
        await self.get("/account")
        return response


@pytest.fixture(scope="session")
async def app(db: str, settings: Settings) -> AsyncIterator[Litestar]:
    """The application, started once (its lifespan) on the suite's event loop."""
    async with running(create_app(settings)) as application:
        yield application


async def _never_a_server_error(response: httpx.Response) -> None:
    # A 500 is a bug: every request of the suite goes through this check.
    assert response.status_code < 500, f"{response.request.method} {response.request.url} -> 500"


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the application in-process, on the same event loop as the
    database pool (Litestar's own test client runs the app on a thread of its own)."""
    transport = asgi_transport(app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://127.0.0.1",
        follow_redirects=False,
        headers={"accept-language": "en"},
        event_hooks={"response": [_never_a_server_error]},
    ) as test_client:
        yield test_client


@pytest.fixture
async def browser(client: httpx.AsyncClient) -> Browser:
    return Browser(client)


# --- shared by the console, invitation, API and isolation tests ---------------------------


async def audit_actions(tenant_id: Any) -> list[str]:
    """The tenant's audit log, oldest first, as its actions: compare before and after a request
    to see what it recorded."""
    from core import database

    async with as_tenant(tenant_id):
        rows = await database.fetch(
            "SELECT action FROM audit_event WHERE tenant_id = $1 ORDER BY occurred_at, id",
            tenant_id,
        )
    return [row["action"] for row in rows]


async def issue_token(ctx: Any, *scopes: str, days: int | None = None) -> str:
    """A real API token of `ctx`'s organization carrying `scopes` (all of them by default)."""
    from tenants.permissions import TOKEN_SCOPES
    from tenants.tokens import create_token

    chosen = list(scopes) or [scope.value for scope in TOKEN_SCOPES]
    issued = await create_token(ctx, "test integration", chosen, days)
    return issued.token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@asynccontextmanager
async def browser_on(app: Litestar) -> AsyncIterator[Browser]:
    """A browser of its own, like the `browser` fixture, for module-scoped fixtures: one
    sign-in shared by the many tests that only read, or are refused and must write nothing."""
    transport = asgi_transport(app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://127.0.0.1",
        follow_redirects=False,
        headers={"accept-language": "en"},
        event_hooks={"response": [_never_a_server_error]},
    ) as test_client:
        yield Browser(test_client)
