"""The permission table, exactly, and its enforcement: every console form and every API write
refuses a plain `member` (in the API, a token carrying only what a member holds)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar

from core import database
from tenants.context import Actor, TenantContext, TenantSummary
from tenants.permissions import (
    ROLE_PERMISSIONS,
    TOKEN_SCOPES,
    Permission,
    Role,
    permissions_of,
)

# The HTTP fixtures live with the HTTP tests; the enforcement half of this module uses them.
from tests.api.conftest import (  # noqa: F401 - fixtures
    Browser,
    app,
    audit_actions,
    bearer,
    browser_on,
    issue_token,
)
from tests.api.test_isolation import api_endpoints, console_writes
from tests.conftest import TenantFixture, make_tenant
from tests.db import as_tenant

P = Permission


def test_roles_map_to_exactly_these_permissions() -> None:
    expected = {
        Role.OWNER: {
            P.ORGANIZATION_READ,
            P.ORGANIZATION_UPDATE,
            P.MEMBERS_READ,
            P.MEMBERS_INVITE,
            P.MEMBERS_UPDATE,
            P.MEMBERS_REMOVE,
            P.OWNERS_MANAGE,
            P.AUDIT_READ,
            P.TOKENS_MANAGE,
            P.CAMPAIGNS_READ,
            P.CAMPAIGNS_MANAGE,
            P.LEARNERS_READ,
            P.LEARNERS_IMPORT,
            P.RESULTS_READ,
            P.TASKS_READ,
            P.WEBHOOKS_MANAGE,
            P.SSO_MANAGE,
            P.BILLING_READ,
            P.BILLING_MANAGE,
        },
        Role.ADMIN: {
            P.ORGANIZATION_READ,
            P.ORGANIZATION_UPDATE,
            P.MEMBERS_READ,
            P.MEMBERS_INVITE,
            P.MEMBERS_UPDATE,
            P.MEMBERS_REMOVE,
            P.AUDIT_READ,
            P.TOKENS_MANAGE,
            P.CAMPAIGNS_READ,
            P.CAMPAIGNS_MANAGE,
            P.LEARNERS_READ,
            P.LEARNERS_IMPORT,
            P.RESULTS_READ,
            P.TASKS_READ,
            P.WEBHOOKS_MANAGE,
            P.SSO_MANAGE,
            P.BILLING_READ,
            P.BILLING_MANAGE,
        },
        Role.MEMBER: {
            P.ORGANIZATION_READ,
            P.MEMBERS_READ,
            P.CAMPAIGNS_READ,
            P.LEARNERS_READ,
            P.RESULTS_READ,
        },
    }
    assert expected == ROLE_PERMISSIONS


def test_every_role_and_every_permission_is_in_the_table() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert set().union(*ROLE_PERMISSIONS.values()) == set(Permission)


def test_permissions_are_named_scope_resource_action() -> None:
    for permission in Permission:
        scope, resource, action = permission.value.split(":")
        assert scope == "org"
        assert resource.isalpha()
        assert action.isalpha()


def test_tokens_never_manage_tokens_or_owners() -> None:
    expected = {
        P.ORGANIZATION_READ,
        P.MEMBERS_READ,
        P.MEMBERS_INVITE,
        P.MEMBERS_UPDATE,
        P.MEMBERS_REMOVE,
        P.AUDIT_READ,
        P.CAMPAIGNS_READ,
        P.LEARNERS_READ,
        P.RESULTS_READ,
    }
    assert expected == TOKEN_SCOPES


@pytest.mark.parametrize("role", [*list(Role), "OWNER", "", "staff", "owner "])
def test_permissions_of_a_role_name(role: str) -> None:
    expected = ROLE_PERMISSIONS[Role(role)] if role in set(Role) else frozenset()
    assert permissions_of(role) == expected


def test_a_context_requires_what_its_role_grants() -> None:
    from core.errors import Forbidden

    tenant = TenantSummary(uuid4(), "t", "T", "trial", "en", "UTC", None, False)
    ctx = TenantContext(tenant, Actor(kind="user"), permissions_of("member"), "member")
    ctx.require(P.MEMBERS_READ)
    with pytest.raises(Forbidden):
        ctx.require(P.MEMBERS_INVITE)


# --- enforcement over HTTP -------------------------------------------------------------


@pytest.fixture(scope="module")
async def tenant(db: str) -> TenantFixture:
    return await make_tenant("Guarded")


@pytest.fixture(scope="module")
async def member(app: Litestar, tenant: TenantFixture) -> AsyncIterator[Browser]:  # noqa: F811
    async with browser_on(app) as browser:
        await browser.login(tenant.member)
        yield browser


@pytest.fixture(scope="module")
async def targets(tenant: TenantFixture) -> dict[str, str]:
    """Ids of the tenant's objects that the refused requests aim at."""
    from campaigns.campaign_fields import CampaignFields
    from campaigns.service import create_campaign
    from core.settings import get_settings
    from tenants.invitations import invite
    from tenants.tokens import create_token

    invitation = await invite(tenant.owner_ctx, "guarded@example.org", "member", get_settings())
    token = await create_token(tenant.owner_ctx, "guarded", ["org:members:read"], None)
    campaign = await create_campaign(
        tenant.owner_ctx, CampaignFields(name="Guarded", profile_key="digcomp")
    )
    async with as_tenant(tenant.id):
        owner = await database.fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant.id,
            tenant.owner.id,
        )
    from campaigns.target_profiles import TargetProfileFields, create_target_profile
    from tenants.webhooks.endpoints import EndpointFields, create_endpoint

    profile = await create_target_profile(tenant.owner_ctx, TargetProfileFields("Guarded", ["1.1"]))
    endpoint = await create_endpoint(tenant.owner_ctx, EndpointFields("https://example.org/g"))
    delivery = uuid4()
    async with as_tenant(tenant.id):
        await database.execute(
            """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type, event_id,
                   payload, status, next_attempt_at)
               VALUES ($1, $2, $3, 'ping', $4, '{}', 'failed', NULL)""",
            tenant.id,
            delivery,
            endpoint,
            uuid4(),
        )
    async with as_tenant(tenant.id):
        # A learner with an address, so that a campaign invitation let through would write.
        await database.execute(
            "INSERT INTO learner (tenant_id, id, name, email) VALUES ($1, $2, 'Lea', $3)",
            tenant.id,
            uuid4(),
            "lea-guarded@example.org",
        )
    # Removing someone else's membership: leaving one's own is open to every member.
    return {
        "membership_id": str(owner[0]["id"]),
        "invitation_id": str(invitation),
        "token_id": str(token.id),
        "campaign_id": str(campaign.id),
        "profile_id": str(profile.id),
        "endpoint_id": str(endpoint),
        "delivery_id": str(delivery),
        # The SSO objects need not exist: the guard refuses a member before any is read.
        "connection_id": str(uuid4()),
        "domain_id": str(uuid4()),
        "mapping_id": str(uuid4()),
    }


CONSOLE_FORMS: dict[str, dict[str, str]] = {
    "/o/{slug}/members/invite": {"email": "refused@example.org", "role": "member"},
    "/o/{slug}/members/{membership_id}/role": {"role": "admin"},
    "/o/{slug}/members/{membership_id}/remove": {"confirm": "yes"},
    "/o/{slug}/invitations/{invitation_id}/resend": {},
    "/o/{slug}/invitations/{invitation_id}/revoke": {},
    "/o/{slug}/settings": {"name": "Refused", "default_locale": "en", "brand_colour": ""},
    "/o/{slug}/tokens": {"name": "Refused", "scopes": "org:members:read"},
    "/o/{slug}/tokens/{token_id}/revoke": {"confirm": "yes"},
    "/o/{slug}/campaigns": {"name": "Refused", "type": "assessment", "target_profile": "x:y"},
    "/o/{slug}/campaigns/{campaign_id}/close": {"confirm": "yes"},
    "/o/{slug}/campaigns/{campaign_id}/invite": {"group": "", "reminders": "3"},
    "/o/{slug}/learners/import": {},
    "/o/{slug}/campaigns/{campaign_id}/archive": {"confirm": "yes"},
    "/o/{slug}/campaigns/{campaign_id}/activate": {},
    "/o/{slug}/campaigns/{campaign_id}/duplicate": {},
    "/o/{slug}/campaigns/{campaign_id}/edit": {"name": "Refused", "target_profile": "x:y"},
    "/o/{slug}/target-profiles": {"name": "Refused", "competences": "1.1"},
    "/o/{slug}/target-profiles/{profile_id}": {"name": "Refused", "competences": "1.1"},
    "/o/{slug}/target-profiles/{profile_id}/archive": {},
    "/o/{slug}/webhooks": {"url": "https://example.org/refused", "events": "campaign.closed"},
    "/o/{slug}/webhooks/{endpoint_id}": {"url": "https://example.org/r", "events": "ping"},
    "/o/{slug}/webhooks/{endpoint_id}/enable": {},
    "/o/{slug}/webhooks/{endpoint_id}/disable": {},
    "/o/{slug}/webhooks/{endpoint_id}/test": {},
    "/o/{slug}/webhooks/{endpoint_id}/delete": {},
    "/o/{slug}/webhooks/{endpoint_id}/secret": {},
    "/o/{slug}/webhooks/{endpoint_id}/rotate": {},
    "/o/{slug}/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": {},
    "/o/{slug}/sso/oidc/new": {"name": "Refused", "issuer": "https://idp.example.org"},
    "/o/{slug}/sso/oidc/{connection_id}": {"name": "Refused"},
    "/o/{slug}/sso/saml/new": {"name": "Refused"},
    "/o/{slug}/sso/saml/{connection_id}": {"name": "Refused"},
    "/o/{slug}/sso/connections/{connection_id}/enable": {},
    "/o/{slug}/sso/connections/{connection_id}/disable": {},
    "/o/{slug}/sso/connections/{connection_id}/delete": {},
    "/o/{slug}/sso/domains": {"domain": "refused.example.org"},
    "/o/{slug}/sso/domains/{domain_id}/publish": {},
    "/o/{slug}/sso/domains/{domain_id}/verify": {},
    "/o/{slug}/sso/domains/{domain_id}/delete": {},
    "/o/{slug}/sso/policy": {"sso_required": "yes"},
    "/o/{slug}/sso/scim/tokens": {"name": "Refused"},
    "/o/{slug}/sso/scim/tokens/{token_id}/revoke": {},
    "/o/{slug}/sso/scim/mappings": {"group": "Refused", "role": "admin"},
    "/o/{slug}/sso/scim/mappings/{mapping_id}/remove": {},
    "/o/{slug}/billing/subscribe": {"plan": "refused", "method": "invoice"},
    "/o/{slug}/billing/preview": {"quantity": "5"},
    "/o/{slug}/billing/change": {"quantity": "5"},
    "/o/{slug}/billing/cancel": {},
    "/o/{slug}/billing/portal": {},
    "/o/{slug}/billing/profile": {"legal_name": "Refused"},
}

#: Forms every member may submit, and why.
OPEN_TO_MEMBERS: dict[str, str] = {
    "/o/{slug}/campaigns/{campaign_id}/exports": "members read results, and so export them",
}

API_WRITES: dict[tuple[str, str], dict[str, str] | None] = {
    ("PATCH", "/api/v1/members/{membership_id}"): {"role": "admin"},
    ("DELETE", "/api/v1/members/{membership_id}"): None,
    ("POST", "/api/v1/invitations"): {"email": "refused@example.org"},
    ("POST", "/api/v1/invitations/{invitation_id}/resend"): None,
    ("DELETE", "/api/v1/invitations/{invitation_id}"): None,
}


def test_every_console_form_and_api_write_is_in_the_tables(app: Litestar) -> None:  # noqa: F811
    assert {("POST", path) for path in CONSOLE_FORMS | OPEN_TO_MEMBERS} == console_writes(app)
    assert set(API_WRITES) == {(m, p) for m, p in api_endpoints(app) if m != "GET"}


async def _state(tenant: TenantFixture) -> dict[str, Any]:
    async with as_tenant(tenant.id):
        return {
            "members": await database.fetch(
                "SELECT id, role FROM membership WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "invitations": await database.fetch(
                "SELECT id, token_hash, revoked_at FROM invitation WHERE tenant_id = $1",
                tenant.id,
            ),
            "tokens": await database.fetch(
                "SELECT id, revoked_at FROM api_token WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "organization": await database.fetch(
                "SELECT name, brand_colour FROM organization WHERE id = $1", tenant.id
            ),
            "campaigns": await database.fetch(
                "SELECT id, name, status FROM campaign WHERE tenant_id = $1 ORDER BY id", tenant.id
            ),
            "campaign_invitations": await database.fetch(
                "SELECT count(*) FROM campaign_invitation WHERE tenant_id = $1", tenant.id
            ),
            "webhooks": await database.fetch(
                "SELECT id, url, events, enabled, secret FROM webhook_endpoint "
                "WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
            "webhook_deliveries": await database.fetch(
                "SELECT id, status FROM webhook_delivery WHERE tenant_id = $1 ORDER BY id",
                tenant.id,
            ),
        }


@pytest.mark.parametrize("path", sorted(CONSOLE_FORMS))
async def test_a_member_is_refused_every_console_form(
    member: Browser, tenant: TenantFixture, targets: dict[str, str], path: str
) -> None:
    before, audit_before = await _state(tenant), await audit_actions(tenant.id)
    url = path.format(slug=tenant.slug, **targets)
    response = await member.client.post(
        url, data={"_csrf_token": member.csrf, **CONSOLE_FORMS[path]}
    )
    assert response.status_code == 403
    assert "You do not have permission to do this." in response.text
    assert await _state(tenant) == before
    assert await audit_actions(tenant.id) == audit_before


async def test_a_member_may_export_the_results_they_read(
    member: Browser, tenant: TenantFixture, targets: dict[str, str]
) -> None:
    """The one console form of `OPEN_TO_MEMBERS`: it starts a task of the member's own."""
    url = "/o/{slug}/campaigns/{campaign_id}/exports".format(slug=tenant.slug, **targets)
    response = await member.client.post(url, data={"_csrf_token": member.csrf, "format": "csv"})
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/o/{tenant.slug}/tasks/")
    assert (await member.client.get(response.headers["location"])).status_code == 200


@pytest.mark.parametrize(("method", "path"), sorted(API_WRITES))
async def test_a_token_holding_a_members_permissions_is_refused_every_api_write(
    member: Browser, tenant: TenantFixture, targets: dict[str, str], method: str, path: str
) -> None:
    member_scopes = ROLE_PERMISSIONS[Role.MEMBER] & TOKEN_SCOPES
    token = await issue_token(tenant.owner_ctx, *sorted(member_scopes))
    before, audit_before = await _state(tenant), await audit_actions(tenant.id)
    response = await member.client.request(
        method, path.format(**targets), json=API_WRITES[(method, path)], headers=bearer(token)
    )
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This token does not have the required scope."
    assert await _state(tenant) == before
    assert await audit_actions(tenant.id) == audit_before
