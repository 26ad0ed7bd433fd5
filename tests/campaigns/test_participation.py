"""Participants' isolation: each participant function, across tenants and across people of one
tenant, answers as for an unknown id; the rows of one tenant stay invisible to another.

The other participant tests are in tests/campaigns/test_participation_*.py, one file per
module of campaigns.participation.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from campaigns import service
from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.landing import participant_context
from campaigns.participation.results import get_participation, share
from campaigns.participation.start import start_or_resume
from core import database
from core.errors import NotFound
from engine import Bank
from tests.campaigns.conftest import (
    Simulee,
    make_campaign,
    make_participant,
    start_a_test,
    take_test,
)
from tests.conftest import TenantFixture
from tests.db import as_tenant

# --- isolation -----------------------------------------------------------------------------


async def test_participant_functions_answer_not_found_across_tenants(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign, paula, participation, view = await start_a_test(tenant_a)
    # The same person, acting in tenant B, with tenant A's ids.
    in_b = participant_context(tenant_b.owner_ctx.tenant, paula.ctx.actor)
    with pytest.raises(NotFound):
        await start_or_resume(in_b, campaign.id)
    with pytest.raises(NotFound):
        await current_challenge(in_b, participation.id)
    with pytest.raises(NotFound):
        await answer(in_b, participation.id, view.challenge_id, skipped=True)
    with pytest.raises(NotFound):
        await share(in_b, participation.id, consent=True)
    with pytest.raises(NotFound):
        await get_participation(in_b, participation.id)
    # The same challenge, untouched by tenant B; a timed one's clock runs on meanwhile.
    still = await current_challenge(paula.ctx, participation.id)
    assert still is not None
    assert replace(still, seconds_left=view.seconds_left) == view


async def test_another_participant_of_the_same_tenant_cannot_reach_a_participation(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    other = await make_participant(tenant_a, "Oscar Other")
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    for call in (
        current_challenge(other.ctx, participation.id),
        answer(other.ctx, participation.id, view.challenge_id, skipped=True),
        share(other.ctx, participation.id, consent=True),
        get_participation(other.ctx, participation.id),
        current_challenge(other.ctx, "not-a-uuid"),
    ):
        with pytest.raises(NotFound):
            await call


async def test_the_participant_rows_of_a_tenant_are_invisible_to_another(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    await take_test(paula.ctx, participation.id, Simulee(test_bank, 0.0))
    for table in ("campaign", "learner", "participation", "assessment", "answer", "result"):
        async with as_tenant(tenant_b.id):
            rows = await database.fetch(f"SELECT tenant_id FROM {table}")  # noqa: S608
        assert tenant_a.id not in {row["tenant_id"] for row in rows}, table
    async with as_tenant(tenant_b.id):
        codes = await database.fetch(
            "SELECT organization_id FROM campaign_code WHERE code = $1", campaign.code
        )
    assert codes == [{"organization_id": tenant_a.id}]  # the routing table is global, by design


async def test_a_code_cannot_be_claimed_for_another_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with as_tenant(tenant_b.id):
            await service.claim_code(tenant_a.id, tenant_a.id, ["ABCDEFGH2"])


async def test_a_retake_in_another_campaign_does_not_count(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    one = await make_campaign(tenant_a)
    two = await make_campaign(tenant_a)
    paula = await make_participant(tenant_a)
    first = await start_or_resume(paula.ctx, one.id)
    await take_test(paula.ctx, first.id, Simulee(test_bank, 0.0))
    other = await start_or_resume(paula.ctx, two.id)
    assert (other.attempt, other.status) == (1, "started")
    assert datetime.now(UTC) - other.created_at < timedelta(minutes=5)


async def test_a_persons_rows_elsewhere_stay_hidden_inside_a_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    """Across organizations a person sees only their learner rows, and only with no tenant
    set (that is how "my results" finds their organizations, then reads each in its own
    transaction); participations are never read without their tenant. Inside tenant A's
    transaction, their learner and participation in tenant B are invisible."""
    person = await make_participant(tenant_b)
    campaign_b = await make_campaign(tenant_b)
    await start_or_resume(person.ctx, campaign_b.id)
    async with database.global_transaction(user_id=person.user_id):
        learners_everywhere = await database.fetch("SELECT tenant_id FROM learner")
        participations_everywhere = await database.fetch("SELECT tenant_id FROM participation")
    async with as_tenant(tenant_a.id, person.user_id):
        in_a = await database.fetch("SELECT tenant_id FROM participation")
        learners_in_a = await database.fetch("SELECT tenant_id FROM learner")
    assert [row["tenant_id"] for row in learners_everywhere] == [tenant_b.id]
    assert participations_everywhere == []
    assert tenant_b.id not in {row["tenant_id"] for row in in_a}
    assert tenant_b.id not in {row["tenant_id"] for row in learners_in_a}
