"""A participant back on the link of a campaign that has closed since they finished it (issue
14, gap 8): the closed-campaign page (410) with a link to their results, where before it was
a bare 410. Over HTTP, two tenants."""

from __future__ import annotations

from campaigns.service import archive_campaign, close_campaign
from tests.api.conftest import Browser
from tests.campaigns.conftest import learner_participation, make_campaign
from tests.conftest import TenantFixture, make_user


async def test_a_finished_participant_gets_a_link_to_their_results(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, name="Closed since")
    pat = await make_user("Pat Participant")
    finished = await learner_participation(tenant_a, campaign.id, pat.id, "completed")
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
    await learner_participation(tenant_b, other.id, pat.id, "started")
    await close_campaign(tenant_b.owner_ctx, other.id)
    theirs = await browser.get(f"/c/{other.code}")
    assert theirs.status_code == 410
    assert "You have finished this test" not in theirs.text


async def test_without_a_finished_participation_the_page_is_the_plain_410(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    pat = await make_user("Pat Started")
    await learner_participation(tenant_a, campaign.id, pat.id, "started")
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
    await learner_participation(tenant_a, campaign.id, pat.id, "completed")
    await close_campaign(tenant_a.owner_ctx, campaign.id)
    await archive_campaign(tenant_a.owner_ctx, campaign.id)
    await browser.login(pat)
    page = await browser.get(f"/c/{campaign.code}")
    assert page.status_code == 410
    assert "You have finished this test" not in page.text
