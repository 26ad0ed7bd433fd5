"""Participants' links: a campaign code, what it opens (campaigns.participation.landing).

Two tenants in every test that touches data; the bank is the suite's small test bank
(tests/campaigns/conftest.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaigns import service
from campaigns.participation.landing import participant_context, resolve_code
from core import database
from core.errors import Conflict, Gone, NotFound, Unauthenticated
from tenants.context import Actor
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture
from tests.db import as_tenant


async def _set_campaign(tenant: TenantFixture, campaign_id: object, sql: str) -> None:
    """Test set-up that the service cannot do (dates in the past), as the runtime role."""
    async with as_tenant(tenant.id):
        await database.execute(
            f"UPDATE campaign SET {sql} WHERE tenant_id = $1 AND id = $2",  # noqa: S608
            tenant.id,
            campaign_id,
        )


# --- the code ------------------------------------------------------------------------------


async def test_a_code_resolves_to_its_campaign_and_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, landing_text="Welcome!\nTake your time.")
    landing = await resolve_code(campaign.code.lower()[:4] + " " + campaign.code.lower()[4:])
    assert landing.campaign_id == campaign.id
    assert landing.tenant.id == tenant_a.id
    assert landing.tenant.slug == tenant_a.slug
    assert landing.landing_text == "Welcome!\nTake your time."
    assert landing.locales == ("fr", "en")


async def test_unknown_mistyped_and_draft_codes_are_not_found_alike(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    draft = await make_campaign(tenant_b, draft=True)
    typo = campaign.code[:3] + ("A" if campaign.code[3] != "A" else "B") + campaign.code[4:]
    for code in ("", "nothing", typo, "AAAAAAAAA", draft.code):
        with pytest.raises(NotFound) as caught:
            await resolve_code(code)
        assert caught.value.message == "No campaign has this code. Check it and try again."


async def test_closed_archived_ended_and_future_campaigns_refuse_their_code(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    closed = await make_campaign(tenant_a)
    await service.close_campaign(tenant_a.owner_ctx, closed.id)
    archived = await make_campaign(tenant_a)
    await service.archive_campaign(tenant_a.owner_ctx, archived.id)
    ended = await make_campaign(tenant_a)
    await _set_campaign(tenant_a, ended.id, "closes_at = now() - interval '1 day'")
    future = await make_campaign(
        tenant_b, opens_at=datetime(2099, 1, 2, 9, tzinfo=UTC), closes_at=None
    )
    with pytest.raises(Gone, match="closed"):
        await resolve_code(closed.code)
    with pytest.raises(Gone, match="closed"):
        await resolve_code(archived.code)
    with pytest.raises(Gone, match="ended"):
        await resolve_code(ended.code)
    with pytest.raises(Conflict) as caught:
        await resolve_code(future.code)
    assert caught.value.params == {"date": "2099-01-02"}


async def test_a_suspended_organization_closes_its_campaigns(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    async with database.global_transaction():
        await database.execute(
            "UPDATE organization SET status = 'suspended' WHERE id = $1", tenant_a.id
        )
    with pytest.raises(Gone):
        await resolve_code(campaign.code)


# --- the participant's context -------------------------------------------------------------


async def test_a_participant_signed_in_is_required(tenant_a: TenantFixture) -> None:
    with pytest.raises(Unauthenticated):
        participant_context(tenant_a.owner_ctx.tenant, Actor(kind="api_token", label="t"))
