"""A new organization's first steps over HTTP (issue 14, gap 6): its dashboard shows its
figures, zeros at first, and a prompt to create the first campaign that links the form and
says what happens next; a person who belongs to one organization lands in it after sign-in
and from the home page, not on the list of organizations."""

from __future__ import annotations

import re
from uuid import uuid4

from campaigns.campaign_fields import CampaignFields
from campaigns.service import create_campaign
from tenants.context import Actor
from tenants.members import add_member
from tenants.organizations import OrganizationFields, create_organization, member_context
from tests.api.conftest import PASSWORD, Browser
from tests.campaigns.test_exports import add_shared_results
from tests.conftest import TenantFixture, make_user


def _figures(html: str) -> dict[str, str]:
    """The dashboard's figures, label -> value."""
    pairs = re.findall(
        r'<span class="value">([^<]+)</span><span class="label">([^<]+)</span>', html
    )
    return {label: value for value, label in pairs}


async def _sign_in(browser: Browser, email: str) -> str:
    """Sign in and follow the redirects as a browser does; the page reached."""
    response = await browser.post("/login", {"email": email, "password": PASSWORD})
    assert response.status_code == 303
    location = response.headers["location"]
    for _ in range(5):
        response = await browser.get(location)
        if response.status_code not in (302, 303):
            break
        location = response.headers["location"]
    assert response.status_code == 200
    return location


async def test_a_new_organization_gets_zeros_and_a_first_campaign_prompt(
    browser: Browser, db: str
) -> None:
    owner = await make_user("Newcomer Owner")
    slug = f"new-{uuid4().hex[:8]}"
    await create_organization(
        OrganizationFields(
            name="New Org", slug=slug, kind="company", country="FR", default_locale="en"
        ),
        owner,
        Actor(kind="user", user_id=owner.id, label=owner.email),
    )
    assert await _sign_in(browser, owner.email) == f"/o/{slug}/"
    page = await browser.get(f"/o/{slug}/")
    figures = _figures(page.text)
    assert figures["campaigns"] == "0"
    assert figures["open campaigns"] == "0"
    assert figures["participations"] == "0"
    assert figures["shared results"] == "0"
    assert figures["learners"] == "0"
    assert figures["members"] == "1"
    assert "Create your first campaign" in page.text
    assert f'href="/o/{slug}/campaigns#new-campaign"' in page.text
    assert "you get a link and a code to send them" in page.text
    form = await browser.get(f"/o/{slug}/campaigns")
    assert 'id="new-campaign"' in form.text


async def test_the_prompt_goes_once_there_is_a_campaign_and_figures_count(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="First", profile_key="digcomp")
    )
    await add_shared_results(tenant_a.id, campaign.id, 3)
    # Another organization's figures never count here.
    theirs = await create_campaign(
        tenant_b.owner_ctx, CampaignFields(name="Theirs", profile_key="digcomp")
    )
    await add_shared_results(tenant_b.id, theirs.id, 5)
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/")
    figures = _figures(page.text)
    assert "Create your first campaign" not in page.text
    assert figures["campaign"] == "1"  # singular: one campaign
    assert figures["participations"] == "3"
    assert figures["shared results"] == "3"
    assert figures["learners"] == "3"


async def test_a_plain_member_is_told_who_creates_campaigns(browser: Browser, db: str) -> None:
    owner, member = await make_user("Prompt Owner"), await make_user("Prompt Member")
    slug = f"new-{uuid4().hex[:8]}"
    actor = Actor(kind="user", user_id=owner.id, label=owner.email)
    await create_organization(
        OrganizationFields(
            name="Quiet Org", slug=slug, kind="company", country="FR", default_locale="en"
        ),
        owner,
        actor,
    )
    await add_member(await member_context(slug, owner, actor), member, "member")
    await browser.login(member)
    page = await browser.get(f"/o/{slug}/")
    assert _figures(page.text)["campaigns"] == "0"
    assert "Create your first campaign" in page.text
    assert "#new-campaign" not in page.text
    assert "owners and admins create campaigns" in page.text


async def test_one_organization_lands_in_it_from_sign_in_and_home(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    person = await make_user("Single Org")
    await add_member(tenant_a.owner_ctx, person, "member")
    assert await _sign_in(browser, person.email) == f"/o/{tenant_a.slug}/"
    home = await browser.get("/")
    assert home.status_code in (302, 303)
    listing = await browser.get(home.headers["location"])
    assert (listing.status_code, listing.headers["location"]) == (303, f"/o/{tenant_a.slug}/")
    # The list stays one click away (the menu's link asks for it).
    asked = await browser.get("/o/?all=1")
    assert asked.status_code == 200
    assert f'href="/o/{tenant_a.slug}/"' in asked.text
    assert 'href="/o/?all=1"' in asked.text


async def test_two_organizations_land_on_the_list(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    person = await make_user("Two Orgs")
    await add_member(tenant_a.owner_ctx, person, "member")
    await add_member(tenant_b.owner_ctx, person, "member")
    assert await _sign_in(browser, person.email) == "/o/"
    page = await browser.get("/o/")
    assert f'href="/o/{tenant_a.slug}/"' in page.text
    assert f'href="/o/{tenant_b.slug}/"' in page.text


async def test_landing_never_opens_another_organization(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    assert (await browser.get(f"/o/{tenant_b.slug}/")).status_code == 404
    ctx = await member_context(tenant_a.slug, tenant_a.member, Actor(kind="user"))
    assert ctx.tenant_id == tenant_a.id


async def test_all_other_than_one_still_lands_in_the_only_organization(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    person = await make_user("Single Again")
    await add_member(tenant_a.owner_ctx, person, "member")
    await browser.login(person)
    for query in ("?all=0", "?all=", "?all=no"):
        landed = await browser.get(f"/o/{query}")
        assert (landed.status_code, landed.headers["location"]) == (303, f"/o/{tenant_a.slug}/")


async def test_an_organization_whose_campaigns_are_all_archived_is_not_told_to_begin(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    from campaigns.service import archive_campaign

    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Old", profile_key="digcomp")
    )
    await archive_campaign(tenant_a.owner_ctx, campaign.id)
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/")
    assert _figures(page.text)["campaigns"] == "0"  # archived ones aside
    assert "Create your first campaign" not in page.text


async def test_the_figures_count_members_and_pending_invitations_of_their_organization_only(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    # One statement counts them (the dashboard loaded every member and invitation to count).
    from campaigns.campaign_stats import organization_figures
    from core.settings import get_settings
    from tenants.invitations import invite

    await invite(tenant_a.owner_ctx, "someone@example.org", "member", get_settings())
    await add_member(tenant_b.owner_ctx, await make_user("Beta Extra"), "member")
    figures = await organization_figures(tenant_a.owner_ctx)
    assert (figures.members, figures.pending_invitations) == (2, 1)
    theirs = await organization_figures(tenant_b.owner_ctx)
    assert (theirs.members, theirs.pending_invitations) == (3, 0)
    await browser.login(tenant_a.owner)
    page = _figures((await browser.get(f"/o/{tenant_a.slug}/")).text)
    assert (page["members"], page["pending invitation"]) == ("2", "1")
