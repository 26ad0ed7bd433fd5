"""A participant back on the link of a campaign that has closed since they finished it (issue
14, gap 8): the closed-campaign page (410) with a link to their results, where before it was
a bare 410. Over HTTP, two tenants."""

from __future__ import annotations

from uuid import UUID, uuid4

from campaigns.service import archive_campaign, close_campaign
from core import database
from tests.api.conftest import Browser
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant


async def _participation(
    tenant: TenantFixture, campaign_id: UUID, user_id: UUID, status: str
) -> UUID:
    learner, participation = uuid4(), uuid4()
    async with as_tenant(tenant.id):
        await database.execute(
            "INSERT INTO learner (tenant_id, id, user_id, name) VALUES ($1, $2, $3, 'Pat')",
            tenant.id,
            learner,
            user_id,
        )
        await database.execute(
            """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt,
                   status, completed_at)
               VALUES ($1, $2, $3, $4, 1, $5, CASE WHEN $6 THEN now() END)""",
            tenant.id,
            participation,
            campaign_id,
            learner,
            status,
            status != "started",
        )
    return participation


async def test_a_finished_participant_gets_a_link_to_their_results(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, name="Closed since")
    pat = await make_user("Pat Participant")
    finished = await _participation(tenant_a, campaign.id, pat.id, "completed")
    await close_campaign(tenant_a.owner_ctx, campaign.id)
    await browser.login(pat)

    page = await browser.get(f"/c/{campaign.code}")
    assert page.status_code == 410
    assert "This campaign is closed." in page.text
    results = f"/p/{tenant_a.slug}/{finished}/results"
    assert f'href="{results}"' in page.text
    assert (await browser.get(results)).status_code == 200
    assert 'action="/c/' not in page.text  # no start form

    # Someone else, and a participant of another organization's closed campaign, get no link.
    other = await make_campaign(tenant_b, name="Theirs")
    await _participation(tenant_b, other.id, pat.id, "started")
    await close_campaign(tenant_b.owner_ctx, other.id)
    theirs = await browser.get(f"/c/{other.code}")
    assert theirs.status_code == 410
    assert "You have finished this test" not in theirs.text


async def test_without_a_finished_participation_the_page_is_the_plain_410(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    pat = await make_user("Pat Started")
    await _participation(tenant_a, campaign.id, pat.id, "started")
    await close_campaign(tenant_a.owner_ctx, campaign.id)
    anonymous = await browser.get(f"/c/{campaign.code}")
    assert anonymous.status_code == 410
    assert "This campaign is closed." in anonymous.text
    await browser.login(pat)
    started = await browser.get(f"/c/{campaign.code}")
    assert started.status_code == 410
    assert "You have finished this test" not in started.text
    # Another person who finished elsewhere sees no one else's results.
    stranger = await make_user("Stranger")
    await browser.login(stranger)
    assert "You have finished this test" not in (await browser.get(f"/c/{campaign.code}")).text


async def test_an_archived_campaign_offers_no_link(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    pat = await make_user("Pat Archived")
    await _participation(tenant_a, campaign.id, pat.id, "completed")
    await close_campaign(tenant_a.owner_ctx, campaign.id)
    await archive_campaign(tenant_a.owner_ctx, campaign.id)
    await browser.login(pat)
    page = await browser.get(f"/c/{campaign.code}")
    assert page.status_code == 410
    assert "You have finished this test" not in page.text
