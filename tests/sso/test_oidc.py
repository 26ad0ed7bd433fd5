"""OpenID Connect against a real provider (tests/peers/oidc): the happy path, key rotation,
and every attack the validation must refuse, each with its reason code. Tokens the provider
would never make are forged here (its own key, or another) and slipped into its token
response, so they reach the code through the real exchange."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import uuid4

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from core.errors import Invalid
from sso.connections import SignInConnection, connection_for_sign_in, get_connection
from sso.errors import SignInRefused
from sso.identity import ProvenIdentity
from sso.oidc import (
    OidcConnectionForm,
    OidcFlow,
    begin,
    finish,
    remember,
    save_connection,
    take_flow,
)
from tests.conftest import TenantFixture
from tests.sso.conftest import OidcPeer

REDIRECT = "http://127.0.0.1:8000/sso/test/oidc/callback"


async def _connection(peer: OidcPeer, tenant: TenantFixture, **form: Any) -> SignInConnection:
    client_id, secret = peer.register_client(REDIRECT)
    fields = {
        "name": "Peer",
        "issuer": peer.issuer,
        "client_id": client_id,
        "client_secret": secret,
        "scopes": "openid email profile groups",
        "role_mapping": {"Jalon admins": "admin"},
        **form,
    }
    connection_id = await save_connection(tenant.owner_ctx, OidcConnectionForm(**fields))
    return await connection_for_sign_in(tenant.id, connection_id, allow_disabled=True)


async def _authorize(
    peer: OidcPeer, signing_in: SignInConnection, login: str
) -> tuple[OidcFlow, dict[str, str]]:
    url, flow = begin(signing_in.connection, REDIRECT, "/o/")
    back = await peer.log_in(url, login)
    assert back.startswith(REDIRECT)
    return flow, dict(parse_qsl(urlsplit(back).query))


async def _sign_in(peer: OidcPeer, signing_in: SignInConnection, login: str) -> ProvenIdentity:
    flow, params = await _authorize(peer, signing_in, login)
    return await finish(signing_in, flow, params)


def _login() -> str:
    return f"person-{uuid4().hex[:8]}@alpha.test"


def _claims(
    peer: OidcPeer, signing_in: SignInConnection, flow: OidcFlow, **changes: Any
) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": peer.issuer,
        "sub": "forged-subject",
        "aud": signing_in.connection.settings["client_id"],
        "exp": now + 300,
        "iat": now,
        "nonce": flow.nonce,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims: dict[str, Any], jwk: dict[str, Any], alg: str = "RS256") -> str:
    key = RSAKey.import_key(jwk)
    return jwt.encode({"alg": alg, "kid": jwk["kid"]}, claims, key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


async def _refused_with(
    peer: OidcPeer, signing_in: SignInConnection, token_for: Any, reason: str
) -> SignInRefused:
    """Authorize for real, have the provider hand over `token_for(flow)` as the ID token,
    and check that the sign-in is refused for `reason`."""
    flow, params = await _authorize(peer, signing_in, _login())
    peer.replace_next_id_token(token_for(flow))
    with pytest.raises(SignInRefused) as refused:
        await finish(signing_in, flow, params)
    assert refused.value.reason == reason, refused.value
    return refused.value


# --- the happy path ------------------------------------------------------------------------


async def test_a_person_signs_in_and_their_claims_are_mapped(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    login = _login()
    oidc_peer.set_claims(
        login, {"given_name": "Ada", "family_name": "Lovelace", "groups": ["Jalon admins"]}
    )
    identity = await _sign_in(oidc_peer, signing_in, login)
    assert identity.tenant_id == tenant_a.id
    assert identity.connection_id == signing_in.connection.id
    assert (identity.subject, identity.email, identity.email_verified) == (login, login, True)
    assert (identity.given_name, identity.family_name) == ("Ada", "Lovelace")
    assert identity.groups == ("Jalon admins",)
    assert signing_in.connection.role_for(identity.groups) == "admin"
    assert identity.claims["iss"] == oidc_peer.issuer


async def test_discovery_keeps_the_providers_endpoints(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    provider = signing_in.connection.settings["provider"]
    assert provider["token_endpoint"] == f"{oidc_peer.issuer}/token"
    assert provider["jwks_uri"] == f"{oidc_peer.issuer}/jwks"
    assert signing_in.connection.settings["scopes"] == ["openid", "email", "profile", "groups"]


async def test_an_issuer_that_does_not_answer_as_one_is_refused(tenant_a: TenantFixture) -> None:
    form = OidcConnectionForm(
        name="Nowhere", issuer="http://127.0.0.1:9/", client_id="x", client_secret="y"
    )
    with pytest.raises(Invalid) as error:
        await save_connection(tenant_a.owner_ctx, form)
    assert error.value.field == "issuer"
    with pytest.raises(Invalid) as error:
        await save_connection(tenant_a.owner_ctx, replace(form, issuer="ftp://example.org"))
    assert error.value.field == "issuer"


async def test_a_mistyped_issuer_is_refused_with_the_one_the_provider_names(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    form = OidcConnectionForm(
        name="Peer", issuer=oidc_peer.issuer + "/", client_id="x", client_secret="y"
    )
    with pytest.raises(Invalid) as error:
        await save_connection(tenant_a.owner_ctx, form)
    assert error.value.params["found"] == oidc_peer.issuer


async def test_the_providers_new_signing_key_is_fetched_once_it_rotates(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    before = await _sign_in(oidc_peer, signing_in, _login())  # the old keys are now cached
    new_kid = oidc_peer.rotate_keys()
    assert oidc_peer.signing_key()["kid"] == new_kid
    after = await _sign_in(oidc_peer, signing_in, _login())
    assert before.email != after.email


async def test_a_connection_keeps_the_secret_out_of_its_settings(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    connection = await get_connection(tenant_a.owner_ctx, signing_in.connection.id)
    assert signing_in.secret
    assert signing_in.secret not in json.dumps(connection.settings)


# --- attacks ----------------------------------------------------------------------------------


async def test_a_token_from_another_issuer_is_refused(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    key = oidc_peer.signing_key()
    await _refused_with(
        oidc_peer,
        signing_in,
        lambda flow: _signed(_claims(oidc_peer, signing_in, flow, iss="https://evil.test"), key),
        "oidc.issuer",
    )


async def test_a_token_for_another_client_is_refused(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    key = oidc_peer.signing_key()
    await _refused_with(
        oidc_peer,
        signing_in,
        lambda flow: _signed(_claims(oidc_peer, signing_in, flow, aud="another-client"), key),
        "oidc.audience",
    )


async def test_a_token_for_several_audiences_needs_us_as_its_authorized_party(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    key = oidc_peer.signing_key()
    ours = signing_in.connection.settings["client_id"]
    await _refused_with(
        oidc_peer,
        signing_in,
        lambda flow: _signed(
            _claims(oidc_peer, signing_in, flow, aud=[ours, "another-client"]), key
        ),
        "oidc.azp",
    )


async def test_an_expired_token_is_refused(oidc_peer: OidcPeer, tenant_a: TenantFixture) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    key = oidc_peer.signing_key()
    past = int(time.time()) - 3600
    refused = await _refused_with(
        oidc_peer,
        signing_in,
        lambda flow: _signed(_claims(oidc_peer, signing_in, flow, exp=past, iat=past - 300), key),
        "oidc.expired",
    )
    assert "expired" in refused.detail


async def test_a_token_expired_within_the_clock_skew_is_accepted(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    key = oidc_peer.signing_key()
    flow, params = await _authorize(oidc_peer, signing_in, _login())
    just_expired = int(time.time()) - 30
    forged = _claims(oidc_peer, signing_in, flow, exp=just_expired, email="late@alpha.test")
    oidc_peer.replace_next_id_token(_signed(forged, key))
    with pytest.raises(SignInRefused) as refused:
        await finish(signing_in, flow, params)
    # Accepted by the ID-token checks: what stops it next is userinfo's subject.
    assert refused.value.reason == "oidc.userinfo"


async def test_a_token_with_a_tampered_payload_fails_its_signature(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    key = oidc_peer.signing_key()

    def tampered(flow: OidcFlow) -> str:
        header, _, signature = _signed(_claims(oidc_peer, signing_in, flow), key).split(".")
        payload = _b64(json.dumps(_claims(oidc_peer, signing_in, flow, sub="admin")).encode())
        return f"{header}.{payload}.{signature}"

    await _refused_with(oidc_peer, signing_in, tampered, "oidc.signature")


async def test_an_unsigned_token_is_refused(oidc_peer: OidcPeer, tenant_a: TenantFixture) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)

    def unsigned(flow: OidcFlow) -> str:
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(_claims(oidc_peer, signing_in, flow)).encode())
        return f"{header}.{payload}."

    await _refused_with(oidc_peer, signing_in, unsigned, "oidc.algorithm")


async def test_a_token_signed_with_hs256_and_the_public_key_is_refused(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    jwk = oidc_peer.signing_key()
    public_pem = RSAKey.import_key(jwk).as_pem(private=False)

    def confused(flow: OidcFlow) -> str:
        header = _b64(json.dumps({"alg": "HS256", "kid": jwk["kid"]}).encode())
        payload = _b64(json.dumps(_claims(oidc_peer, signing_in, flow)).encode())
        mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(mac)}"

    await _refused_with(oidc_peer, signing_in, confused, "oidc.algorithm")


async def test_a_token_signed_with_a_key_the_provider_does_not_publish_is_refused(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "not-published"}, private=True)
    jwk = {**stranger.as_dict(private=True), "kid": "not-published"}
    await _refused_with(
        oidc_peer,
        signing_in,
        lambda flow: _signed(_claims(oidc_peer, signing_in, flow), jwk),
        "oidc.key",
    )


async def test_a_stranger_key_using_the_providers_kid_fails_its_signature(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    real_kid = oidc_peer.signing_key()["kid"]
    stranger = RSAKey.generate_key(2048, private=True)
    jwk = {**stranger.as_dict(private=True), "kid": real_kid}
    await _refused_with(
        oidc_peer,
        signing_in,
        lambda flow: _signed(_claims(oidc_peer, signing_in, flow), jwk),
        "oidc.signature",
    )


async def test_a_replayed_nonce_is_refused(oidc_peer: OidcPeer, tenant_a: TenantFixture) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    key = oidc_peer.signing_key()
    earlier, _ = await _authorize(oidc_peer, signing_in, _login())
    # A token minted for an earlier sign-in (its nonce), replayed into a new one.
    await _refused_with(
        oidc_peer,
        signing_in,
        lambda flow: _signed(_claims(oidc_peer, signing_in, flow, nonce=earlier.nonce), key),
        "oidc.nonce",
    )


async def test_a_state_this_browser_did_not_start_is_refused(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    session: dict[str, Any] = {}
    flow, params = await _authorize(oidc_peer, signing_in, _login())
    remember(session, flow)
    assert take_flow(session, "a-state-from-elsewhere") is None
    with pytest.raises(SignInRefused) as refused:
        await finish(signing_in, take_flow(session, "a-state-from-elsewhere"), params)
    assert refused.value.reason == "oidc.state"
    # The flow itself is used once: a replayed callback finds nothing.
    assert take_flow(session, flow.state) == flow
    assert take_flow(session, flow.state) is None


async def test_a_flow_that_lost_its_pkce_verifier_is_refused(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    flow, params = await _authorize(oidc_peer, signing_in, _login())
    with pytest.raises(SignInRefused) as refused:
        await finish(signing_in, replace(flow, code_verifier=""), params)
    assert refused.value.reason == "oidc.pkce"


async def test_a_code_injected_into_another_sign_in_fails_at_the_provider(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    """The attacker's code, delivered to the victim's callback with the victim's state: the
    victim's PKCE verifier does not match the attacker's challenge, so the provider refuses."""
    signing_in = await _connection(oidc_peer, tenant_a)
    _, attackers = await _authorize(oidc_peer, signing_in, "attacker@evil.test")
    victims_flow, victims = await _authorize(oidc_peer, signing_in, _login())
    injected = {**victims, "code": attackers["code"]}
    with pytest.raises(SignInRefused) as refused:
        await finish(signing_in, victims_flow, injected)
    assert refused.value.reason == "oidc.token"
    assert "invalid_grant" in refused.value.detail


async def test_an_answer_naming_another_issuer_is_refused(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    flow, params = await _authorize(oidc_peer, signing_in, _login())
    assert params["iss"] == oidc_peer.issuer  # RFC 9207, which the provider sends
    with pytest.raises(SignInRefused) as refused:
        await finish(signing_in, flow, {**params, "iss": "https://evil.test"})
    assert refused.value.reason == "oidc.issuer"


async def test_an_expired_flow_is_refused(oidc_peer: OidcPeer, tenant_a: TenantFixture) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    flow, params = await _authorize(oidc_peer, signing_in, _login())
    with pytest.raises(SignInRefused) as refused:
        await finish(signing_in, flow, params, now=flow.expires_at.replace(year=2100))
    assert refused.value.reason == "oidc.expired_flow"


async def test_a_flow_for_another_connection_is_refused(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    ours = await _connection(oidc_peer, tenant_a)
    theirs = await _connection(oidc_peer, tenant_b)
    flow, params = await _authorize(oidc_peer, theirs, _login())
    with pytest.raises(SignInRefused) as refused:
        await finish(ours, flow, params)
    assert refused.value.reason == "oidc.state"


async def test_an_error_from_the_provider_is_refused_with_its_words(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    signing_in = await _connection(oidc_peer, tenant_a)
    _, flow = begin(signing_in.connection, REDIRECT, "/o/")
    answer = {"error": "access_denied", "error_description": "User said no", "state": flow.state}
    with pytest.raises(SignInRefused) as refused:
        await finish(signing_in, flow, answer)
    assert refused.value.reason == "oidc.provider_error"
    assert "access_denied" in refused.value.detail


async def test_email_verified_comes_from_the_provider_or_the_connections_trust(
    oidc_peer: OidcPeer, tenant_a: TenantFixture
) -> None:
    unverified = _login()
    oidc_peer.set_claims(unverified, {"email_verified": False})
    silent = _login()
    oidc_peer.set_claims(silent, {"email_verified": None})
    signing_in = await _connection(oidc_peer, tenant_a)
    assert not (await _sign_in(oidc_peer, signing_in, unverified)).email_verified
    assert not (await _sign_in(oidc_peer, signing_in, silent)).email_verified
    trusting = await _connection(oidc_peer, tenant_a, email_verified_trusted=True)
    assert (await _sign_in(oidc_peer, trusting, silent)).email_verified
    assert not (await _sign_in(oidc_peer, trusting, unverified)).email_verified
