"""A duplicated campaign is named as a copy, in the language of whoever duplicates it, and a
campaign whose link does not work (a draft, a closed or archived one) does not invite people
to it."""

from __future__ import annotations

import html

from campaigns.campaign_fields import CampaignFields
from campaigns.service import copy_name, create_campaign, duplicate_campaign, get_campaign
from tenants.members import add_member
from tests.api.conftest import Browser
from tests.conftest import TenantFixture, make_user


async def _duplicate(browser: Browser, page: str) -> str:
    response = await browser.post(f"{page}/duplicate", page=page)
    assert response.status_code == 303
    return str(response.headers["location"])


async def test_a_copy_is_named_as_such_in_the_persons_language(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await create_campaign(
        tenant_a.owner_ctx,
        CampaignFields(name="Atelier numérique", profile_key="digcomp", locales=("en", "fr")),
    )
    page = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(tenant_a.owner)
    copy = await _duplicate(browser, page)
    shown = html.unescape((await browser.get(copy)).text)
    assert "<h1>Atelier numérique (copy) " in shown

    french = await make_user("Françoise Admin", locale="fr")
    await add_member(tenant_a.owner_ctx, french, "admin")
    await browser.login(french)
    copy = await _duplicate(browser, page)
    copy_id = copy.rsplit("/", 1)[1]
    assert (await get_campaign(tenant_a.owner_ctx, copy_id)).name == "Atelier numérique (copie)"
    # The original keeps its name.
    assert (await get_campaign(tenant_a.owner_ctx, campaign.id)).name == "Atelier numérique"


def test_a_copys_name_fits_the_length_a_name_may_have() -> None:
    assert copy_name("Bilan", "en") == "Bilan (copy)"
    assert copy_name("Bilan", "fr") == "Bilan (copie)"
    long = copy_name("x" * 200, "en")
    assert len(long) == 200
    assert long.endswith("x… (copy)")


async def test_a_drafts_page_says_its_link_works_once_open(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    source = await create_campaign(
        tenant_a.owner_ctx,
        CampaignFields(name="Not yet", profile_key="digcomp", locales=("en", "fr")),
    )
    campaign = await duplicate_campaign(tenant_a.owner_ctx, source.id)
    assert campaign.status == "draft"
    page = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(tenant_a.owner)
    shown = html.unescape((await browser.get(page)).text)
    assert "Invite participants" not in shown
    assert "Send them the link" not in shown
    assert "This campaign is a draft: its link does not work yet." in shown
    link = f"http://127.0.0.1:8000/c/{campaign.code}"  # on JALON_BASE_URL
    assert f'href="{link}"' not in shown  # never a live link
    assert (await browser.get(f"/c/{campaign.code}")).status_code == 404

    await browser.post(f"{page}/activate", page=page)
    shown = html.unescape((await browser.get(page)).text)
    assert "Invite participants" in shown
    assert "Send them the link, or the code to type at http://127.0.0.1:8000/c." in shown
    assert (await browser.get(f"/c/{campaign.code}")).status_code == 200

    await browser.post(f"{page}/close", {"confirm": "yes"}, page=page)
    shown = html.unescape((await browser.get(page)).text)
    assert "Invite participants" not in shown
    assert "The campaign is closed: its link tells newcomers so" in shown
