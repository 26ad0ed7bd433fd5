"""A participant's results: sharing them, and their own participations everywhere
(campaigns.participation.results).

Two tenants in every test that touches data; the bank is the suite's small test bank
(tests/campaigns/conftest.py).
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from campaigns import service
from campaigns.participation.landing import participant_context
from campaigns.participation.results import OwnParticipation, my_participations, share
from campaigns.participation.start import start_or_resume
from core import database
from core.errors import Conflict, Invalid
from engine import Bank
from tests.campaigns.conftest import Simulee, make_campaign, make_participant, take_test
from tests.conftest import TenantFixture
from tests.db import as_tenant

# --- sharing -------------------------------------------------------------------------------


async def test_sharing_needs_consent_and_a_finished_test(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    with pytest.raises(Conflict, match="Finish the test"):
        await share(paula.ctx, participation.id, consent=True)
    await take_test(paula.ctx, participation.id, Simulee(test_bank, 0.0))
    with pytest.raises(Invalid) as caught:
        await share(paula.ctx, participation.id, consent=False)
    assert caught.value.field == "consent"
    shared = await share(paula.ctx, participation.id, consent=True)
    assert shared.status == "shared"
    assert shared.shared_at is not None
    again = await share(paula.ctx, participation.id, consent=True)
    assert again.shared_at == shared.shared_at
    async with as_tenant(tenant_a.id):
        events = await database.fetch(
            "SELECT actor_user_id, target_id FROM audit_event WHERE tenant_id = $1 "
            "AND action = 'participation.shared'",
            tenant_a.id,
        )
    assert events == [{"actor_user_id": paula.user_id, "target_id": str(participation.id)}]


# --- their own participations --------------------------------------------------------------


async def test_my_participations_lists_every_organization_newest_first_without_archived(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    paula = await make_participant(tenant_a)
    in_b = participant_context(tenant_b.owner_ctx.tenant, paula.ctx.actor)
    first = await start_or_resume(paula.ctx, (await make_campaign(tenant_a, name="In A")).id)
    await take_test(paula.ctx, first.id, Simulee(test_bank, 0.0))
    second = await start_or_resume(in_b, (await make_campaign(tenant_b, name="In B")).id)
    archived = await make_campaign(tenant_b, name="Archived")
    await start_or_resume(in_b, archived.id)
    await service.archive_campaign(tenant_b.owner_ctx, archived.id)
    someone_else = await make_participant(tenant_a, "Oscar Other")
    await start_or_resume(someone_else.ctx, (await make_campaign(tenant_a, name="Not")).id)

    mine = await my_participations(paula.user_id)

    assert all(isinstance(p, OwnParticipation) for p in mine)
    assert [(p.id, p.campaign_name, p.slug, p.organization_name) for p in mine] == [
        (second.id, "In B", tenant_b.slug, tenant_b.owner_ctx.tenant.name),
        (first.id, "In A", tenant_a.slug, tenant_a.owner_ctx.tenant.name),
    ]
    started, finished = mine
    assert (started.status, started.attempt, started.level, started.score) == (
        "started",
        1,
        None,
        None,
    )
    assert started.completed_at is None
    assert finished.status == "completed"
    assert finished.campaign_type == "assessment"
    assert finished.level is not None
    assert finished.score is not None
    assert finished.completed_at is not None
    assert finished.created_at < started.created_at
    with pytest.raises(FrozenInstanceError):
        finished.level = 8  # type: ignore[misc]
