"""The demo's development identity provider: a small OpenID provider at `/dev/idp/…` so that
`make demo` shows single sign-on with nothing else installed. Discovery, an authorization page
where one picks a demo persona (no password: it is a demonstration), the token endpoint
(authorization code with PKCE S256, client secret by Basic or POST), the JWKS and userinfo.
ID tokens are RS256-signed with a key made when the application starts (Authlib's JOSE).

It is never on unless asked for: `JALON_DEV_IDP=true`, outside production (the settings refuse
both together), with a loopback base URL, and `jalon serve` refuses to bind it elsewhere than
127.0.0.1. Codes and tokens live in this process's memory (one development process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from litestar import Request, Response, Router, get, post
from litestar.response import Redirect, Template

from core.errors import Invalid, Unauthenticated
from core.i18n import N_
from core.settings import Settings
from sso.connections import ConnectionFields
from sso.oidc import OidcSettings, ProviderMetadata
from web.pages import render

PATH = "/dev/idp"
CLIENT_ID = "jalon-demo"
#: Published: the provider only runs on this machine, for the demo.
CLIENT_SECRET = "jalon-demo-idp-secret"  # noqa: S105
CODE_SECONDS = 120
TOKEN_SECONDS = 600
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Persona:
    """A demo person the provider can sign in as."""

    login: str
    email: str
    given_name: str
    family_name: str
    groups: tuple[str, ...] = ()
    #: what the persona page says of them
    description: str = ""

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.login,
            "email": self.email,
            "email_verified": True,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "name": f"{self.given_name} {self.family_name}",
            "groups": list(self.groups),
            "employee_id": "E-" + hashlib.sha256(self.login.encode()).hexdigest()[:6].upper(),
        }


#: The demo company's staff as its identity provider knows them (domain verified in the demo).
DEMO_DOMAIN = "atelier.example"
PERSONAS = (
    Persona(
        "lea.fontaine",
        f"lea.fontaine@{DEMO_DOMAIN}",
        "Léa",
        "Fontaine",
        ("Staff",),
        N_("New employee: first sign-in, an account is made for her"),
    ),
    Persona(
        "karim.benali",
        f"karim.benali@{DEMO_DOMAIN}",
        "Karim",
        "Benali",
        ("Staff", "Jalon admins"),
        N_("Admin of the organization"),
    ),
    Persona(
        "sophie.leroy",
        f"sophie.leroy@{DEMO_DOMAIN}",
        "Sophie",
        "Leroy",
        ("Staff",),
        N_("Existing member"),
    ),
)


def dev_idp_allowed(settings: Settings) -> None:
    """Raise `RuntimeError` unless the development provider may run with `settings`: asked
    for, outside production, on a loopback base URL."""
    if not settings.dev_idp:
        raise RuntimeError("the development identity provider is off (JALON_DEV_IDP)")
    if settings.environment == "production":
        raise RuntimeError("JALON_DEV_IDP=true is refused in production")
    if urlsplit(settings.base_url).hostname not in LOOPBACK:
        raise RuntimeError("JALON_DEV_IDP=true needs a loopback JALON_BASE_URL (127.0.0.1)")


def issuer(settings: Settings) -> str:
    return settings.base_url + PATH


def discovery_document(settings: Settings) -> dict[str, Any]:
    """The provider's `/.well-known/openid-configuration` (what the demo's connection keeps)."""
    base = issuer(settings)
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/jwks",
        "userinfo_endpoint": f"{base}/userinfo",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "groups"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "email",
            "email_verified",
            "given_name",
            "family_name",
            "name",
            "groups",
            "employee_id",
        ],
    }


def connection_fields(settings: Settings, name: str) -> ConnectionFields:
    """An OIDC connection to this provider (its discovery document read without a request:
    the demo seeds it before the server runs)."""
    document = discovery_document(settings)
    provider = ProviderMetadata(
        issuer=document["issuer"],
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
        userinfo_endpoint=document["userinfo_endpoint"],
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
    )
    oidc = OidcSettings(
        issuer=document["issuer"],
        client_id=CLIENT_ID,
        scopes=("openid", "email", "profile"),
        provider=provider,
    )
    return ConnectionFields(
        protocol="oidc",
        name=name,
        settings=oidc.as_settings(),
        secret=CLIENT_SECRET,
        role_mapping={"Jalon admins": "admin"},
        external_id_claim="employee_id",
    )


@dataclass
class _Grant:
    persona: Persona
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str
    expires: float


@dataclass
class DevIdentityProvider:
    """The provider's state: its signing key, codes waiting to be exchanged, access tokens."""

    settings: Settings
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True))
    codes: dict[str, _Grant] = field(default_factory=dict)
    tokens: dict[str, tuple[Persona, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kid = secrets.token_hex(8)

    @property
    def issuer(self) -> str:
        return issuer(self.settings)

    def discovery(self) -> dict[str, Any]:
        return discovery_document(self.settings)

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def check_request(self, params: dict[str, str]) -> None:
        """`Invalid` unless an authorization request names the demo client, a redirect URI
        of this Jalon, the code flow and a PKCE S256 challenge."""
        if params.get("client_id") != CLIENT_ID:
            raise Invalid("Unknown client.", field="client_id")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri.startswith(self.settings.base_url + "/sso/"):
            raise Invalid("This redirect URI is not registered.", field="redirect_uri")
        if params.get("response_type") != "code":
            raise Invalid("Only the authorization code flow is offered.", field="response_type")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise Invalid("A PKCE S256 challenge is required.", field="code_challenge")

    def grant(self, params: dict[str, str], login: str) -> str:
        """The URL sending the browser back to the client with a code for `login`."""
        self.check_request(params)
        persona = next((p for p in PERSONAS if p.login == login), None)
        if persona is None:
            raise Invalid("Choose one of the demo people.", field="login")
        code = secrets.token_urlsafe(32)
        self.codes[code] = _Grant(
            persona,
            CLIENT_ID,
            params["redirect_uri"],
            params.get("nonce") or None,
            params["code_challenge"],
            time.time() + CODE_SECONDS,
        )
        answer = {"code": code}
        if params.get("state"):
            answer["state"] = params["state"]
        return f"{params['redirect_uri']}?{urlencode(answer)}"

    def exchange(self, form: dict[str, str], authorization: str) -> dict[str, Any]:
        """The token response for an authorization code (used once); `Invalid` otherwise."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials).decode()
            except ValueError:
                decoded = ":"
            client_id, _, secret = decoded.partition(":")
        if client_id != CLIENT_ID or not hmac.compare_digest(secret, CLIENT_SECRET):
            raise Unauthenticated("invalid_client")
        grant = self.codes.pop(form.get("code", ""), None)
        if (
            grant is None
            or grant.expires < time.time()
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != grant.redirect_uri
        ):
            raise Invalid("invalid_grant")
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(_sha256(verifier)).rstrip(b"=").decode()
        if not hmac.compare_digest(digest, grant.code_challenge):
            raise Invalid("invalid_grant")
        now = int(time.time())
        claims = {
            **grant.persona.claims(),
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        id_token = jwt.encode({"alg": "RS256", "kid": self.kid}, claims, self.key)
        access_token = secrets.token_urlsafe(32)
        self.tokens[access_token] = (grant.persona, time.time() + TOKEN_SECONDS)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "id_token": id_token,
        }

    def userinfo(self, authorization: str) -> dict[str, Any]:
        scheme, _, token = authorization.partition(" ")
        held = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if held is None or held[1] < time.time():
            raise Unauthenticated("invalid_token")
        return held[0].claims()


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _provider(request: Request[Any, Any, Any]) -> DevIdentityProvider:
    provider: DevIdentityProvider = request.app.state.dev_idp
    return provider


@get("/.well-known/openid-configuration")
async def discovery(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _provider(request).discovery()


@get("/jwks")
async def jwks(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _provider(request).jwks()


@get("/authorize")
async def authorize_page(request: Request[Any, Any, Any]) -> Template:
    """The persona page: who to sign in as."""
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    _provider(request).check_request(params)
    return render(request, "dev_idp.html", params=params, personas=PERSONAS)


@post("/authorize")
async def authorize(request: Request[Any, Any, Any]) -> Redirect:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    login = form.pop("login", "")
    return Redirect(path=_provider(request).grant(form, login), status_code=303)


def _oauth_error(error: Exception) -> Response[Any]:
    status = 401 if isinstance(error, Unauthenticated) else 400
    message = str(getattr(error, "message", error))
    return Response({"error": message}, status_code=status, headers={"cache-control": "no-store"})


@post("/token", status_code=200)
async def token(request: Request[Any, Any, Any]) -> Response[Any]:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        body = _provider(request).exchange(form, request.headers.get("authorization", ""))
    except (Invalid, Unauthenticated) as error:
        return _oauth_error(error)
    return Response(body, headers={"cache-control": "no-store"})


@get("/userinfo")
async def userinfo(request: Request[Any, Any, Any]) -> Response[Any]:
    try:
        claims = _provider(request).userinfo(request.headers.get("authorization", ""))
    except Unauthenticated as error:
        return _oauth_error(error)
    return Response(claims)


def dev_idp_router(settings: Settings) -> Router:
    """The provider's routes, for an application whose settings allow it (`dev_idp_allowed`)."""
    dev_idp_allowed(settings)
    return Router(
        path=PATH,
        route_handlers=[discovery, jwks, authorize_page, authorize, token, userinfo],
        include_in_schema=False,
    )
