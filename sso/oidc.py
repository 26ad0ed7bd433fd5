"""OpenID Connect sign-in: discovery, the authorization code flow with PKCE (S256), state and
nonce, the token exchange, ID-token validation, userinfo and claim mapping.

What the protocol proves is handed over as a `ProvenIdentity`; every failed check raises
`SignInRefused` with a precise reason code (`oidc.issuer`, `oidc.audience`, `oidc.nonce`…),
which the sign-in routes audit and show. The checks follow OpenID Connect Core 3.1.3.7:

- the signature, against a key of the provider's JWKS named by the token's `kid` (the JWKS is
  fetched again, once, when the `kid` is unknown: the provider rotated its keys); only the
  asymmetric algorithms of `ALGORITHMS` are accepted, so `alg: none` and a token "signed"
  with HS256 using the public key as its secret are refused before any key is used;
- `iss` is the connection's issuer, `aud` holds the client id, `azp` is the client id when
  several audiences are named; `exp` and `iat` within `CLOCK_SKEW`; `nonce` is the flow's.

Outgoing HTTP uses httpx; a caller may pass its own `httpx.AsyncClient` (the benchmark gives
one with an in-process transport). Crypto is joserfc (Authlib's JOSE) and Authlib's PKCE.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeGuard
from urllib.parse import quote, urlencode, urlsplit
from uuid import UUID

import certifi
import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from core.errors import Invalid
from core.settings import get_settings
from core.validation import clean_text
from sso.connections import (
    ConnectionFields,
    IdentityConnection,
    SignInConnection,
    create_connection,
    update_connection,
)
from sso.errors import SignInRefused
from sso.identity import ProvenIdentity
from tenants.context import TenantContext
from tenants.permissions import Permission
from tenants.webhooks.destinations import (
    RefusedDestination,
    check_destination,
    clean_url,
    private_networks_allowed,
)

#: Asymmetric signature algorithms only: a symmetric one (HS256) would let anyone holding the
#: public key sign, and `none` signs nothing.
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
#: Tolerated difference between our clock and the provider's.
CLOCK_SKEW = 60
#: How long a started sign-in may wait for its callback.
FLOW_LIFETIME = timedelta(minutes=10)
DEFAULT_SCOPES = ("openid", "email", "profile")
#: Session key holding the flows started in this browser, by state.
SESSION_KEY = "oidc_flows"
#: At most this many unfinished flows are kept per session (the oldest go first).
MAX_FLOWS = 5
_HTTP_TIMEOUT = httpx.Timeout(10.0)
#: A provider's answer (discovery, token, keys, userinfo) is read up to this size…
MAX_RESPONSE_BYTES = 1_000_000
#: …and within this time overall (a slow drip of bytes does not hold a worker longer).
REQUEST_DEADLINE = 15.0
#: Remote words (an issuer found, an error description) are kept to this length.
ECHO_LENGTH = 200
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _short(value: object) -> str:
    """Remote text as a refusal or a form error may show it: printable, and short."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text if len(text) <= ECHO_LENGTH else text[: ECHO_LENGTH - 1] + "…"


def provider_url_allowed(url: str) -> bool:
    """Whether the server may call `url` of a provider: https (plain http only to this
    machine, outside production), no credentials, and no private, loopback or link-local
    address unless private networks are allowed (never in production unless told); the same
    rules as SAML metadata and webhooks. The host name is resolved again before each call."""
    try:
        url = clean_url(url, allow_private=private_networks_allowed())
    except Invalid:
        return False
    parts = urlsplit(url)
    local = parts.hostname in _LOOPBACK
    return parts.scheme == "https" or (local and get_settings().environment != "production")


class _Unreadable(Exception):
    """A provider's answer that could not be read: unreachable, refused destination, too
    large, too slow, or not JSON."""


async def _call(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    """Call a provider: its status and JSON body (None when the body is not JSON), read
    within `MAX_RESPONSE_BYTES` and `REQUEST_DEADLINE`; `_Unreadable` otherwise."""
    if not provider_url_allowed(url):
        raise _Unreadable(f"{_short(url)} is not an address this server may call")
    try:
        if not private_networks_allowed():
            await check_destination(url)
        async with asyncio.timeout(REQUEST_DEADLINE):
            async with client.stream(method, url, **kwargs) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise _Unreadable(f"the answer of {_short(url)} is too large")
                    chunks.append(chunk)
                status = response.status_code
    except RefusedDestination:
        raise _Unreadable(f"{_short(url)} leads to a private network") from None
    except (httpx.HTTPError, TimeoutError) as error:
        raise _Unreadable(f"{_short(url)} could not be read: {_short(error)}") from None
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        body = None
    return status, body


@dataclass(frozen=True)
class ProviderMetadata:
    """What discovery told us of a provider, cached in the connection's settings."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    #: client_secret_basic or client_secret_post
    token_endpoint_auth_method: str


@dataclass(frozen=True)
class OidcSettings:
    """An OIDC connection's settings (`IdentityConnection.settings`), read."""

    issuer: str
    client_id: str
    scopes: tuple[str, ...]
    provider: ProviderMetadata
    #: the claim that lists the person's groups (mapped to roles)
    groups_claim: str = "groups"
    #: the provider sends no `email_verified` but only gives verified addresses (Entra ID)
    email_verified_trusted: bool = False

    @classmethod
    def of(cls, connection: IdentityConnection) -> OidcSettings:
        raw = connection.settings
        provider = raw.get("provider") or {}
        return cls(
            issuer=str(raw.get("issuer", "")),
            client_id=str(raw.get("client_id", "")),
            scopes=tuple(raw.get("scopes") or DEFAULT_SCOPES),
            provider=ProviderMetadata(
                issuer=str(provider.get("issuer", raw.get("issuer", ""))),
                authorization_endpoint=str(provider.get("authorization_endpoint", "")),
                token_endpoint=str(provider.get("token_endpoint", "")),
                jwks_uri=str(provider.get("jwks_uri", "")),
                userinfo_endpoint=provider.get("userinfo_endpoint") or None,
                token_endpoint_auth_method=str(
                    provider.get("token_endpoint_auth_method", "client_secret_basic")
                ),
            ),
            groups_claim=str(raw.get("groups_claim") or "groups"),
            email_verified_trusted=bool(raw.get("email_verified_trusted", False)),
        )

    def as_settings(self) -> dict[str, Any]:
        """The JSON kept in `sso_connection.settings`."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "scopes": list(self.scopes),
            "groups_claim": self.groups_claim,
            "email_verified_trusted": self.email_verified_trusted,
            "provider": {
                "issuer": self.provider.issuer,
                "authorization_endpoint": self.provider.authorization_endpoint,
                "token_endpoint": self.provider.token_endpoint,
                "jwks_uri": self.provider.jwks_uri,
                "userinfo_endpoint": self.provider.userinfo_endpoint,
                "token_endpoint_auth_method": self.provider.token_endpoint_auth_method,
            },
        }


@dataclass(frozen=True)
class OidcFlow:
    """One started sign-in, kept in the browser's server-side session and consumed once by
    its callback: this binds the flow to the browser that started it."""

    state: str
    nonce: str
    code_verifier: str
    tenant_id: UUID
    connection_id: UUID
    redirect_uri: str
    next_path: str
    #: "test this connection": show the claims instead of signing in
    test: bool
    expires_at: datetime

    def to_session(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "tenant_id": str(self.tenant_id),
            "connection_id": str(self.connection_id),
            "redirect_uri": self.redirect_uri,
            "next": self.next_path,
            "test": self.test,
            "expires_at": self.expires_at.isoformat(),
        }

    @classmethod
    def from_session(cls, data: Mapping[str, Any]) -> OidcFlow:
        return cls(
            state=str(data["state"]),
            nonce=str(data["nonce"]),
            code_verifier=str(data.get("code_verifier") or ""),
            tenant_id=UUID(str(data["tenant_id"])),
            connection_id=UUID(str(data["connection_id"])),
            redirect_uri=str(data["redirect_uri"]),
            next_path=str(data.get("next") or ""),
            test=bool(data.get("test")),
            expires_at=datetime.fromisoformat(str(data["expires_at"])),
        )


# --- discovery -------------------------------------------------------------------------------


def clean_issuer(value: str | None) -> str:
    """An issuer URL as an admin typed it: https (plain http only for a provider on this
    machine, outside production), no query or fragment. `Invalid` otherwise."""
    issuer = (value or "").strip()
    parts = urlsplit(issuer)
    allowed = provider_url_allowed(issuer)
    if not allowed or not parts.hostname or parts.query or parts.fragment or len(issuer) > 500:
        raise Invalid("Enter the provider's issuer URL, starting with https://.", field="issuer")
    return issuer


async def discover(issuer: str, http: httpx.AsyncClient | None = None) -> ProviderMetadata:
    """Read the provider's `/.well-known/openid-configuration`; `Invalid` (on the issuer
    field) when it cannot be read or does not describe `issuer` (OIDC Discovery 4.3)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with _Client(http) as client:
            status, document = await _call(client, "GET", url)
    except _Unreadable:
        document = None
    else:
        document = document if status == 200 else None
    if not isinstance(document, dict):
        raise Invalid(
            "The provider's discovery document ({url}) could not be read.",
            field="issuer",
            url=_short(url),
        )
    if document.get("issuer") != issuer:
        raise Invalid(
            "The discovery document names another issuer ({found}): enter exactly that one.",
            field="issuer",
            found=_short(document.get("issuer")),
        )
    endpoints = {
        name: document.get(name)
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
    }
    if not all(isinstance(value, str) and value for value in endpoints.values()):
        raise Invalid(
            "The discovery document lacks the authorization, token or keys endpoint.",
            field="issuer",
        )
    challenges = document.get("code_challenge_methods_supported")
    if challenges is not None and "S256" not in challenges:
        raise Invalid("The provider does not support PKCE with S256.", field="issuer")
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = next((m for m in ("client_secret_basic", "client_secret_post") if m in methods), None)
    if method is None:
        raise Invalid(
            "The provider accepts no client secret at its token endpoint.", field="issuer"
        )
    userinfo = document.get("userinfo_endpoint")
    for name, value in (*endpoints.items(), ("userinfo_endpoint", userinfo)):
        if isinstance(value, str) and value and not provider_url_allowed(value):
            raise Invalid(
                "The provider's {endpoint} ({url}) is not an address this server may call.",
                field="issuer",
                endpoint=name,
                url=_short(value),
            )
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=str(endpoints["authorization_endpoint"]),
        token_endpoint=str(endpoints["token_endpoint"]),
        jwks_uri=str(endpoints["jwks_uri"]),
        userinfo_endpoint=userinfo if isinstance(userinfo, str) and userinfo else None,
        token_endpoint_auth_method=method,
    )


@dataclass(frozen=True)
class OidcConnectionForm:
    """What an admin enters for an OIDC connection. `client_secret` None keeps the stored one
    (the console never shows it back)."""

    name: str
    issuer: str
    client_id: str
    client_secret: str | None = None
    scopes: str = " ".join(DEFAULT_SCOPES)
    role_mapping: dict[str, str] = field(default_factory=dict)
    default_role: str = "member"
    external_id_claim: str = ""
    groups_claim: str = "groups"
    email_verified_trusted: bool = False


def _scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(text.replace(",", " ").split()))
    if "openid" not in scopes:
        scopes = ("openid", *scopes)
    if len(scopes) > 30 or any(len(scope) > 100 or not scope.isprintable() for scope in scopes):
        raise Invalid("Enter the scopes separated by spaces.", field="scopes")
    return scopes


async def save_connection(
    ctx: TenantContext,
    form: OidcConnectionForm,
    connection_id: UUID | str | None = None,
    http: httpx.AsyncClient | None = None,
) -> UUID:
    """Create (or, given `connection_id`, update) an OIDC connection after reading the
    provider's discovery document, whose endpoints are kept with it; its id. `Invalid`
    naming the field for a wrong entry or an issuer that does not answer as one."""
    ctx.require(Permission.SSO_MANAGE)  # before any outgoing request
    issuer = clean_issuer(form.issuer)
    client_id = clean_text(form.client_id, "client_id", max_length=500)
    secret = (form.client_secret or "").strip() or None
    if connection_id is None and secret is None:
        raise Invalid("This field is required.", field="client_secret")
    groups_claim = clean_text(form.groups_claim or "groups", "groups_claim", max_length=200)
    settings = OidcSettings(
        issuer=issuer,
        client_id=client_id,
        scopes=_scopes(form.scopes),
        provider=await discover(issuer, http),
        groups_claim=groups_claim,
        email_verified_trusted=form.email_verified_trusted,
    )
    fields = ConnectionFields(
        protocol="oidc",
        name=form.name,
        settings=settings.as_settings(),
        secret=secret,
        role_mapping=form.role_mapping,
        default_role=form.default_role,
        external_id_claim=form.external_id_claim,
    )
    if connection_id is None:
        return await create_connection(ctx, fields)
    return await update_connection(ctx, connection_id, fields)


# --- the flow --------------------------------------------------------------------------------


def begin(
    connection: IdentityConnection,
    redirect_uri: str,
    next_path: str,
    *,
    test: bool = False,
    now: datetime | None = None,
) -> tuple[str, OidcFlow]:
    """Start a sign-in: the provider's authorization URL to send the browser to, and the flow
    to keep in its session (`remember`) until the callback."""
    settings = OidcSettings.of(connection)
    flow = OidcFlow(
        state=generate_token(43),
        nonce=generate_token(43),
        code_verifier=generate_token(64),
        tenant_id=connection.tenant_id,
        connection_id=connection.id,
        redirect_uri=redirect_uri,
        next_path=next_path,
        test=test,
        expires_at=(now or datetime.now(UTC)) + FLOW_LIFETIME,
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(settings.scopes),
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": create_s256_code_challenge(flow.code_verifier),
            "code_challenge_method": "S256",
        }
    )
    endpoint = settings.provider.authorization_endpoint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", flow


def remember(session: dict[str, Any], flow: OidcFlow) -> None:
    """Keep `flow` in the browser's session (the oldest unfinished ones make room)."""
    flows = dict(session.get(SESSION_KEY) or {})
    flows[flow.state] = flow.to_session()
    while len(flows) > MAX_FLOWS:
        flows.pop(next(iter(flows)))
    session[SESSION_KEY] = flows


def has_flow(session: Mapping[str, Any], connection_id: UUID) -> bool:
    """Whether this browser started a sign-in through `connection_id` (still unfinished)."""
    flows = session.get(SESSION_KEY) or {}
    return any(
        isinstance(data, dict) and data.get("connection_id") == str(connection_id)
        for data in flows.values()
    )


def take_flow(session: dict[str, Any], state: str | None) -> OidcFlow | None:
    """The flow `state` names in this session, removed from it (a flow is used once); None
    when this browser started no such flow."""
    flows = dict(session.get(SESSION_KEY) or {})
    data = flows.pop(state or "", None)
    if data is None:
        return None
    session[SESSION_KEY] = flows
    return OidcFlow.from_session(data)


async def finish(
    signing_in: SignInConnection,
    flow: OidcFlow | None,
    params: Mapping[str, str],
    *,
    now: datetime | None = None,
    http: httpx.AsyncClient | None = None,
) -> ProvenIdentity:
    """Finish the sign-in the callback's `params` answer: check the flow, exchange the code,
    validate the ID token, read userinfo and map the claims. `SignInRefused` on any failure."""
    connection = signing_in.connection
    settings = OidcSettings.of(connection)
    moment = now or datetime.now(UTC)
    if flow is None:
        raise SignInRefused(
            "oidc.state",
            "the state names no sign-in started in this browser (expired, used already, "
            "or started elsewhere)",
        )
    if flow.connection_id != connection.id or flow.tenant_id != connection.tenant_id:
        raise SignInRefused("oidc.state", "the state belongs to another connection")
    if moment > flow.expires_at:
        raise SignInRefused("oidc.expired_flow", "the sign-in took longer than 10 minutes")
    if params.get("error"):
        raise SignInRefused(
            "oidc.provider_error",
            f"the provider answered {_short(params['error'])}: "
            f"{_short(params.get('error_description', ''))}",
        )
    returned_issuer = params.get("iss")
    if returned_issuer is not None and returned_issuer != settings.issuer:
        # RFC 9207: the answer comes from another provider (mix-up attack).
        raise SignInRefused("oidc.issuer", f"the answer names issuer {_short(returned_issuer)!r}")
    if not flow.code_verifier:
        raise SignInRefused("oidc.pkce", "the sign-in lost its PKCE verifier")
    code = params.get("code")
    if not code:
        raise SignInRefused("oidc.code", "the provider returned no authorization code")
    async with _Client(http) as client:
        tokens = await _exchange(client, settings, signing_in.secret, flow, code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("oidc.token", "the token endpoint returned no ID token")
        claims = await validate_id_token(
            id_token,
            issuer=settings.issuer,
            client_id=settings.client_id,
            nonce=flow.nonce,
            jwks_uri=settings.provider.jwks_uri,
            now=moment,
            http=client,
        )
        access_token = tokens.get("access_token")
        if settings.provider.userinfo_endpoint and isinstance(access_token, str):
            userinfo = await _userinfo(client, settings.provider.userinfo_endpoint, access_token)
            if userinfo.get("sub") != claims["sub"]:
                raise SignInRefused("oidc.userinfo", "userinfo describes another subject")
            claims = {**userinfo, **{k: claims[k] for k in _PROTOCOL_CLAIMS if k in claims}}
    return map_identity(connection, settings, claims)


_POST = "client_secret_post"
_NO_AUTH = httpx.Auth()
_PROTOCOL_CLAIMS = ("iss", "sub", "aud", "azp", "exp", "iat", "nonce", "auth_time")


async def _exchange(
    client: httpx.AsyncClient,
    settings: OidcSettings,
    secret: str | None,
    flow: OidcFlow,
    code: str,
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.code_verifier,
    }
    auth: httpx.Auth = httpx.BasicAuth(
        # RFC 6749 2.3.1: both are form-encoded before the Basic scheme.
        quote(settings.client_id, safe=""),
        quote(secret or "", safe=""),
    )
    if settings.provider.token_endpoint_auth_method == _POST:
        form.update(client_id=settings.client_id, client_secret=secret or "")
        auth = _NO_AUTH
    try:
        status, body = await _call(
            client,
            "POST",
            settings.provider.token_endpoint,
            data=form,
            auth=auth,
            headers={"accept": "application/json"},
        )
    except _Unreadable as error:
        raise SignInRefused(
            "oidc.unreachable", f"the token endpoint could not be read: {error}"
        ) from None
    if status != 200 or not isinstance(body, dict):
        error_code = body.get("error", "") if isinstance(body, dict) else ""
        description = body.get("error_description", "") if isinstance(body, dict) else ""
        raise SignInRefused(
            "oidc.token",
            f"the token endpoint refused the code ({status} {_short(error_code)}: "
            f"{_short(description)})",
        )
    return body


async def _userinfo(client: httpx.AsyncClient, endpoint: str, access_token: str) -> dict[str, Any]:
    try:
        status, body = await _call(
            client,
            "GET",
            endpoint,
            headers={"authorization": f"Bearer {access_token}", "accept": "application/json"},
        )
    except _Unreadable:
        body = None
    else:
        body = body if status == 200 else None
    if not isinstance(body, dict):
        raise SignInRefused("oidc.userinfo", "the userinfo endpoint gave no JSON claims")
    return body


# --- the ID token ----------------------------------------------------------------------------


async def validate_id_token(
    token: str,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    jwks_uri: str,
    now: datetime,
    http: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """The claims of `token` once its signature, issuer, audience, times and nonce are
    checked; `SignInRefused` with the first failed check's reason otherwise."""
    header = _header(token)
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise SignInRefused(
            "oidc.algorithm",
            f"the ID token is signed with {_short(algorithm)}, which is not allowed",
        )
    async with _Client(http) as client:
        key = await _signing_key(
            client, jwks_uri, header.get("kid"), str(algorithm), now.timestamp()
        )
    try:
        decoded = jwt.decode(token, key, algorithms=[str(algorithm)])
    except JoseError as error:
        raise SignInRefused(
            "oidc.signature", f"the ID token's signature does not verify ({error.error})"
        ) from None
    claims = dict(decoded.claims)
    _check_claims(claims, issuer=issuer, client_id=client_id, nonce=nonce, now=now)
    return claims


def _header(token: str) -> dict[str, Any]:
    try:
        encoded = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, IndexError):
        header = None
    if not isinstance(header, dict) or token.count(".") != 2:
        raise SignInRefused("oidc.malformed", "the ID token is not a signed JWT")
    return header


def _finite(value: Any) -> TypeGuard[float]:
    """A JSON number that is a time: not a boolean, not NaN nor infinite, nor beyond any
    date (so that arithmetic on it never overflows)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and -1e11 < value < 1e11


def _check_claims(
    claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str, now: datetime
) -> None:
    if claims.get("iss") != issuer:
        raise SignInRefused(
            "oidc.issuer", f"the ID token was issued by {_short(claims.get('iss'))}"
        )
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise SignInRefused("oidc.audience", f"the ID token is meant for {_short(audience)}")
    authorized = claims.get("azp")
    if (len(audiences) > 1 or authorized is not None) and authorized != client_id:
        raise SignInRefused("oidc.azp", f"the ID token was issued to {_short(authorized)}")
    instant = now.timestamp()
    expires, issued = claims.get("exp"), claims.get("iat")
    if not _finite(expires) or instant > expires + CLOCK_SKEW:
        raise SignInRefused("oidc.expired", "the ID token has expired")
    if not _finite(issued) or issued > instant + CLOCK_SKEW:
        raise SignInRefused("oidc.issued_at", "the ID token is dated in the future")
    if instant - issued > FLOW_LIFETIME.total_seconds() + CLOCK_SKEW:
        raise SignInRefused("oidc.issued_at", "the ID token was issued too long ago")
    received = claims.get("nonce")
    if not isinstance(received, str) or not hmac.compare_digest(
        received.encode("utf-8", "surrogatepass"), nonce.encode("utf-8", "surrogatepass")
    ):
        raise SignInRefused("oidc.nonce", "the ID token's nonce is not this sign-in's")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise SignInRefused("oidc.subject", "the ID token names no subject")


#: How long a provider's published keys are trusted without reading them again: a key the
#: provider withdrew (compromised, retired) stops verifying tokens within this time.
JWKS_LIFETIME = 3600.0
#: An unknown `kid` fetches the keys again at most once in this time, per JWKS URL.
JWKS_REFETCH_INTERVAL = 60.0


@dataclass
class _CachedKeys:
    keys: KeySet
    #: when they were read (the caller's clock, in seconds)
    fetched_at: float
    #: when an unknown kid last had them read again
    refetched_at: float | None = None


#: The provider's keys by JWKS URL, kept between sign-ins for `JWKS_LIFETIME`.
_JWKS: dict[str, _CachedKeys] = {}


def forget_keys() -> None:
    """Forget every provider's cached keys (the next sign-in reads them again)."""
    _JWKS.clear()


def _within(instant: float, since: float | None, span: float) -> bool:
    return since is not None and 0 <= instant - since < span


async def _fetch_jwks(client: httpx.AsyncClient, jwks_uri: str, instant: float) -> _CachedKeys:
    try:
        status, document = await _call(
            client, "GET", jwks_uri, headers={"accept": "application/json"}
        )
        keys = (
            KeySet.import_key_set(document)  # type: ignore[arg-type]
            if status == 200 and isinstance(document, dict)
            else None
        )
    except (_Unreadable, ValueError, TypeError, JoseError):
        keys = None
    if keys is None:
        raise SignInRefused(
            "oidc.jwks", f"the provider's keys ({_short(jwks_uri)}) could not be read"
        )
    cached = _CachedKeys(keys, instant)
    _JWKS[jwks_uri] = cached
    return cached


def _matching(keys: KeySet, kid: str | None, algorithm: str) -> RSAKey | ECKey | None:
    wanted = RSAKey if algorithm[:2] in ("RS", "PS") else ECKey
    candidates = [
        key
        for key in keys.keys
        if isinstance(key, wanted)
        and (kid is None or key.kid == kid)
        and key.get("use", "sig") == "sig"
    ]
    # Without a kid, only an unambiguous key is used.
    return candidates[0] if len(candidates) == 1 else None


async def _signing_key(
    client: httpx.AsyncClient, jwks_uri: str, kid: Any, algorithm: str, instant: float
) -> RSAKey | ECKey:
    kid = kid if isinstance(kid, str) else None
    cached = _JWKS.get(jwks_uri)
    if cached is None or not _within(instant, cached.fetched_at, JWKS_LIFETIME):
        cached = await _fetch_jwks(client, jwks_uri, instant)
    key = _matching(cached.keys, kid, algorithm)
    if key is None and not _within(instant, cached.refetched_at, JWKS_REFETCH_INTERVAL):
        # The provider may have rotated its keys since we fetched them: ask once more (at
        # most once a minute: unknown kids do not make us hammer the provider).
        cached = await _fetch_jwks(client, jwks_uri, instant)
        cached.refetched_at = instant
        key = _matching(cached.keys, kid, algorithm)
    if key is None:
        raise SignInRefused(
            "oidc.key", f"no key {_short(kid)!r} for {algorithm} in the provider's published keys"
        )
    return key


# --- claims ----------------------------------------------------------------------------------


def map_identity(
    connection: IdentityConnection, settings: OidcSettings, claims: dict[str, Any]
) -> ProvenIdentity:
    """The person the validated `claims` describe."""
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise SignInRefused(
            "oidc.email", "the provider sent no email address (is the email scope granted?)"
        )
    verified = claims.get("email_verified")
    if isinstance(verified, str):  # some providers send "true"
        verified = verified.lower() == "true"
    email_verified = verified is True or (verified is None and settings.email_verified_trusted)
    groups = claims.get(settings.groups_claim) or ()
    if isinstance(groups, str):
        groups = (groups,)
    elif not isinstance(groups, list | tuple):
        groups = ()  # an object or a number names no group
    given = claims.get("given_name")
    family = claims.get("family_name")
    name = claims.get("name")
    if not given and not family and isinstance(name, str):
        given = name
    return ProvenIdentity(
        tenant_id=connection.tenant_id,
        connection_id=connection.id,
        subject=str(claims["sub"]),
        email=email.strip(),
        email_verified=email_verified,
        given_name=given if isinstance(given, str) else "",
        family_name=family if isinstance(family, str) else "",
        groups=tuple(str(group) for group in groups if isinstance(group, str | int)),
        claims=claims,
    )


@cache
def _tls() -> ssl.SSLContext:
    # Made once: building a TLS context (loading the CA bundle) costs more than a sign-in.
    return ssl.create_default_context(cafile=certifi.where())


#: The transport of outgoing requests to providers when one is set (`use_transport`); the
#: network otherwise.
_TRANSPORT: list[httpx.AsyncBaseTransport | None] = [None]


def use_transport(transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport | None:
    """Send requests to providers through `transport` (an in-process provider, for the
    benchmark), or the network again with None; the previous one."""
    previous = _TRANSPORT[0]
    _TRANSPORT[0] = transport
    return previous


class _Client:
    """The caller's client, or a fresh one closed on exit."""

    def __init__(self, http: httpx.AsyncClient | None) -> None:
        self.given = http
        self.own: httpx.AsyncClient | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        if self.given is not None:
            return self.given
        self.own = httpx.AsyncClient(
            timeout=_HTTP_TIMEOUT,
            follow_redirects=False,
            transport=_TRANSPORT[0],
            verify=_tls(),
            trust_env=False,
        )
        return self.own

    async def __aexit__(self, *exc: object) -> None:
        if self.own is not None:
            await self.own.aclose()
