"""OpenID Connect against providers that misbehave or are not providers at all: where the
server may send requests (SSRF), how much it reads, how long it trusts published keys, and
provider data of the wrong shape. The keys and tokens come from the real provider of
tests/peers/oidc; a provider that answers what no honest one would is an in-process httpx
transport."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import uuid4

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from core.errors import Invalid
from core.settings import get_settings
from sso.connections import IdentityConnection, connection_for_sign_in
from sso.errors import SignInRefused
from sso.oidc import (
    JWKS_LIFETIME,
    MAX_RESPONSE_BYTES,
    OidcConnectionForm,
    OidcSettings,
    begin,
    discover,
    finish,
    map_identity,
    provider_url_allowed,
    save_connection,
    validate_id_token,
)
from tests.conftest import TenantFixture
from tests.sso.conftest import OidcPeer

REDIRECT = "http://127.0.0.1:8000/sso/test/oidc/callback"
FAKE_ISSUER = "http://127.0.0.1:9"


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's settings as in production."""
    monkeypatch.setenv("JALON_ENV", "production")
    monkeypatch.setenv("JALON_SECRET_KEY", "p" * 64)
    monkeypatch.setenv("JALON_SMTP_URL", "smtp://127.0.0.1:25")
    # production needs one; nothing connects to it here (the embedded default has none)
    monkeypatch.setenv(
        "DATABASE_URL", os.environ.get("DATABASE_URL") or "postgresql://127.0.0.1/unused"
    )
    monkeypatch.delenv("JALON_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", raising=False)
    get_settings.cache_clear()
    assert get_settings().environment == "production"
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _provider(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def _discovery(**changes: Any) -> dict[str, Any]:
    document = {
        "issuer": FAKE_ISSUER,
        "authorization_endpoint": f"{FAKE_ISSUER}/auth",
        "token_endpoint": f"{FAKE_ISSUER}/token",
        "jwks_uri": f"{FAKE_ISSUER}/jwks",
        "userinfo_endpoint": f"{FAKE_ISSUER}/me",
    }
    document.update(changes)
    return document


# --- where requests go, and how much is read ------------------------------------------------


def test_in_production_provider_urls_are_https_and_public(production: None) -> None:
    for url in (
        "http://idp.example.org/token",
        "http://127.0.0.1:8080/token",
        "https://127.0.0.1/token",
        "https://localhost/token",
        "https://10.1.2.3/token",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/token",
        "https://user:pass@idp.example.org/token",
    ):
        assert not provider_url_allowed(url), url
    assert provider_url_allowed("https://idp.example.org/token")


def test_outside_production_plain_http_reaches_this_machine_only() -> None:
    assert provider_url_allowed("http://127.0.0.1:8080/token")
    assert not provider_url_allowed("http://idp.example.org/token")
    assert not provider_url_allowed("file:///etc/passwd")


@pytest.mark.parametrize(
    "endpoint", ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"]
)
async def test_a_discovered_endpoint_the_server_may_not_call_is_refused(endpoint: str) -> None:
    document = _discovery(**{endpoint: "http://169.254.169.254/latest/meta-data"})
    async with _provider(lambda request: httpx.Response(200, json=document)) as http:
        with pytest.raises(Invalid) as error:
            await discover(FAKE_ISSUER, http)
    assert error.value.field == "issuer"
    assert error.value.params["endpoint"] == endpoint


async def test_a_discovery_document_over_the_size_limit_is_not_read() -> None:
    padding = "x" * (MAX_RESPONSE_BYTES + 1)
    document = _discovery(padding=padding)
    async with _provider(lambda request: httpx.Response(200, json=document)) as http:
        with pytest.raises(Invalid) as error:
            await discover(FAKE_ISSUER, http)
    assert "could not be read" in error.value.message


async def test_the_issuer_a_discovery_document_names_is_echoed_trimmed() -> None:
    document = _discovery(issuer="https://evil.example/" + "\x1b[31m" + "a" * 5000)
    async with _provider(lambda request: httpx.Response(200, json=document)) as http:
        with pytest.raises(Invalid) as error:
            await discover(FAKE_ISSUER, http)
    found = error.value.params["found"]
    assert len(found) <= 200
    assert "\x1b" not in found


async def test_the_token_endpoints_error_description_is_echoed_trimmed(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    client_id, secret = oidc_peer.register_client(REDIRECT)
    connection_id = await save_connection(
        tenant_a.owner_ctx,
        OidcConnectionForm(
            name="Peer", issuer=oidc_peer.issuer, client_id=client_id, client_secret=secret
        ),
    )
    signing_in = await connection_for_sign_in(tenant_a.id, connection_id, allow_disabled=True)
    url, flow = begin(signing_in.connection, REDIRECT, "/o/")
    back = await oidc_peer.log_in(url, f"person-{uuid4().hex[:8]}@alpha.test")
    params = dict(parse_qsl(urlsplit(back).query))
    refusal = {"error": "invalid_grant", "error_description": "<script>" + "b" * 100_000}
    async with _provider(lambda request: httpx.Response(400, json=refusal)) as http:
        with pytest.raises(SignInRefused) as refused:
            await finish(signing_in, flow, params, http=http)
    assert refused.value.reason == "oidc.token"
    assert len(refused.value.detail) < 600


# --- the provider's keys ---------------------------------------------------------------------


def _token(key: dict[str, Any], issuer: str, at: datetime, **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": "someone",
        "aud": "jalon",
        "exp": int(at.timestamp()) + 300,
        "iat": int(at.timestamp()),
        "nonce": "the-nonce",
        **changes,
    }
    return jwt.encode({"alg": "RS256", "kid": key["kid"]}, claims, RSAKey.import_key(key))


async def _validate(
    peer: OidcPeer, token: str, at: datetime, http: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    provider = await discover(peer.issuer)
    return await validate_id_token(
        token,
        issuer=peer.issuer,
        client_id="jalon",
        nonce="the-nonce",
        jwks_uri=provider.jwks_uri,
        now=at,
        http=http,
    )


async def test_a_key_the_provider_withdrew_stops_being_trusted_once_the_cache_expires(
    oidc_peer: OidcPeer,
) -> None:
    old_key = oidc_peer.signing_key()
    start = datetime.now(UTC)
    await _validate(oidc_peer, _token(old_key, oidc_peer.issuer, start), start)  # keys cached
    oidc_peer.rotate_keys()
    oidc_peer.withdraw_old_keys()
    within = start + timedelta(seconds=JWKS_LIFETIME / 2)
    await _validate(oidc_peer, _token(old_key, oidc_peer.issuer, within), within)
    after = start + timedelta(seconds=JWKS_LIFETIME + 1)
    with pytest.raises(SignInRefused) as refused:
        await _validate(oidc_peer, _token(old_key, oidc_peer.issuer, after), after)
    assert refused.value.reason == "oidc.key"


async def test_unknown_kids_read_the_keys_again_at_most_once_a_minute(
    oidc_peer: OidcPeer,
) -> None:
    key = oidc_peer.signing_key()
    stranger = {**RSAKey.generate_key(2048, private=True).as_dict(private=True), "kid": "nope"}
    fetched: list[str] = []

    async def count(request: httpx.Request) -> None:
        fetched.append(request.url.path)

    now = datetime.now(UTC)
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
        await _validate(oidc_peer, _token(key, oidc_peer.issuer, now), now, http)
        for _ in range(5):
            with pytest.raises(SignInRefused):
                await _validate(oidc_peer, _token(stranger, oidc_peer.issuer, now), now, http)
    jwks = [path for path in fetched if "well-known" not in path]
    assert len(jwks) == 2  # the first read, and one more for the unknown kid


# --- provider data of the wrong shape --------------------------------------------------------


async def test_a_nonce_that_is_not_ascii_is_refused_as_a_wrong_nonce(oidc_peer: OidcPeer) -> None:
    now = datetime.now(UTC)
    token = _token(oidc_peer.signing_key(), oidc_peer.issuer, now, nonce="nönce-é")
    with pytest.raises(SignInRefused) as refused:
        await _validate(oidc_peer, token, now)
    assert refused.value.reason == "oidc.nonce"


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("exp", float("nan"), "oidc.expired"),
        ("exp", float("inf"), "oidc.expired"),
        ("exp", "99999999999", "oidc.expired"),
        ("exp", True, "oidc.expired"),
        ("iat", float("nan"), "oidc.issued_at"),
        ("iat", -(10**400), "oidc.issued_at"),
        ("iat", "1", "oidc.issued_at"),
    ],
)
async def test_times_that_are_not_finite_numbers_are_refused(
    oidc_peer: OidcPeer, claim: str, value: Any, reason: str
) -> None:
    now = datetime.now(UTC)
    token = _token(oidc_peer.signing_key(), oidc_peer.issuer, now, **{claim: value})
    with pytest.raises(SignInRefused) as refused:
        await _validate(oidc_peer, token, now)
    assert refused.value.reason == reason


@pytest.mark.parametrize("groups", [{"admins": True}, 42, True, None])
def test_a_groups_claim_that_is_not_a_list_names_no_group(groups: Any) -> None:
    now = datetime.now(UTC)
    connection = IdentityConnection(
        id=uuid4(),
        tenant_id=uuid4(),
        protocol="oidc",
        name="Peer",
        enabled=True,
        settings={"issuer": FAKE_ISSUER, "client_id": "jalon"},
        has_secret=True,
        role_mapping={"admins": "admin"},
        default_role="member",
        external_id_claim="",
        allow_idp_initiated=False,
        created_at=now,
        updated_at=now,
    )
    claims = {"sub": "someone", "email": "a@alpha.test", "groups": groups}
    identity = map_identity(connection, OidcSettings.of(connection), json.loads(json.dumps(claims)))
    assert identity.groups == ()
