"""The cross-tenant matrix: every route of the application that takes a path parameter is
attacked from tenant A with tenant B's slug and tenant B's ids.

Routes are discovered from the application itself, and the table of cases below must name
exactly the discovered set: a new route with a slug or an id fails here until it has its case.
The back office (`/admin`, our staff only) has its own matrix: tests/admin/test_admin_isolation.py.

- console routes, `/o/{slug}/…`: a member of A asking for B's slug gets the 404 of an
  organization that does not exist; B's ids under A's slug get the 404 of a random UUID;
- API routes with ids: A's token with B's ids gets the 404 of a random UUID;
- invitation links: B's token under A's slug is as dead as a made-up token;
- public and global routes say why they are not tenant data.

After every attempt, B's audit log (every change writes one event) and B's rows are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import uuid4

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from billing.invoices import LineInput, draft_invoice, issue_invoice
from campaigns.campaign_fields import CampaignFields
from campaigns.content import current_bank
from campaigns.exports import start_export
from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from campaigns.service import close_campaign, create_campaign
from campaigns.target_profiles import TargetProfileFields, create_target_profile
from core import database, jobs
from core.settings import get_settings
from sso.connections import ConnectionFields, create_connection
from sso.connections import set_enabled as set_connection_enabled
from sso.domains import add_domain
from sso.scim import create_group, create_user, set_group_mapping
from sso.scim_tokens import create_scim_token
from tenants.context import Actor
from tenants.invitations import invite
from tenants.organizations import SettingsChange, system_context, update_settings
from tenants.tokens import create_token
from tenants.webhooks.endpoints import EndpointFields, create_endpoint, set_enabled
from tests.api.conftest import Browser, audit_actions, bearer, browser_on, issue_token
from tests.conftest import TenantFixture, make_tenant
from tests.db import as_tenant
from tests.sso.seeding import add_verified_domain

IGNORED_METHODS = {"OPTIONS", "HEAD"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def routes(app: Litestar) -> set[tuple[str, str]]:
    """Every (method, path) the application answers, parameters written `{name}`; the back
    office's (`/admin`) have their own matrix, tests/admin/test_admin_isolation.py."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, HTTPRoute), f"a {type(route).__name__} needs isolation cases"
        if route.path == "/admin" or route.path.startswith("/admin/"):
            continue
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
        found |= {(method, path) for method in route.methods - IGNORED_METHODS}
    return found


def parametrized_routes(app: Litestar) -> set[tuple[str, str]]:
    """The routes whose path holds a parameter (a slug, an id, a token, a file)."""
    return {(method, path) for method, path in routes(app) if "{" in path}


def api_endpoints(app: Litestar) -> set[tuple[str, str]]:
    """Every endpoint of the JSON API."""
    return {(method, path) for method, path in routes(app) if path.startswith("/api/v1/")}


def console_writes(app: Litestar) -> set[tuple[str, str]]:
    """Every form the console accepts."""
    return {(m, p) for m, p in routes(app) if p.startswith("/o/{slug}") and m == "POST"}


@dataclass(frozen=True)
class Case:
    """How one route is attacked: `kind` picks the check, `form` or `json` is the body, `id`
    names which of tenant B's objects fills the route's id parameter."""

    kind: str
    id: str | None = None
    form: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    why: str = ""
    #: For public routes: a path it serves, and one it must not.
    serves: str = ""
    refuses: str = ""


_SETTINGS = {"name": "Hijacked", "default_locale": "en", "brand_colour": "#000000"}
_CAMPAIGN = {"name": "Planted", "type": "assessment", "target_profile": "catalogue:digcomp"}
_PROFILE = {"name": "Planted", "competences": "1.1"}
_SCIM_USER = {"userName": "planted@attacker.example.org", "active": False}
_SCIM_PATCH = {"Operations": [{"op": "replace", "path": "displayName", "value": "Planted"}]}
_WEBHOOK = {"url": "https://attacker.example.org/hook", "events": "participation.shared"}
_SAML = {"name": "Planted", "idp_metadata_url": "https://attacker.example.org/metadata"}
_OIDC = {
    "name": "Planted",
    "issuer": "https://attacker.example.org",
    "client_id": "planted",
    "client_secret": "planted",
}

CASES: dict[tuple[str, str], Case] = {
    # The tenant console.
    ("GET", "/o/{slug}"): Case("console"),
    ("GET", "/o/{slug}/members"): Case("console"),
    ("POST", "/o/{slug}/members/invite"): Case(
        "console", form={"email": "intruder@example.org", "role": "owner"}
    ),
    ("POST", "/o/{slug}/members/{membership_id}/role"): Case(
        "console", id="membership", form={"role": "admin"}
    ),
    ("GET", "/o/{slug}/members/{membership_id}/remove"): Case("console", id="membership"),
    ("POST", "/o/{slug}/members/{membership_id}/remove"): Case(
        "console", id="membership", form={"confirm": "yes"}
    ),
    ("POST", "/o/{slug}/invitations/{invitation_id}/resend"): Case("console", id="invitation"),
    ("POST", "/o/{slug}/invitations/{invitation_id}/revoke"): Case("console", id="invitation"),
    ("GET", "/o/{slug}/settings"): Case("console"),
    ("POST", "/o/{slug}/settings"): Case("console", form=_SETTINGS),
    ("GET", "/o/{slug}/audit"): Case("console"),
    ("GET", "/o/{slug}/tokens"): Case("console"),
    ("POST", "/o/{slug}/tokens"): Case(
        "console", form={"name": "Stolen", "scopes": "org:members:read"}
    ),
    ("GET", "/o/{slug}/tokens/{token_id}/revoke"): Case("console", id="token"),
    ("POST", "/o/{slug}/tokens/{token_id}/revoke"): Case(
        "console", id="token", form={"confirm": "yes"}
    ),
    ("GET", "/o/{slug}/campaigns"): Case("console"),
    ("POST", "/o/{slug}/campaigns"): Case("console", form=_CAMPAIGN),
    ("GET", "/o/{slug}/campaigns/{campaign_id}"): Case("console", id="campaign"),
    ("GET", "/o/{slug}/campaigns/{campaign_id}/close"): Case("console", id="campaign"),
    ("POST", "/o/{slug}/campaigns/{campaign_id}/close"): Case(
        "console", id="campaign", form={"confirm": "yes"}
    ),
    ("GET", "/o/{slug}/campaigns/{campaign_id}/archive"): Case("console", id="campaign"),
    ("POST", "/o/{slug}/campaigns/{campaign_id}/archive"): Case(
        "console", id="campaign", form={"confirm": "yes"}
    ),
    ("POST", "/o/{slug}/campaigns/{campaign_id}/activate"): Case("console", id="campaign_closed"),
    ("POST", "/o/{slug}/campaigns/{campaign_id}/duplicate"): Case("console", id="campaign"),
    ("GET", "/o/{slug}/campaigns/{campaign_id}/results.csv"): Case("console", id="campaign"),
    ("GET", "/o/{slug}/campaigns/{campaign_id}/results.xlsx"): Case("console", id="campaign"),
    ("POST", "/o/{slug}/campaigns/{campaign_id}/exports"): Case(
        "console", id="campaign", form={"format": "csv"}
    ),
    ("GET", "/o/{slug}/campaigns/{campaign_id}/edit"): Case("console", id="campaign"),
    ("GET", "/o/{slug}/campaigns/{campaign_id}/invite"): Case("console", id="campaign"),
    ("POST", "/o/{slug}/campaigns/{campaign_id}/invite"): Case(
        "console", id="campaign", form={"reminders": "3"}
    ),
    ("GET", "/o/{slug}/campaigns/{campaign_id}/participants/{participation_id}"): Case(
        "console", id="campaign_participant"
    ),
    ("POST", "/o/{slug}/campaigns/{campaign_id}/edit"): Case(
        "console", id="campaign", form=_CAMPAIGN
    ),
    ("GET", "/o/{slug}/target-profiles"): Case("console"),
    ("GET", "/o/{slug}/target-profiles/new"): Case("console"),
    ("POST", "/o/{slug}/target-profiles"): Case("console", form=_PROFILE),
    ("GET", "/o/{slug}/target-profiles/{profile_id}"): Case("console", id="target_profile"),
    ("POST", "/o/{slug}/target-profiles/{profile_id}"): Case(
        "console", id="target_profile", form=_PROFILE
    ),
    ("POST", "/o/{slug}/target-profiles/{profile_id}/archive"): Case(
        "console", id="target_profile"
    ),
    ("GET", "/o/{slug}/learners"): Case("console"),
    ("GET", "/o/{slug}/learners/import"): Case("console"),
    ("POST", "/o/{slug}/learners/import"): Case("console"),
    ("GET", "/o/{slug}/learners/template.csv"): Case("console"),
    ("GET", "/o/{slug}/tasks"): Case("console"),
    ("GET", "/o/{slug}/tasks/{task_id}"): Case("console", id="task"),
    ("GET", "/o/{slug}/tasks/{task_id}/download"): Case("console", id="task"),
    ("GET", "/o/{slug}/webhooks"): Case("console"),
    ("POST", "/o/{slug}/webhooks"): Case("console", form=_WEBHOOK),
    ("GET", "/o/{slug}/webhooks/{endpoint_id}"): Case("console", id="webhook"),
    ("POST", "/o/{slug}/webhooks/{endpoint_id}"): Case("console", id="webhook", form=_WEBHOOK),
    ("POST", "/o/{slug}/webhooks/{endpoint_id}/enable"): Case("console", id="webhook_disabled"),
    ("POST", "/o/{slug}/webhooks/{endpoint_id}/disable"): Case("console", id="webhook"),
    ("POST", "/o/{slug}/webhooks/{endpoint_id}/test"): Case("console", id="webhook"),
    ("POST", "/o/{slug}/webhooks/{endpoint_id}/delete"): Case("console", id="webhook"),
    ("POST", "/o/{slug}/webhooks/{endpoint_id}/secret"): Case("console", id="webhook"),
    ("POST", "/o/{slug}/webhooks/{endpoint_id}/rotate"): Case("console", id="webhook"),
    ("POST", "/o/{slug}/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): Case(
        "console", id="webhook_delivery"
    ),
    ("GET", "/o/{slug}/sso/domains"): Case("console"),
    ("POST", "/o/{slug}/sso/domains"): Case("console", form={"domain": "planted.example"}),
    ("POST", "/o/{slug}/sso/domains/{domain_id}/verify"): Case("console", id="sso_domain"),
    ("POST", "/o/{slug}/sso/domains/{domain_id}/delete"): Case("console", id="sso_domain"),
    ("POST", "/o/{slug}/sso/domains/{domain_id}/publish"): Case("console", id="sso_domain"),
    ("GET", "/o/{slug}/sso/policy"): Case("console"),
    ("POST", "/o/{slug}/sso/policy"): Case("console", form={"sso_required": ""}),
    ("GET", "/o/{slug}/billing"): Case("console"),
    ("GET", "/o/{slug}/billing/usage"): Case("console"),
    ("GET", "/o/{slug}/billing/invoices"): Case("console"),
    ("GET", "/o/{slug}/billing/invoices/{invoice_id}"): Case("console", id="invoice_pdf"),
    ("POST", "/o/{slug}/billing/preview"): Case("console", form={"quantity": "7"}),
    ("POST", "/o/{slug}/billing/change"): Case("console", form={"quantity": "7"}),
    ("POST", "/o/{slug}/billing/cancel"): Case("console"),
    ("POST", "/o/{slug}/billing/subscribe"): Case(
        "console", form={"plan": "planted", "quantity": "3", "method": "invoice"}
    ),
    ("POST", "/o/{slug}/billing/portal"): Case("console"),
    ("GET", "/o/{slug}/billing/profile"): Case("console"),
    ("POST", "/o/{slug}/billing/profile"): Case(
        "console", form={"legal_name": "Planted", "country": "FR", "billing_email": "x@y.org"}
    ),
    ("GET", "/o/{slug}/sso"): Case("console"),
    ("GET", "/o/{slug}/sso/oidc/new"): Case("console"),
    ("POST", "/o/{slug}/sso/oidc/new"): Case("console", form=_OIDC),
    ("GET", "/o/{slug}/sso/oidc/{connection_id}"): Case("console", id="sso_oidc"),
    ("POST", "/o/{slug}/sso/oidc/{connection_id}"): Case("console", id="sso_oidc", form=_OIDC),
    ("POST", "/o/{slug}/sso/connections/{connection_id}/enable"): Case("console", id="sso_oidc"),
    ("POST", "/o/{slug}/sso/connections/{connection_id}/disable"): Case(
        "console", id="sso_oidc_enabled"
    ),
    ("POST", "/o/{slug}/sso/connections/{connection_id}/delete"): Case("console", id="sso_oidc"),
    ("GET", "/o/{slug}/sso/saml/new"): Case("console"),
    ("POST", "/o/{slug}/sso/saml/new"): Case("console", form=_SAML),
    ("GET", "/o/{slug}/sso/saml/{connection_id}"): Case("console", id="sso_saml"),
    ("POST", "/o/{slug}/sso/saml/{connection_id}"): Case("console", id="sso_saml", form=_SAML),
    # Signing in through an organization's connection: public, but B's connection under A's
    # slug is as unknown as a random id.
    ("GET", "/sso/{slug}/oidc/{connection_id}/start"): Case(
        "sso_sign_in", id="sso_oidc_enabled", why="anyone may start signing in"
    ),
    ("GET", "/sso/{slug}/oidc/{connection_id}/callback"): Case(
        "sso_sign_in", id="sso_oidc_enabled", why="the provider's answer, checked by the flow"
    ),
    ("GET", "/sso/{slug}/saml/{connection_id}/start"): Case(
        "sso_sign_in", id="sso_saml_enabled", why="anyone may start signing in"
    ),
    ("GET", "/sso/{slug}/saml/{connection_id}/metadata"): Case(
        "sso_sign_in", id="sso_saml_enabled", why="the SP's public metadata, for the IdP"
    ),
    ("POST", "/sso/{slug}/saml/{connection_id}/acs"): Case(
        "sso_sign_in",
        id="sso_saml_enabled",
        form={"SAMLResponse": "PHg+", "RelayState": "planted"},
        why="the IdP's answer, kept for the browser's flow and checked there",
    ),
    ("GET", "/sso/{slug}/saml/{connection_id}/acs"): Case(
        "sso_sign_in", id="sso_saml_enabled", why="the IdP's answer, checked by the flow"
    ),
    ("GET", "/o/{slug}/sso/scim"): Case("console"),
    ("POST", "/o/{slug}/sso/scim/tokens"): Case("console", form={"name": "Stolen"}),
    ("POST", "/o/{slug}/sso/scim/tokens/{token_id}/revoke"): Case("console", id="scim_token"),
    ("POST", "/o/{slug}/sso/scim/mappings"): Case(
        "console", form={"group_name": "Planted", "role": "admin"}
    ),
    ("POST", "/o/{slug}/sso/scim/mappings/{mapping_id}/remove"): Case("console", id="scim_mapping"),
    # SCIM: the tenant comes from the directory's token, ids from the path.
    ("GET", "/scim/v2/Users/{user_id}"): Case("scim", id="scim_user"),
    ("PUT", "/scim/v2/Users/{user_id}"): Case("scim", id="scim_user", json=_SCIM_USER),
    ("PATCH", "/scim/v2/Users/{user_id}"): Case("scim", id="scim_user", json=_SCIM_PATCH),
    ("DELETE", "/scim/v2/Users/{user_id}"): Case("scim", id="scim_user"),
    ("GET", "/scim/v2/Groups/{group_id}"): Case("scim", id="scim_group"),
    ("PUT", "/scim/v2/Groups/{group_id}"): Case(
        "scim", id="scim_group", json={"displayName": "Planted"}
    ),
    ("PATCH", "/scim/v2/Groups/{group_id}"): Case("scim", id="scim_group", json=_SCIM_PATCH),
    ("DELETE", "/scim/v2/Groups/{group_id}"): Case("scim", id="scim_group"),
    ("GET", "/scim/v2/ResourceTypes/{name}"): Case(
        "scim_static",
        why="the service's description, the same for every organization",
        serves="/scim/v2/ResourceTypes/User",
        refuses="/scim/v2/ResourceTypes/Printer",
    ),
    ("GET", "/scim/v2/Schemas/{schema_id}"): Case(
        "scim_static",
        why="the service's description, the same for every organization",
        serves="/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        refuses="/scim/v2/Schemas/urn:nothing",
    ),
    ("GET", "/scim/v2/{rest}"): Case(
        "scim_static", why="any other path under /scim/v2: a SCIM 404", refuses="/scim/v2/x/y"
    ),
    # A participant's own participation: the slug names the tenant, the id the participation.
    ("GET", "/p/{slug}/{participation_id}"): Case("participation", id="participation"),
    ("POST", "/p/{slug}/{participation_id}"): Case(
        "participation", id="participation", form={"challenge_id": "x", "action": "skip"}
    ),
    ("POST", "/p/{slug}/{participation_id}/report"): Case(
        "participation",
        id="participation",
        # the challenge B's participant is shown, so that a leak would really write a report
        form={"challenge_id": "{current_challenge}", "category": "unclear_statement"},
    ),
    ("POST", "/p/{slug}/{participation_id}/more-time"): Case(
        "participation",
        id="participation",
        # the timed challenge B's participant is shown, so that a leak would really move its
        # time (the assessment's current_shown_at, in the snapshot)
        form={"challenge_id": "{current_challenge}"},
    ),
    ("GET", "/p/{slug}/{participation_id}/report"): Case(
        "participation", id="participation", why="a redirect to the challenge page"
    ),
    ("GET", "/p/{slug}/{participation_id}/results"): Case("participation", id="finished"),
    ("GET", "/p/{slug}/{participation_id}/share"): Case(
        "participation", id="finished", why="a redirect to the results page"
    ),
    ("POST", "/p/{slug}/{participation_id}/share"): Case(
        "participation", id="finished", form={"consent": "yes"}
    ),
    # The JSON API: the tenant comes from the token, ids from the path.
    ("GET", "/api/v1/members/{membership_id}"): Case("api", id="membership"),
    ("PATCH", "/api/v1/members/{membership_id}"): Case(
        "api", id="membership", json={"role": "admin"}
    ),
    ("DELETE", "/api/v1/members/{membership_id}"): Case("api", id="membership"),
    ("GET", "/api/v1/invitations/{invitation_id}"): Case("api", id="invitation"),
    ("POST", "/api/v1/invitations/{invitation_id}/resend"): Case("api", id="invitation"),
    ("DELETE", "/api/v1/invitations/{invitation_id}"): Case("api", id="invitation"),
    ("GET", "/api/v1/campaigns/{campaign_id}"): Case("api", id="campaign"),
    ("GET", "/api/v1/campaigns/{campaign_id}/participations"): Case("api", id="campaign"),
    ("GET", "/api/v1/campaigns/{campaign_id}/results"): Case("api", id="campaign"),
    ("GET", "/api/v1/learners/{learner_id}"): Case("api", id="learner"),
    # Invitation links: the slug names the tenant, the token the invitation.
    ("GET", "/invitations/{slug}/{token}"): Case("invitation_link"),
    ("POST", "/invitations/{slug}/{token}"): Case("invitation_link"),
    # Campaign codes: the code is the invitation, whoever holds it may take part.
    ("GET", "/c/{code}"): Case("code", why="a campaign's public page, by its code"),
    ("GET", "/c/{code}/account"): Case("code", why="creating one's own account"),
    ("POST", "/c/{code}/account"): Case("code", why="creating one's own account"),
    ("POST", "/c/{code}/start"): Case("code", why="taking part is what a code is for"),
    ("GET", "/c/{code}/start"): Case("code", why="a redirect to the campaign's page"),
    ("GET", "/c/{code}/sso"): Case("code", why="signing in through the code's organization"),
    # Not tenant data.
    ("GET", "/logos/{slug}"): Case("logo", why="public, like the pages participants see"),
    ("GET", "/login/link/{token}"): Case("global_link", why="a person's own sign-in link"),
    ("POST", "/login/link/{token}"): Case("global_link", why="a person's own sign-in link"),
    ("GET", "/signup/link/{token}"): Case("global_link", why="a person's own sign-up link"),
    ("POST", "/signup/link/{token}"): Case("global_link", why="a person's own sign-up link"),
    ("GET", "/email/verify/{token}"): Case("global_link", why="a person's own verification link"),
    ("POST", "/email/verify/{token}"): Case("global_link", why="a person's own verification link"),
    ("GET", "/password/reset/{token}"): Case("global_link", why="a person's own reset link"),
    ("POST", "/password/reset/{token}"): Case(
        "global_link",
        why="a person's own reset link",
        form={"password": "a new long password", "password_confirm": "a new long password"},
    ),
    ("GET", "/static/{file_path}"): Case(
        "public", why="the stylesheet", serves="/static/jalon.css", refuses="/static/..%2Fapp.py"
    ),
    ("GET", "/static/docs/{file_path}"): Case(
        "public",
        why="the API documentation's viewers",
        serves="/static/docs/swagger-ui.css",
        refuses="/static/docs/..%2F..%2Fapp.py",
    ),
    ("GET", "/schema/{path}"): Case(
        "public", why="the API documentation", serves="/schema/swagger", refuses="/schema/..%2F"
    ),
    ("GET", "/brand/{name}"): Case(
        "public",
        why="an organization's colour as a stylesheet: the colour is the name, nothing else",
        serves="/brand/1d4ed8.css",
        refuses="/brand/..%2Fapp.py",
    ),
    ("GET", "/docs/{name}"): Case(
        "public",
        why="Jalon's own documentation (docs/*.md), the same for everyone; only listed names",
        serves="/docs/webhooks",
        refuses="/docs/..%2Fpyproject.toml",
    ),
}


def test_every_route_with_a_path_parameter_has_an_isolation_case(app: Litestar) -> None:
    assert set(CASES) == parametrized_routes(app)


def test_every_route_is_known(app: Litestar) -> None:
    """The routes without parameters, so that a new one is looked at too."""
    assert routes(app) - set(CASES) == {
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),  # the service's figures, no tenant's: token or loopback only
        ("POST", "/locale"),
        ("GET", "/dev/outbox"),
        ("GET", "/terms"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/login/link"),
        ("POST", "/login/link"),
        ("GET", "/password/forgot"),
        ("POST", "/password/forgot"),
        ("GET", "/signup"),
        ("POST", "/signup"),
        ("GET", "/account"),
        ("POST", "/account/password"),
        ("POST", "/account/verify-email"),  # one's own address
        ("POST", "/account"),
        ("GET", "/o"),  # the person's own organizations
        ("GET", "/c"),  # the code form
        ("GET", "/me/results"),  # the person's own participations, read through own_rows
        ("GET", "/api/v1/organization"),  # the token's own: see the listing test below
        ("GET", "/api/v1/members"),
        ("GET", "/api/v1/invitations"),
        ("POST", "/api/v1/invitations"),
        ("GET", "/api/v1/campaigns"),
        ("GET", "/api/v1/learners"),
        ("GET", "/api/v1/audit"),
        ("GET", "/scim/v2/ServiceProviderConfig"),  # the same for every organization
        ("GET", "/scim/v2/ResourceTypes"),
        ("GET", "/scim/v2/Schemas"),
        ("POST", "/scim/v2/.search"),  # 501: not offered
        ("GET", "/scim/v2/Users"),  # the token's own: see the listing test below
        ("POST", "/scim/v2/Users"),
        ("POST", "/scim/v2/Users/.search"),
        ("GET", "/scim/v2/Groups"),
        ("POST", "/scim/v2/Groups"),
        ("POST", "/scim/v2/Groups/.search"),
        ("GET", "/schema"),
        ("GET", "/schema/swagger"),
        ("GET", "/schema/openapi.json"),
        ("GET", "/schema/redoc"),
        ("GET", "/static/docs/redoc.standalone.js"),  # the API documentation's Redoc
        ("GET", "/favicon.ico"),
        # Stripe posts signed events: no tenant in the URL, the signature authenticates
        ("POST", "/billing/stripe/webhook"),
        ("GET", "/pricing"),  # the global plan catalogue, public
    }


# --- the two tenants -------------------------------------------------------------------


@dataclass(frozen=True)
class Victim:
    """Tenant B and ids of its objects, one of each kind the routes take. The membership is
    the plain member's, so that every attack on it would be a real change (a promotion, a
    removal) were it let through."""

    tenant: TenantFixture
    ids: dict[str, str]
    invitation_token: str
    api_token: str
    code: str


async def _learner_id(tenant: TenantFixture, participation_id: Any) -> Any:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT learner_id FROM participation WHERE tenant_id = $1 AND id = $2",
            tenant.id,
            participation_id,
        )
    return rows[0]["learner_id"]


@pytest.fixture(scope="module")
async def attacker(db: str) -> TenantFixture:
    return await make_tenant("Attacker")


@pytest.fixture(scope="module")
async def victim(db: str) -> Victim:
    tenant = await make_tenant("Victim")
    ctx = tenant.owner_ctx
    email = f"victim-invitee-{uuid4().hex[:6]}@example.org"
    invitation_id = await invite(ctx, email, "member", get_settings())
    async with database.global_transaction():
        mails = await database.fetch(
            "SELECT body_text FROM mail_message WHERE to_address = $1", email
        )
    token_match = re.search(rf"/invitations/{tenant.slug}/(\S+)", mails[0]["body_text"])
    assert token_match
    issued = await create_token(
        ctx,
        "victim",
        ["org:members:read", "org:campaigns:read", "org:learners:read", "org:results:read"],
        None,
    )
    await update_settings(ctx, SettingsChange("Victim Org", "en", "#aa0000", ("image/png", PNG)))
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant.id,
            tenant.member.id,
        )
    campaign = await create_campaign(ctx, CampaignFields(name="B's", profile_key="digcomp"))
    closed = await create_campaign(ctx, CampaignFields(name="B's old", profile_key="digcomp"))
    await close_campaign(ctx, closed.id)
    participant = participant_context(ctx.tenant, Actor(kind="user", user_id=tenant.member.id))
    started = await start_or_resume(participant, campaign.id)
    shown = await current_challenge(participant, started.id)
    assert shown is not None
    # B's participant is shown a timed challenge, which "More time" could extend.
    timed = next(c for c in current_bank().challenges if c.timer_seconds is not None)
    async with as_tenant(tenant.id):
        await database.execute(
            "UPDATE assessment SET current_challenge_id = $3, current_shown_at = now() "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant.id,
            started.id,
            timed.id,
        )
    other = participant_context(ctx.tenant, Actor(kind="user", user_id=tenant.owner.id))
    finished = await start_or_resume(other, campaign.id)
    view = await current_challenge(other, finished.id)
    while view is not None:
        outcome = await answer(other, finished.id, view.challenge_id, skipped=True)
        view = outcome.next_challenge
    profile = await create_target_profile(ctx, TargetProfileFields("B's profile", ["1.1"]))
    webhook = await create_endpoint(ctx, EndpointFields("https://victim.example.org/hook"))
    webhook_disabled = await create_endpoint(ctx, EndpointFields("https://victim.example.org/x"))
    await set_enabled(ctx, webhook_disabled, False)
    delivery = uuid4()
    async with as_tenant(tenant.id):
        await database.execute(
            """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type, event_id,
                   payload, status, next_attempt_at)
               VALUES ($1, $2, $3, 'ping', $4, '{}', 'failed', NULL)""",
            tenant.id,
            delivery,
            webhook,
            uuid4(),
        )
    oidc_fields = ConnectionFields(
        protocol="oidc",
        name="B's provider",
        settings={
            "issuer": "https://idp.victim.example.org",
            "client_id": "victim",
            "provider": {"authorization_endpoint": "https://idp.victim.example.org/auth"},
        },
        secret="victim-secret",
    )
    oidc_connection = await create_connection(ctx, oidc_fields)
    oidc_enabled = await create_connection(ctx, oidc_fields)
    await set_connection_enabled(ctx, oidc_enabled, True)
    saml_fields = ConnectionFields(
        protocol="saml", name="B's IdP", settings={"idp_entity_id": "https://idp.victim.example"}
    )
    saml_connection = await create_connection(ctx, saml_fields)
    saml_enabled = await create_connection(ctx, saml_fields)
    await set_connection_enabled(ctx, saml_enabled, True)
    scim_ids = await _directory_objects(tenant)
    ids = {
        **scim_ids,
        "membership": str(rows[0]["id"]),
        "invitation": str(invitation_id),
        "token": str(issued.id),
        "campaign": str(campaign.id),
        "campaign_closed": str(closed.id),
        "participation": str(started.id),
        "finished": str(finished.id),
        "current_challenge": timed.id,
        "target_profile": str(profile.id),
        "webhook": str(webhook),
        "webhook_disabled": str(webhook_disabled),
        # Two ids in one: the endpoint's and its delivery's (see `_fill`).
        "webhook_delivery": f"{webhook}/deliveries/{delivery}",
        # Two ids in one: the campaign's and its participation's (see `_fill`).
        "campaign_participant": f"{campaign.id}/participants/{finished.id}",
        "learner": str(await _learner_id(tenant, started.id)),
        "task": str(await _finished_export(ctx, campaign.id)),
        "sso_oidc": str(oidc_connection),
        "sso_oidc_enabled": str(oidc_enabled),
        "sso_saml": str(saml_connection),
        "sso_saml_enabled": str(saml_enabled),
        "sso_domain": str((await add_domain(ctx, f"victim-{uuid4().hex[:8]}.example")).id),
        "invoice_pdf": f"{await _issued_invoice(ctx)}.pdf",
    }
    return Victim(tenant, ids, token_match.group(1), issued.token, campaign.code)


async def _directory_objects(tenant: TenantFixture) -> dict[str, str]:
    """What B's directory provisioned: a person, a group with them in it, a group mapping,
    and the SCIM token (`scim_bearer`) B's directory uses."""
    ctx = tenant.owner_ctx
    domain = f"victim-{uuid4().hex[:8]}.example.org"
    await add_verified_domain(tenant.id, domain)
    issued = await create_scim_token(ctx, "B's directory")
    person = await create_user(ctx, {"userName": f"provisioned@{domain}", "displayName": "P"})
    group = await create_group(
        ctx, {"displayName": "B staff", "members": [{"value": str(person.id)}]}
    )
    mapping = await set_group_mapping(ctx, "B staff", "member")
    return {
        "scim_user": str(person.id),
        "scim_group": str(group.id),
        "scim_token": str(issued.id),
        "scim_mapping": str(mapping.id),
        "scim_bearer": issued.token,
    }


async def _issued_invoice(ctx: Any) -> Any:
    """An invoice issued to B (its PDF is the file an attacker asks for)."""
    system = system_context(ctx.tenant, "tests")  # invoices are written by the system
    lines = [LineInput("adjustment", "Victim's invoice", 1, 10_000)]
    draft = await draft_invoice(system, lines, currency="EUR")
    return (await issue_invoice(system, draft.id)).id


async def _finished_export(ctx: Any, campaign_id: Any) -> Any:
    """A background export of B's, done, its file ready to download."""
    previous = jobs.get_queue()
    queue = jobs.InProcessQueue()
    jobs.use_queue(queue)
    try:
        task_id = await start_export(ctx, campaign_id, "csv", "en")
        await queue.drain()
    finally:
        jobs.use_queue(previous)
    return task_id


@pytest.fixture(scope="module")
async def attacker_owner(app: Litestar, attacker: TenantFixture) -> AsyncIterator[Browser]:
    """The owner of tenant A: every permission there, none in B."""
    async with browser_on(app) as browser:
        await browser.login(attacker.owner)
        yield browser


@pytest.fixture(scope="module")
async def attacker_member(app: Litestar, attacker: TenantFixture) -> AsyncIterator[Browser]:
    """A plain member of tenant A: refused most pages of A, and must learn nothing of B."""
    async with browser_on(app) as browser:
        await browser.login(attacker.member)
        yield browser


@pytest.fixture(scope="module")
async def attacker_token(attacker: TenantFixture) -> str:
    return await issue_token(attacker.owner_ctx)


@pytest.fixture(scope="module")
async def attacker_scim_token(attacker: TenantFixture) -> str:
    return (await create_scim_token(attacker.owner_ctx, "A's directory")).token


async def _snapshot(victim: Victim) -> dict[str, Any]:
    """Everything of tenant B an attack could change."""
    tenant = victim.tenant
    async with as_tenant(tenant.id):
        return {
            "members": await database.fetch(
                "SELECT id, user_id, role FROM membership WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
            "invitations": await database.fetch(
                "SELECT * FROM invitation WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "tokens": await database.fetch(
                "SELECT id, revoked_at, scopes FROM api_token WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
            "organization": await database.fetch(
                "SELECT name, default_locale, brand_colour, logo_data_url FROM organization "
                "WHERE id = $1",
                tenant.id,
            ),
            "campaigns": await database.fetch(
                "SELECT id, name, status, updated_at FROM campaign WHERE tenant_id = $1 "
                "ORDER BY id",
                tenant.id,
            ),
            "target_profiles": await database.fetch(
                "SELECT id, name, version, archived_at FROM target_profile WHERE tenant_id = $1 "
                "ORDER BY id",
                tenant.id,
            ),
            "learners": await database.fetch(
                "SELECT id, name, email, external_id, groups FROM learner WHERE tenant_id = $1 "
                "ORDER BY id",
                tenant.id,
            ),
            "participations": await database.fetch(
                "SELECT id, status FROM participation WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "assessments": await database.fetch(
                "SELECT participation_id, current_challenge_id, current_shown_at FROM assessment "
                "WHERE tenant_id = $1 ORDER BY participation_id",
                tenant.id,
            ),
            "answers": await database.fetch(
                "SELECT count(*) FROM answer WHERE tenant_id = $1", tenant.id
            ),
            "tasks": await database.fetch(
                "SELECT id, status, purged_at FROM task WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
            "reports": await database.fetch(
                "SELECT count(*) FROM challenge_report WHERE tenant_id = $1", tenant.id
            ),
            "webhooks": await database.fetch(
                "SELECT id, url, events, enabled, secret FROM webhook_endpoint "
                "WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
            "scim_tokens": await database.fetch(
                "SELECT id, revoked_at FROM scim_token WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
            "directory_users": await database.fetch(
                "SELECT * FROM directory_user WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "directory_groups": await database.fetch(
                "SELECT * FROM directory_group WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "directory_group_members": await database.fetch(
                "SELECT * FROM directory_group_member WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "directory_group_mappings": await database.fetch(
                "SELECT * FROM directory_group_mapping WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "webhook_deliveries": await database.fetch(
                "SELECT id, status FROM webhook_delivery WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
            "sso_connections": await database.fetch(
                "SELECT id, name, enabled, settings, secret, updated_at FROM sso_connection "
                "WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
        }


def _fill(path: str, slug: str, ident: str = "", token: str = "") -> str:
    """The path with the slug, the id (every `{…_id}`: a route takes one object, or a delivery
    with its endpoint, given together) and the token or code put in."""
    path = path.replace("{slug}", slug).replace("{endpoint_id}/deliveries/{delivery_id}", ident)
    path = path.replace("{campaign_id}/participants/{participation_id}", ident)
    path = re.sub(r"\{\w+_id\}", ident, path)
    return path.replace("{token}", token).replace("{code}", token)


def _same_page(first: httpx.Response, second: httpx.Response, *secrets: str) -> None:
    """The two answers cannot be told apart, once what the caller typed is blanked out."""

    def blank(response: httpx.Response) -> str:
        text = response.text
        for secret in secrets:
            text = text.replace(secret, "…")
        return text

    assert first.status_code == second.status_code
    assert first.headers.get("content-type") == second.headers.get("content-type")
    assert blank(first) == blank(second)


async def _send(
    browser: Browser, method: str, path: str, case: Case, headers: dict[str, str] | None = None
) -> httpx.Response:
    if method == "GET":
        return await browser.client.get(path, headers=headers)
    if case.json is not None or path.startswith(("/api/", "/scim/")):
        return await browser.client.request(method, path, json=case.json, headers=headers)
    return await browser.client.post(
        path, data={"_csrf_token": browser.csrf, **case.form}, headers=headers
    )


@pytest.mark.parametrize(("method", "path"), sorted(CASES), ids=lambda v: str(v))
async def test_tenant_a_cannot_reach_tenant_b(
    attacker: TenantFixture,
    attacker_owner: Browser,
    attacker_member: Browser,
    attacker_token: str,
    attacker_scim_token: str,
    victim: Victim,
    method: str,
    path: str,
) -> None:
    case = CASES[(method, path)]
    # A form value "{name}" stands for tenant B's object of that name.
    form = {k: victim.ids.get(v[1:-1], v) if v[:1] == "{" else v for k, v in case.form.items()}
    case = replace(case, form=form)
    before = await _snapshot(victim)
    audit_before = await audit_actions(victim.tenant.id)
    b_slug, nowhere = victim.tenant.slug, f"nowhere-{uuid4().hex[:8]}"
    b_id = victim.ids[case.id] if case.id else ""
    random_id = str(uuid4())
    if "/deliveries/" in b_id:  # an endpoint's delivery: two ids, both unknown
        random_id = f"{random_id}/deliveries/{uuid4()}"
    if "/participants/" in b_id:  # a campaign's participation: two ids, both unknown
        random_id = f"{random_id}/participants/{uuid4()}"
    browser = attacker_owner

    if case.kind == "console":
        # B's slug (with B's id) answers like a slug that does not exist, to A's owner and to
        # A's plain member alike (no 403 that would tell a slug exists).
        for member in (browser, attacker_member):
            theirs = await _send(member, method, _fill(path, b_slug, b_id), case)
            missing = await _send(member, method, _fill(path, nowhere, random_id), case)
            assert theirs.status_code == 404
            _same_page(theirs, missing, b_slug, nowhere, b_id, random_id)
        if case.id:
            # B's id under A's slug answers like a random id.
            foreign = await _send(browser, method, _fill(path, attacker.slug, b_id), case)
            unknown = await _send(browser, method, _fill(path, attacker.slug, random_id), case)
            assert foreign.status_code == 404
            _same_page(foreign, unknown, b_id, random_id)
    elif case.kind == "participation":
        # A's owner, signed in, taking part: B's participation under B's slug answers like
        # an unknown slug, and under A's slug like an unknown id.
        theirs = await _send(browser, method, _fill(path, b_slug, b_id), case)
        missing = await _send(browser, method, _fill(path, nowhere, random_id), case)
        assert theirs.status_code == 404
        _same_page(theirs, missing, b_slug, nowhere, b_id, random_id)
        foreign = await _send(browser, method, _fill(path, attacker.slug, b_id), case)
        unknown = await _send(browser, method, _fill(path, attacker.slug, random_id), case)
        assert foreign.status_code == 404
        _same_page(foreign, unknown, b_id, random_id)
    elif case.kind == "code":
        assert case.why
        made_up = await _send(browser, method, _fill(path, "", token="ABCDEFGHJ"), case)
        assert made_up.status_code == 404
        if method == "GET":
            # The real code does reach the page: its landing; its account form sends a person
            # already signed in (the attacker is) back to the landing, and so does its SSO
            # sign-in for a campaign that does not require SSO, and the start form's address.
            own = await browser.client.get(_fill(path, "", token=victim.code))
            expected = 303 if path.endswith(("/account", "/sso", "/start")) else 200
            assert own.status_code == expected
    elif case.kind == "api":
        headers = bearer(attacker_token)
        foreign = await _send(browser, method, _fill(path, "", b_id), case, headers)
        unknown = await _send(browser, method, _fill(path, "", random_id), case, headers)
        assert foreign.status_code == 404
        _same_page(foreign, unknown, b_id, random_id)
        # B's own token, for contrast, does reach it (when it only reads).
        if method == "GET":
            own = await browser.client.get(_fill(path, "", b_id), headers=bearer(victim.api_token))
            assert own.status_code == 200
    elif case.kind == "scim":
        headers = bearer(attacker_scim_token)
        foreign = await _send(browser, method, _fill(path, "", b_id), case, headers)
        unknown = await _send(browser, method, _fill(path, "", random_id), case, headers)
        assert foreign.status_code == 404
        _same_page(foreign, unknown, b_id, random_id)
        if method == "GET":  # B's own directory, for contrast, does reach it
            own_token = bearer(victim.ids["scim_bearer"])
            own = await browser.client.get(_fill(path, "", b_id), headers=own_token)
            assert own.status_code == 200
    elif case.kind == "scim_static":
        assert case.why
        headers = bearer(attacker_scim_token)
        if case.serves:
            assert (await browser.client.get(case.serves, headers=headers)).status_code == 200
        refused = await browser.client.get(case.refuses, headers=headers)
        assert refused.status_code == 404
        assert refused.json()["status"] == "404"
    elif case.kind == "invitation_link":
        invented = "made-up-" + uuid4().hex
        foreign = await _send(
            browser, method, _fill(path, attacker.slug, token=victim.invitation_token), case
        )
        unknown = await _send(browser, method, _fill(path, attacker.slug, token=invented), case)
        assert foreign.status_code == 410
        _same_page(foreign, unknown, victim.invitation_token, invented)
        elsewhere = await _send(
            browser, method, _fill(path, nowhere, token=victim.invitation_token), case
        )
        assert elsewhere.status_code == 410
    elif case.kind == "logo":
        assert case.why
        theirs = await browser.client.get(_fill(path, b_slug))
        assert theirs.status_code == 200
        assert theirs.content == PNG  # B's logo is public under B's slug only
        mine = await browser.client.get(_fill(path, attacker.slug))
        missing = await browser.client.get(_fill(path, nowhere))
        assert mine.status_code == 404
        _same_page(mine, missing, attacker.slug, nowhere)
    elif case.kind == "global_link":
        assert case.why
        response = await _send(
            browser, method, _fill(path, "", token="made-up-" + uuid4().hex), case
        )
        assert response.status_code == (200 if method == "GET" else 410)
    elif case.kind == "sso_sign_in":
        assert case.why
        foreign = await _send(browser, method, _fill(path, attacker.slug, b_id), case)
        unknown = await _send(browser, method, _fill(path, attacker.slug, random_id), case)
        assert foreign.status_code == 404
        _same_page(foreign, unknown, b_id, random_id)
        missing = await _send(browser, method, _fill(path, nowhere, b_id), case)
        assert missing.status_code == 404
    else:
        assert case.kind == "public"
        assert case.why
        assert (await browser.client.get(case.serves)).status_code == 200
        assert (await browser.client.get(case.refuses)).status_code == 404
    assert await _snapshot(victim) == before
    assert await audit_actions(victim.tenant.id) == audit_before


async def test_tenant_a_lists_nothing_of_tenant_b(
    attacker: TenantFixture, attacker_owner: Browser, attacker_token: str, victim: Victim
) -> None:
    """The routes without ids: what A sees is A's alone."""
    b_emails = {victim.tenant.owner.email, victim.tenant.member.email}
    client = attacker_owner.client
    organization = await client.get("/api/v1/organization", headers=bearer(attacker_token))
    assert organization.json()["id"] == str(attacker.id)
    members = await client.get("/api/v1/members", headers=bearer(attacker_token))
    assert {m["email"] for m in members.json()["items"]} == {
        attacker.owner.email,
        attacker.member.email,
    }
    invitations = await client.get("/api/v1/invitations", headers=bearer(attacker_token))
    assert invitations.json() == []
    campaigns = await client.get("/api/v1/campaigns", headers=bearer(attacker_token))
    assert campaigns.json()["items"] == []
    learners = await client.get("/api/v1/learners", headers=bearer(attacker_token))
    assert learners.json()["items"] == []
    events = await client.get("/api/v1/audit", headers=bearer(attacker_token))
    assert events.status_code == 200
    assert events.json()["items"]  # A's own
    assert not [email for email in b_emails if email in events.text]
    assert str(victim.tenant.id) not in events.text
    # One organization: /o/ lands in it (e2613f6); the list is /o/?all=1.
    landing = await client.get("/o/")
    assert landing.status_code == 303
    assert landing.headers["location"] == f"/o/{attacker.slug}/"
    mine = await client.get("/o/", params={"all": "1"})
    assert attacker.slug in mine.text
    assert victim.tenant.slug not in mine.text
    for page in ("/", "/members", "/audit", "/tokens", "/settings", "/webhooks", "/tasks"):
        text = (await client.get(f"/o/{attacker.slug}{page}")).text
        assert not [email for email in b_emails if email in text], page
        assert victim.tenant.slug not in text


async def test_a_token_presented_under_another_tenants_id_is_refused(
    attacker_owner: Browser, attacker: TenantFixture, victim: Victim
) -> None:
    forged = victim.api_token.replace(victim.tenant.id.hex, attacker.id.hex)
    response = await attacker_owner.client.get("/api/v1/members", headers=bearer(forged))
    assert response.status_code == 401


async def test_a_directory_lists_nothing_of_another_tenant(
    attacker_owner: Browser, attacker_scim_token: str, victim: Victim
) -> None:
    """A's SCIM token lists A's directory only: B's people and groups are not there, even
    asked for by name."""
    headers = bearer(attacker_scim_token)
    client = attacker_owner.client
    for path in ("/scim/v2/Users", "/scim/v2/Groups"):
        listed = await client.get(path, headers=headers)
        assert listed.status_code == 200
        assert listed.json()["totalResults"] == 0
    named = await client.get(
        "/scim/v2/Users", params={"filter": 'userName sw "provisioned@"'}, headers=headers
    )
    assert named.json()["Resources"] == []
