"""OpenID Connect over HTTP, end to end against the real provider: start → the provider's
login → callback → signed in; refusals audited and explained; the flow bound to the browser
that started it; "test this connection"; the console's connection pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from litestar import Litestar

from core import database
from core.settings import get_settings
from sso.connections import get_connection
from tests.api.conftest import Browser, audit_actions, browser_on
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso.conftest import OidcPeer, peer_connection


async def _connection(peer: OidcPeer, tenant: TenantFixture, *, enabled: bool = True) -> str:
    """A connection of `tenant` to the provider, registered there with its redirect URI."""
    return str(await peer_connection(peer, tenant, enabled=enabled))


def _local(url: str) -> str:
    """The path and query of a URL of Jalon (the test client talks to the app in-process)."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == get_settings().base_url
    return f"{parts.path}?{parts.query}"


async def _to_provider(browser: Browser, start: str) -> str:
    response = await browser.client.get(start)
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def test_a_member_signs_in_through_the_provider(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a)
    before = await audit_actions(tenant_a.id)
    start = f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?next=/o/{tenant_a.slug}/members"
    authorization = await _to_provider(browser, start)
    assert authorization.startswith(oidc_peer.issuer)
    assert "code_challenge_method=S256" in authorization
    back = await oidc_peer.log_in(authorization, tenant_a.member.email)
    response = await browser.client.get(_local(back))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/o/{tenant_a.slug}/members"
    console = await browser.client.get(f"/o/{tenant_a.slug}/members")
    assert console.status_code == 200
    assert tenant_a.member.email in console.text
    assert "sso.sign_in" in (await audit_actions(tenant_a.id))[len(before) :]


async def test_a_forged_token_is_refused_audited_and_explained(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a)
    authorization = await _to_provider(browser, f"/sso/{tenant_a.slug}/oidc/{connection_id}/start")
    back = await oidc_peer.log_in(authorization, tenant_a.member.email)
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "x"}).encode()).rstrip(b"=").decode()
    oidc_peer.replace_next_id_token(f"{header}.{payload}.")
    before = await audit_actions(tenant_a.id)
    response = await browser.client.get(_local(back))
    assert response.status_code == 400
    assert "oidc.algorithm" in response.text
    assert (await audit_actions(tenant_a.id))[len(before) :] == ["sso.refused"]
    # Not signed in.
    assert (await browser.client.get(f"/o/{tenant_a.slug}/")).status_code in (302, 303, 401)


async def test_a_callback_from_another_browsers_sign_in_is_refused(
    app: Litestar, oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    """Code injection: the attacker's callback (code and state of the attacker's own flow)
    opened in the victim's browser finds no flow there."""
    connection_id = await _connection(oidc_peer, tenant_a)
    start = f"/sso/{tenant_a.slug}/oidc/{connection_id}/start"
    async with browser_on(app) as attacker:
        attackers = await oidc_peer.log_in(
            await _to_provider(attacker, start), "attacker@evil.test"
        )
    await _to_provider(browser, start)  # the victim has a flow of their own
    response = await browser.client.get(_local(attackers))
    assert response.status_code == 400
    assert "oidc.state" in response.text


async def test_a_callback_is_used_once(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser, app: Litestar
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a)
    start = f"/sso/{tenant_a.slug}/oidc/{connection_id}/start"
    back = await oidc_peer.log_in(await _to_provider(browser, start), tenant_a.member.email)
    assert (await browser.client.get(_local(back))).status_code == 303
    replayed = await browser.client.get(_local(back))
    assert replayed.status_code == 400
    assert "oidc.state" in replayed.text


async def test_a_disabled_connection_signs_nobody_in(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a, enabled=False)
    response = await browser.client.get(f"/sso/{tenant_a.slug}/oidc/{connection_id}/start")
    assert response.status_code == 404


async def test_an_admin_tests_a_disabled_connection_without_being_signed_in_as_another(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a, enabled=False)
    await browser.login(tenant_a.owner)
    oidc_peer.set_claims("tester@alpha.test", {"groups": ["Jalon admins"], "given_name": "Tess"})
    before = await audit_actions(tenant_a.id)
    authorization = await _to_provider(
        browser, f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?test=1"
    )
    back = await oidc_peer.log_in(authorization, "tester@alpha.test")
    result = await browser.client.get(_local(back))
    assert result.status_code == 200
    assert "tester@alpha.test" in result.text
    assert "Tess" in result.text
    assert (await audit_actions(tenant_a.id))[len(before) :] == ["sso.connection.tested"]
    # Still the owner, in the owner's session.
    members = await browser.client.get(f"/o/{tenant_a.slug}/members")
    assert members.status_code == 200


async def test_a_refused_test_shows_its_reason(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a, enabled=False)
    await browser.login(tenant_a.owner)
    authorization = await _to_provider(
        browser, f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?test=1"
    )
    back = await oidc_peer.log_in(authorization, "tester@alpha.test")
    result = await browser.client.get(_local(back).replace("iss=", "iss=https%3A%2F%2Fevil&x="))
    assert result.status_code == 400
    assert "oidc.issuer" in result.text


async def test_only_admins_may_test_a_connection(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a, enabled=False)
    await browser.login(tenant_a.member)
    response = await browser.client.get(f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?test=1")
    assert response.status_code == 403


async def test_the_console_lists_creates_and_edits_oidc_connections(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/sso"
    page = await browser.get(base)
    assert page.status_code == 200
    assert f'href="{base}"' in page.text  # the console's navigation
    assert f"{base}/oidc/new" in page.text
    assert f"{base}/saml/new" in page.text
    form = {
        "name": "Acme staff",
        "issuer": oidc_peer.issuer,
        "client_id": "acme",
        "client_secret": "very-secret-value",
        "scopes": "openid email profile",
        "role_mapping": "Jalon admins = admin",
        "default_role": "member",
    }
    created = await browser.post(f"{base}/oidc/new", form, page=f"{base}/oidc/new")
    assert created.status_code == 303, created.text
    edit = await browser.get(created.headers["location"])
    assert edit.status_code == 200
    connection_id = created.headers["location"].rsplit("/", 1)[1]
    assert f"/sso/{tenant_a.slug}/oidc/{connection_id}/callback" in edit.text
    assert "very-secret-value" not in edit.text
    assert "Jalon admins = admin" in edit.text
    # Saved without a secret: the stored one stays.
    kept = await browser.post(
        f"{base}/oidc/{connection_id}", {**form, "client_secret": "", "name": "Acme"}
    )
    assert kept.status_code == 303
    enabled = await browser.post(f"{base}/connections/{connection_id}/enable", page=base)
    assert enabled.status_code == 303
    listing = await browser.get(base)
    assert "Acme" in listing.text
    assert "enabled" in listing.text


async def test_a_wrong_role_mapping_is_shown_on_its_field(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/sso"
    form = {
        "name": "Acme",
        "issuer": oidc_peer.issuer,
        "client_id": "acme",
        "client_secret": "do-not-echo-me",
        "role_mapping": "Everyone = owner",
    }
    response = await browser.post(f"{base}/oidc/new", form, page=f"{base}/oidc/new")
    assert response.status_code == 422
    assert 'id="f-role_mapping-error"' in response.text
    assert "do-not-echo-me" not in response.text


async def test_members_without_sso_manage_see_no_sso_pages(
    tenant_a: TenantFixture, browser: Browser
) -> None:
    await browser.login(tenant_a.member)
    assert (await browser.client.get(f"/o/{tenant_a.slug}/sso")).status_code == 403
    dashboard = await browser.client.get(f"/o/{tenant_a.slug}/")
    assert f'href="/o/{tenant_a.slug}/sso"' not in dashboard.text


async def test_the_start_refuses_an_open_redirect(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, client: httpx.AsyncClient
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a)
    browser = Browser(client)
    start = f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?next=https://evil.test/"
    back = await oidc_peer.log_in(await _to_provider(browser, start), tenant_a.member.email)
    response = await client.get(_local(back))
    assert response.status_code == 303
    assert response.headers["location"] == f"/o/{tenant_a.slug}/"


def _forged(peer: OidcPeer, nonce: str, client_id: str, attack: str) -> str:
    """An ID token for `attack`, signed as the attack needs (the provider's own key, a
    stranger's, none, or HMAC with the provider's public key)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": peer.issuer,
        "sub": "forged",
        "aud": client_id,
        "exp": now + 300,
        "iat": now,
        "nonce": nonce,
    }
    jwk = peer.signing_key()
    key = RSAKey.import_key(jwk)
    match attack:
        case "oidc.issuer":
            claims["iss"] = "https://evil.test"
        case "oidc.audience":
            claims["aud"] = "another-client"
        case "oidc.expired":
            claims.update(exp=now - 3600, iat=now - 3900)
        case "oidc.nonce":
            claims["nonce"] = "a-nonce-of-another-sign-in"
        case "oidc.key":
            key = RSAKey.generate_key(2048, private=True)
            jwk = {**jwk, "kid": "not-published"}
        case "oidc.signature":
            key = RSAKey.generate_key(2048, private=True)
    if attack == "oidc.algorithm":
        header = _b64(json.dumps({"alg": "HS256", "kid": jwk["kid"]}).encode())
        payload = _b64(json.dumps(claims).encode())
        public = RSAKey.import_key(peer.signing_key()).as_pem(private=False)
        mac = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(mac)}"
    return jwt.encode({"alg": "RS256", "kid": jwk["kid"]}, claims, key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize(
    "attack",
    [
        "oidc.issuer",
        "oidc.audience",
        "oidc.expired",
        "oidc.nonce",
        "oidc.key",
        "oidc.signature",
        "oidc.algorithm",
    ],
)
async def test_each_forged_token_is_refused_with_its_reason_in_the_audit_log(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser, attack: str
) -> None:
    connection_id = await _connection(oidc_peer, tenant_a)
    client_id = (await get_connection(tenant_a.owner_ctx, connection_id)).settings["client_id"]
    authorization = await _to_provider(browser, f"/sso/{tenant_a.slug}/oidc/{connection_id}/start")
    nonce = parse_qs(urlsplit(authorization).query)["nonce"][0]
    back = await oidc_peer.log_in(authorization, tenant_a.member.email)
    oidc_peer.replace_next_id_token(_forged(oidc_peer, nonce, client_id, attack))
    response = await browser.client.get(_local(back))
    assert response.status_code == 400
    assert attack in response.text
    assert "not signed in" in response.text
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT details FROM audit_event WHERE tenant_id = $1 AND action = 'sso.refused' "
            "AND target_id = $2 ORDER BY occurred_at DESC LIMIT 1",
            tenant_a.id,
            connection_id,
        )
    details = rows[0]["details"]
    details = json.loads(details) if isinstance(details, str) else details
    assert details["reason"] == attack
    assert details["detail"]


async def test_a_callback_no_sign_in_of_this_browser_explains_is_not_audited(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, app: Litestar
) -> None:
    """Anyone may open the callback URL: without a flow in that browser it is refused, but
    it writes nothing into the organization's audit log."""
    connection_id = await _connection(oidc_peer, tenant_a)
    before = await audit_actions(tenant_a.id)
    async with browser_on(app) as stranger:
        for query in ("", "?state=forged&code=x", "?error=access_denied"):
            response = await stranger.client.get(
                f"/sso/{tenant_a.slug}/oidc/{connection_id}/callback{query}"
            )
            assert response.status_code == 400
            assert "oidc.state" in response.text
    assert await audit_actions(tenant_a.id) == before
