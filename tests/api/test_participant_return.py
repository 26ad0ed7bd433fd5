"""A participant coming back (issue 14, gap 8): the campaign's link after finishing leads to
the results, not the identifier form again; a participant without an organization lands on
their results, not on "create an organization". Over HTTP, two tenants."""

from __future__ import annotations

from tests.api.conftest import Browser
from tests.campaigns.conftest import learner_participation, make_campaign
from tests.conftest import TenantFixture, make_user


async def test_the_link_after_finishing_leads_to_the_results(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, external_id_label="Staff number")
    theirs = await make_campaign(tenant_b, external_id_label="Staff number")
    pat = await make_user("Pat Participant")
    finished = await learner_participation(
        tenant_a, campaign.id, pat.id, "completed", external_id="E-1"
    )
    await browser.login(pat)

    page = await browser.get(f"/c/{campaign.code}")
    assert page.status_code == 200
    assert "You have finished this test" in page.text
    assert f'href="/p/{tenant_a.slug}/{finished}/results"' in page.text
    assert 'name="external_id"' not in page.text
    # Another organization's campaign, not taken: the start form as before.
    other = await browser.get(f"/c/{theirs.code}")
    assert 'name="external_id"' in other.text
    assert "You have finished this test" not in other.text


async def test_a_test_in_progress_keeps_the_start_form(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    pat = await make_user("Pat Participant")
    await learner_participation(tenant_a, campaign.id, pat.id, "started", external_id="E-1")
    await browser.login(pat)
    page = await browser.get(f"/c/{campaign.code}")
    assert "You have finished this test" not in page.text
    assert f'action="/c/{campaign.code}/start"' in page.text


async def test_a_participant_lands_on_their_results_not_on_create_an_organization(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    pat = await make_user("Pat Participant")
    await learner_participation(tenant_a, campaign.id, pat.id, "completed", external_id="E-1")
    signed_in = await browser.login(pat)
    assert signed_in.headers["location"] in ("/", "/o/")
    landing = await browser.get("/o/")
    assert landing.status_code == 303
    assert landing.headers["location"] == "/me/results"
    home = await browser.get("/")
    assert home.status_code == 303
    mine = await browser.get("/me/results")
    assert mine.status_code == 200
    assert "Create an organization" not in mine.text


async def test_an_organizer_still_sees_their_organizations(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await learner_participation(
        tenant_a, campaign.id, tenant_a.member.id, "completed", external_id="E-1"
    )
    await browser.login(tenant_a.member)
    # Their one organization, not their results (gap 6: one organization lands in it)...
    landing = await browser.get("/o/")
    assert (landing.status_code, landing.headers["location"]) == (303, f"/o/{tenant_a.slug}/")
    # ...and the list when asked for.
    page = await browser.get("/o/?all=1")
    assert page.status_code == 200
    assert tenant_a.owner_ctx.tenant.name in page.text


async def test_someone_with_nothing_yet_may_create_an_organization(browser: Browser) -> None:
    newcomer = await make_user("New Comer")
    await browser.login(newcomer)
    page = await browser.get("/o/")
    assert page.status_code == 200
    assert "Create an organization" in page.text
