"""SSO-required campaigns, end to end against the real OpenID provider of `tests/peers/oidc`:
the campaign form offers the option once a connection is enabled; a participant is sent
through the organization's provider, provisioned without a membership, and starts with the
identifier the provider gave."""

from __future__ import annotations

from urllib.parse import urlsplit
from uuid import UUID

from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.service import create_campaign, get_campaign
from core.database import fetch
from core.settings import get_settings
from tests.api.conftest import Browser
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso import conftest as sso_fixtures
from tests.sso.conftest import OidcPeer, peer_connection
from tests.sso.seeding import add_connection, add_verified_domain, unique_domain


async def _peer_connection(peer: OidcPeer, tenant: TenantFixture, claim: str = "") -> UUID:
    """An enabled connection of `tenant` to the provider, its external id read from `claim`."""
    return await peer_connection(
        peer,
        tenant,
        name="Company account",
        # the peer releases employee_id under its "employee" scope
        scopes="openid email profile employee",
        external_id_claim=claim,
    )


#: The real OpenID provider, started once per session (a fixture of tests/sso).
oidc_peer = sso_fixtures.oidc_peer


def _local(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == get_settings().base_url
    return f"{parts.path}?{parts.query}"


async def _campaign(tenant: TenantFixture, **values: object) -> Campaign:
    fields = CampaignFields(name="SSO campaign", profile_key="digcomp", **values)  # type: ignore[arg-type]
    return await create_campaign(tenant.owner_ctx, fields)


async def test_a_participant_goes_through_the_provider_and_starts_with_its_identifier(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection_id = await _peer_connection(oidc_peer, tenant_a, claim="employee_id")
    campaign = await _campaign(tenant_a, sso_required=True, external_id_label="Employee number")
    login = f"pat@{domain}"
    oidc_peer.set_claims(login, {"employee_id": "E-4711"})

    landing = await browser.get(f"/c/{campaign.code}")
    assert landing.status_code == 200
    assert f"/c/{campaign.code}/sso?connection={connection_id}" in landing.text
    assert f"/c/{campaign.code}/start" not in landing.text

    to_start = await browser.client.get(f"/c/{campaign.code}/sso?connection={connection_id}")
    assert to_start.status_code == 303
    start = to_start.headers["location"]
    assert start == f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?next=/c/{campaign.code}"
    to_provider = await browser.client.get(start)
    assert to_provider.status_code == 303
    back = await oidc_peer.log_in(to_provider.headers["location"], login)
    returned = await browser.client.get(_local(back))
    assert returned.status_code == 303, returned.text
    assert returned.headers["location"] == f"/c/{campaign.code}"

    ready = await browser.get(f"/c/{campaign.code}")
    assert f"/c/{campaign.code}/start" in ready.text
    assert "E-4711" in ready.text
    started = await browser.post(f"/c/{campaign.code}/start", {}, page=f"/c/{campaign.code}")
    assert started.status_code == 303, started.text
    assert started.headers["location"].startswith(f"/p/{tenant_a.slug}/")

    async with as_tenant(tenant_a.id):
        rows = await fetch(
            """SELECT p.external_id, l.user_id FROM participation p
               JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
               WHERE p.tenant_id = $1 AND p.campaign_id = $2""",
            tenant_a.id,
            campaign.id,
        )
        memberships = await fetch(
            "SELECT 1 FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant_a.id,
            rows[0]["user_id"],
        )
    assert rows[0]["external_id"] == "E-4711"
    assert memberships == []  # a participant, not a member


async def test_a_password_sign_in_does_not_open_an_sso_required_campaign(
    tenant_a: TenantFixture, browser: Browser
) -> None:
    await add_connection(tenant_a.id)
    campaign = await _campaign(tenant_a, sso_required=True)
    await browser.login(tenant_a.member)
    landing = await browser.get(f"/c/{campaign.code}")
    assert f"/c/{campaign.code}/sso?connection=" in landing.text
    posted = await browser.post(f"/c/{campaign.code}/start", {}, page=f"/c/{campaign.code}")
    assert posted.status_code == 303  # Post/Redirect/Get: the campaign's page says why
    refused = await browser.get(posted.headers["location"])
    assert refused.status_code == 403
    assert "sign in with your organization" in refused.text


async def test_an_sso_sign_in_through_another_organization_does_not_count(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, tenant_b: TenantFixture, browser: Browser
) -> None:
    theirs = await _peer_connection(oidc_peer, tenant_b)
    await add_connection(tenant_a.id)
    campaign = await _campaign(tenant_a, sso_required=True)
    start = f"/sso/{tenant_b.slug}/oidc/{theirs}/start"
    back = await oidc_peer.log_in(
        (await browser.client.get(start)).headers["location"], tenant_b.member.email
    )
    assert (await browser.client.get(_local(back))).status_code == 303
    posted = await browser.post(f"/c/{campaign.code}/start", {}, page=f"/c/{campaign.code}")
    assert posted.status_code == 303  # Post/Redirect/Get: the campaign's page says why
    refused = await browser.get(posted.headers["location"])
    assert refused.status_code == 403


async def test_the_campaign_form_offers_sso_once_a_connection_is_enabled(
    tenant_a: TenantFixture, browser: Browser
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/campaigns"
    without = await browser.get(page)
    assert 'name="sso_required" value="yes" disabled' in without.text
    form = {
        "name": "Staff check",
        "type": "assessment",
        "target_profile": "catalogue:digcomp",
        "locales": "en",
        "sso_required": "yes",
    }
    ignored = await browser.post(page, form, page=page)
    assert ignored.status_code == 303
    first = await get_campaign(tenant_a.owner_ctx, ignored.headers["location"].rsplit("/", 1)[1])
    assert not first.sso_required

    await add_connection(tenant_a.id)
    offered = await browser.get(page)
    assert 'name="sso_required" value="yes" disabled' not in offered.text
    created = await browser.post(page, form, page=page)
    assert created.status_code == 303
    second = await get_campaign(tenant_a.owner_ctx, created.headers["location"].rsplit("/", 1)[1])
    assert second.sso_required
    edit = f"/o/{tenant_a.slug}/campaigns/{second.id}/edit"
    shown = await browser.get(edit)
    assert 'value="yes"  checked' in shown.text or 'value="yes" checked' in shown.text


async def test_a_refused_provisioning_is_explained_audited_and_signs_nobody_in(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    connection_id = await _peer_connection(oidc_peer, tenant_a)
    stranger = f"stranger@{unique_domain('elsewhere')}"
    start = f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?next=/o/"
    back = await oidc_peer.log_in((await browser.client.get(start)).headers["location"], stranger)
    refused = await browser.client.get(_local(back))
    assert refused.status_code == 403
    assert "Ask its administrator to invite you." in refused.text
    assert "provisioning.domain" in refused.text
    assert (await browser.client.get("/account")).status_code == 303
    async with as_tenant(tenant_a.id):
        rows = await fetch(
            """SELECT details FROM audit_event WHERE tenant_id = $1 AND action = 'sso.refused'
               ORDER BY occurred_at DESC LIMIT 1""",
            tenant_a.id,
        )
    assert '"provisioning.domain"' in rows[0]["details"]


async def test_a_campaign_sign_in_refused_leaves_no_campaign_mark_behind(
    oidc_peer: OidcPeer, tenant_a: TenantFixture, browser: Browser
) -> None:
    """A refused campaign sign-in must not make the next console sign-in a campaign one
    (which would skip the membership)."""
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection_id = await _peer_connection(oidc_peer, tenant_a)
    campaign = await _campaign(tenant_a, sso_required=True)
    to_start = await browser.client.get(f"/c/{campaign.code}/sso?connection={connection_id}")
    to_provider = await browser.client.get(to_start.headers["location"])
    stranger = f"stranger@{unique_domain('elsewhere')}"
    back = await oidc_peer.log_in(to_provider.headers["location"], stranger)
    assert (await browser.client.get(_local(back))).status_code == 403
    start = f"/sso/{tenant_a.slug}/oidc/{connection_id}/start?next=/o/{tenant_a.slug}/"
    newcomer = f"newcomer@{domain}"
    back = await oidc_peer.log_in((await browser.client.get(start)).headers["location"], newcomer)
    signed_in = await browser.client.get(_local(back))
    assert signed_in.status_code == 303
    assert (await browser.client.get(f"/o/{tenant_a.slug}/")).status_code == 200  # a member
