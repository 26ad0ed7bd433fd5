"""The development outbox (issue 13 §2.1): it shows every organization's sign-in links, so it
answers only in development mode, without SMTP, to a client on this machine; and `jalon serve`
in development mode listens on loopback only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner
from litestar import Litestar

from api.cli import main
from core import database, mail
from core.settings import get_settings
from tests.api.conftest import app  # noqa: F401 - the application fixture


def _client(app: Litestar, host: str) -> httpx.AsyncClient:  # noqa: F811
    transport = httpx.ASGITransport(app=app, client=(host, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def _a_link_in_the_outbox() -> None:
    async with database.global_transaction():
        await mail.queue_mail("owner@outbox.example", "Lien de connexion", "/login/link/SECRET")


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's settings as a production deployment reads them (JALON_ENV unset)."""
    monkeypatch.delenv("JALON_ENV")
    monkeypatch.setenv("JALON_SECRET_KEY", "k" * 64)
    monkeypatch.setenv("DATABASE_URL", "postgresql://owner@db.invalid/jalon")
    monkeypatch.setenv("JALON_SMTP_URL", "smtp://mail.invalid")
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


async def test_development_shows_the_outbox_to_loopback_clients(app: Litestar) -> None:  # noqa: F811
    assert get_settings().dev_outbox  # the suite asks for development mode (tests/conftest.py)
    await _a_link_in_the_outbox()
    for host in ("127.0.0.1", "::1"):
        async with _client(app, host) as client:
            response = await client.get("/dev/outbox")
        assert response.status_code == 200, host
        assert "/login/link/SECRET" in response.text


@pytest.mark.parametrize("host", ["10.0.0.5", "192.0.2.10", "2001:db8::1", "127.0.0.1.nip.io"])
async def test_any_other_client_gets_a_404(app: Litestar, host: str) -> None:  # noqa: F811
    await _a_link_in_the_outbox()
    async with _client(app, host) as client:
        # A forwarded-for header is not the connection's address: it opens nothing.
        response = await client.get("/dev/outbox", headers={"X-Forwarded-For": "127.0.0.1"})
    assert response.status_code == 404
    assert "SECRET" not in response.text


async def test_production_has_no_outbox(app: Litestar, production: None) -> None:  # noqa: F811
    await _a_link_in_the_outbox()
    assert not get_settings().dev_outbox
    async with _client(app, "127.0.0.1") as client:
        response = await client.get("/dev/outbox")
    assert response.status_code == 404
    assert "SECRET" not in response.text


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "jalon.example.org"])  # noqa: S104
def test_serve_in_development_refuses_a_non_loopback_address(host: str) -> None:
    get_settings.cache_clear()
    try:
        assert get_settings().development
        result = CliRunner().invoke(main, ["serve", "--host", host])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "loopback" in result.output
