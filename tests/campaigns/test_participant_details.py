"""The console's participant page reads one participation as the participants table shows
it (the same row, levels only once shared), plus the answers, the competences and the
other attempts; another organization's participation is unknown."""

from __future__ import annotations

import pytest

from campaigns.campaign_listing import CompetenceLevel, list_participations
from campaigns.participant_details import participant_detail
from core.errors import NotFound
from tests.campaigns.conftest import make_campaign
from tests.campaigns.listing_helpers import seed
from tests.conftest import TenantFixture


async def test_a_participant_reads_as_the_participants_table_shows_them(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    # Started, completed (with a result it has not shared), shared: `seed`'s cycle.
    created = await seed(tenant_a, campaign.id, 3, groups=("Sales",))
    ctx = tenant_a.member_ctx
    listed = {row.id: row for row in (await list_participations(ctx, campaign.id)).items}
    details = [await participant_detail(ctx, campaign.id, ident) for ident in created]
    assert [detail.participation for detail in details] == [listed[i] for i in created]
    started, completed, shared = details
    for unshared in (started, completed):
        assert (unshared.participation.level, unshared.participation.score) == (None, None)
        assert unshared.competences == ()
    assert completed.participation.status == "completed"
    assert (shared.participation.level, shared.participation.score) == (2, 20)
    assert shared.competences == (CompetenceLevel("1.1", 2), CompetenceLevel("1.2", 3))
    assert shared.participation.groups == ["Sales"]
    assert (shared.answers, shared.other_attempts) == (0, ())


async def test_another_organizations_participant_is_unknown(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    (participation,) = await seed(tenant_a, campaign.id, 1)
    with pytest.raises(NotFound):
        await participant_detail(tenant_b.owner_ctx, campaign.id, participation)
