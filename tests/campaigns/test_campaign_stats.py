"""A campaign's statistics: the funnel counts learners once, levels come only from shared
results (the latest shared attempt of each learner), another tenant's campaign is unknown, and
the reading costs a fixed number of statements."""

from __future__ import annotations

import asyncio

import pytest

from campaigns.campaign_stats import campaign_stats
from campaigns.participation.results import share
from campaigns.participation.start import start_or_resume
from core.errors import NotFound
from engine import Bank
from tests.campaigns.conftest import Simulee, make_campaign, make_participant, take_test
from tests.conftest import TenantFixture


async def test_stats_count_learners_and_average_shared_results_only(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a, retake_allowed=True)
    shared_levels = []
    for i, theta in enumerate((-1.5, 0.0, 1.5)):
        person = await make_participant(tenant_a, f"Sharer {i}")
        participation = await start_or_resume(person.ctx, campaign.id)
        await take_test(person.ctx, participation.id, Simulee(test_bank, theta, seed=i))
        view = await share(person.ctx, participation.id, consent=True)
        assert view.result is not None
        shared_levels.append(view.result)
    keeper = await make_participant(tenant_a, "Keeper")
    kept = await start_or_resume(keeper.ctx, campaign.id)
    await take_test(keeper.ctx, kept.id, Simulee(test_bank, 3.0))
    starter = await make_participant(tenant_a, "Starter")
    await start_or_resume(starter.ctx, campaign.id)
    other = await make_campaign(tenant_b)  # another tenant's campaign, with a sharer
    outsider = await make_participant(tenant_b, "Outsider")
    theirs = await start_or_resume(outsider.ctx, other.id)
    await take_test(outsider.ctx, theirs.id, Simulee(test_bank, 0.0))
    await share(outsider.ctx, theirs.id, consent=True)

    stats = await campaign_stats(tenant_a.owner_ctx, campaign.id)
    assert (stats.started, stats.completed, stats.shared) == (5, 4, 3)
    assert stats.average_score == pytest.approx(sum(r.score for r in shared_levels) / 3)
    assert set(stats.competences) == {"1.1", "1.2", "4.1"}
    for code, comp in stats.competences.items():
        levels = [r.competences[code]["level"] for r in shared_levels]
        assert comp.average_level == pytest.approx(sum(levels) / 3)
        assert len(comp.distribution) == 9
        assert sum(comp.distribution) == 3
        assert all(comp.distribution[level] >= 1 for level in levels)
    with pytest.raises(NotFound):
        await campaign_stats(tenant_b.owner_ctx, campaign.id)


async def test_stats_of_a_campaign_nobody_took(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    stats = await campaign_stats(tenant_a.owner_ctx, campaign.id)
    assert (stats.started, stats.completed, stats.shared) == (0, 0, 0)
    assert stats.average_score is None
    assert stats.competences == {}


async def test_stats_cost_a_fixed_number_of_statements(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank, statements: list[str]
) -> None:
    campaign = await make_campaign(tenant_a)
    counts = []
    for i in range(3):
        person = await make_participant(tenant_a, f"Person {i}")
        participation = await start_or_resume(person.ctx, campaign.id)
        await take_test(person.ctx, participation.id, Simulee(test_bank, 0.0, seed=i))
        await share(person.ctx, participation.id, consent=True)
        statements.clear()
        await campaign_stats(tenant_a.owner_ctx, campaign.id)
        await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
        counts.append(len(statements))
    assert counts == [4, 4, 4]  # BEGIN with two SET LOCAL, counts, levels, COMMIT
