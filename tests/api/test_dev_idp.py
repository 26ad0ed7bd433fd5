"""The demo's development identity provider: absent unless asked for, refused in production
and off loopback, and, when on, a new employee signs in through it end to end and takes an
SSO-required campaign."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from litestar import Litestar

from api.app import create_app
from api.cli import main
from api.demo import SSO_ORGANIZATION, seed, seed_sso
from api.dev_idp import DEMO_DOMAIN, PERSONAS, dev_idp_allowed
from campaigns.participation.landing import resolve_code
from core import database
from core.settings import Settings, get_settings, load_settings
from sso import oidc
from tenants.organizations import tenant_by_slug
from tests.api.conftest import app  # noqa: F401 - the application fixture
from tests.api.running import asgi_transport, running
from tests.db import as_tenant

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def test_the_provider_is_absent_by_default(app: Litestar) -> None:  # noqa: F811
    assert not get_settings().dev_idp
    async with httpx.AsyncClient(transport=asgi_transport(app), base_url="http://x") as client:
        response = await client.get("/dev/idp/.well-known/openid-configuration")
    assert response.status_code == 404


def test_production_settings_refuse_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "JALON_ENV": "production",
        "JALON_DEV_IDP": "true",
        "JALON_SECRET_KEY": "k" * 40,
        "DATABASE_URL": "postgresql://db/jalon",
        "JALON_SMTP_URL": "smtp://mail",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match="JALON_DEV_IDP"):
        load_settings()
    monkeypatch.setenv("JALON_DEV_IDP", "false")
    assert load_settings().dev_idp is False


def test_the_app_refuses_it_in_production_or_off_loopback(settings: Settings) -> None:
    for wrong in (
        dataclasses.replace(settings, dev_idp=True, environment="production"),
        dataclasses.replace(settings, dev_idp=True, base_url="https://jalon.example.org"),
    ):
        with pytest.raises(RuntimeError, match="JALON_DEV_IDP"):
            dev_idp_allowed(wrong)
        with pytest.raises(RuntimeError, match="JALON_DEV_IDP"):
            create_app(wrong)


def test_serve_binds_it_to_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JALON_DEV_IDP", "true")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])  # noqa: S104
        assert result.exit_code == 2
        assert "127.0.0.1" in result.output
    finally:
        get_settings.cache_clear()


@pytest.fixture
async def idp_app(db: str, settings: Settings) -> AsyncIterator[Litestar]:
    """The application with the provider on, its OIDC client reaching it in-process."""
    async with running(create_app(dataclasses.replace(settings, dev_idp=True))) as application:
        previous = oidc.use_transport(asgi_transport(application))
        try:
            yield application
        finally:
            oidc.use_transport(previous)


async def _demo_with_sso(settings: Settings) -> tuple[str, list[str]]:
    """The demo seeded with its SSO organization; the SSO campaign's code and what is printed."""
    await seed()
    printed = await seed_sso(dataclasses.replace(settings, dev_idp=True))
    match = re.search(r"/c/(\S+)", printed[0])
    assert match
    return match.group(1), printed


async def test_the_demo_seeds_a_verified_domain_a_connection_and_an_sso_campaign(
    db: str, settings: Settings
) -> None:
    code, printed = await _demo_with_sso(settings)
    assert PERSONAS[0].email in printed[1]
    assert await seed_sso(dataclasses.replace(settings, dev_idp=True)) == printed  # again
    assert await seed_sso(settings) == []  # the provider off: nothing
    landing = await resolve_code(code)
    assert landing.sso_required
    tenant = await tenant_by_slug(SSO_ORGANIZATION)
    async with as_tenant(tenant.id):
        verified = await database.fetch(
            "SELECT organization_id FROM verified_domain WHERE domain = $1", DEMO_DOMAIN
        )
        events = await database.fetch(
            """SELECT actor_label FROM audit_event
               WHERE tenant_id = $1 AND action = 'sso.domain_verified'""",
            tenant.id,
        )
        connections = await database.fetch(
            "SELECT enabled, settings FROM sso_connection WHERE tenant_id = $1", tenant.id
        )
    assert [row["organization_id"] for row in verified] == [tenant.id]
    # The one verification that skipped DNS says so in the log.
    assert [row["actor_label"] for row in events] == ["demo seeding (DNS check bypassed)"]
    assert [row["enabled"] for row in connections] == [True]


async def test_a_new_employee_signs_in_through_it_and_takes_the_sso_campaign(
    idp_app: Litestar, settings: Settings
) -> None:
    assert urlsplit(settings.base_url).hostname == "127.0.0.1"
    code, _ = await _demo_with_sso(settings)
    newcomer = PERSONAS[0]
    async with httpx.AsyncClient(
        transport=asgi_transport(idp_app),
        base_url=settings.base_url,
        headers={"accept-language": "en"},
    ) as browser:
        to_sso = await browser.get(f"/c/{code}/sso")
        assert to_sso.status_code == 303
        start = await browser.get(to_sso.headers["location"])
        assert start.status_code == 303
        authorize = start.headers["location"]
        assert authorize.startswith(f"{settings.base_url}/dev/idp/authorize?")
        page = await browser.get(authorize)
        assert page.status_code == 200
        assert newcomer.email in page.text
        chosen = dict(_HIDDEN.findall(page.text.split("</form>")[0]))
        assert chosen["login"] == newcomer.login
        back = await browser.post("/dev/idp/authorize", data=chosen)
        assert back.status_code == 303
        callback = urlsplit(back.headers["location"])
        assert set(parse_qs(callback.query)) == {"code", "state"}
        signed_in = await browser.get(f"{callback.path}?{callback.query}")
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"] == f"/c/{code}"
        landing = await browser.get(f"/c/{code}")
        assert landing.status_code == 200
        csrf = _CSRF.search(landing.text)
        assert csrf
        started = await browser.post(f"/c/{code}/start", data={"_csrf_token": csrf.group(1)})
        assert started.status_code == 303, started.text
        assert started.headers["location"].startswith(f"/p/{SSO_ORGANIZATION}/")
    tenant = await tenant_by_slug(SSO_ORGANIZATION)
    async with as_tenant(tenant.id):
        accounts = await database.fetch(
            "SELECT id, name FROM user_account WHERE email = $1", newcomer.email
        )
        assert accounts, "the newcomer's account was made as she signed in"
        learners = await database.fetch(
            "SELECT external_id FROM learner WHERE tenant_id = $1 AND user_id = $2",
            tenant.id,
            accounts[0]["id"],
        )
    assert accounts[0]["name"] == f"{newcomer.given_name} {newcomer.family_name}"
    assert [row["external_id"] for row in learners] == [newcomer.claims()["employee_id"]]


async def test_the_token_endpoint_refuses_a_wrong_secret_or_verifier(idp_app: Litestar) -> None:
    async with httpx.AsyncClient(
        transport=asgi_transport(idp_app), base_url="http://127.0.0.1:8000"
    ) as client:
        wrong_client = await client.post(
            "/dev/idp/token",
            data={"grant_type": "authorization_code", "code": "x"},
            auth=("jalon-demo", "not the secret"),
        )
        assert wrong_client.status_code == 401
        unknown_code = await client.post(
            "/dev/idp/token",
            data={"grant_type": "authorization_code", "code": "made-up", "code_verifier": "v"},
            auth=("jalon-demo", "jalon-demo-idp-secret"),
        )
        assert unknown_code.status_code == 400
        assert unknown_code.json() == {"error": "invalid_grant"}
        jwks = (await client.get("/dev/idp/jwks")).json()
        assert jwks["keys"][0]["kty"] == "RSA"
        assert "d" not in jwks["keys"][0]  # the public half only
