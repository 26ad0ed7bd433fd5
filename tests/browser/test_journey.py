"""A participant's journey in headless Chromium: code → sign in → a few challenges → results
→ share; then a member sees the shared count. Every new page is audited for the basics of
accessibility and photographed in both languages (var/screenshots/)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from campaigns.campaign_fields import CampaignFields
from campaigns.service import create_campaign
from tests.api.conftest import PASSWORD
from tests.api.test_participant import shorten
from tests.browser.test_pages import _audit
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant

pytestmark = pytest.mark.browser


async def _sign_in(page: Page, email: str) -> None:
    """Sign in whatever the page's language (the fields by id)."""
    await page.goto("/login")
    await page.locator("#f-email").fill(email)
    # The email first (home-realm discovery), then the password.
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.locator("#f-password").fill(PASSWORD)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.wait_for_load_state("networkidle")


async def _walk(page: Page, tenant: TenantFixture, lang: str) -> None:
    words = {
        "en": (
            "Campaign code",
            "Continue",
            "Sign in to start",
            "Start",
            "Confirm my answer",
            "I don’t know, skip",
            "I agree",
            "Share with",
        ),
        "fr": (
            "Code de campagne",
            "Continuer",
            "Se connecter pour commencer",
            "Commencer",
            "Valider ma réponse",
            "Je ne sais pas, passer",
            "J’accepte",
            "Partager avec",
        ),
    }[lang]
    code_label, go, sign_in, start, confirm, skip, agree, share = words
    campaign = await create_campaign(
        tenant.owner_ctx,
        CampaignFields(name="Quick check", profile_key="digcomp", landing_text="Welcome!"),
    )
    await shorten(tenant.id, campaign.id, 3)
    person = await make_user("Jo Participant", lang)

    await page.goto("/c")
    await _audit(page, f"{lang}-participant-code")
    await page.get_by_label(code_label).fill("zzzz")
    await page.get_by_role("button", name=go).click()
    await _audit(page, f"{lang}-participant-code-error")
    await page.get_by_label(code_label).fill(campaign.code.lower()[:4] + " " + campaign.code[4:])
    await page.get_by_role("button", name=go).click()
    await page.wait_for_url(f"**/c/{campaign.code}")
    await _audit(page, f"{lang}-participant-landing")
    await page.goto(f"/c/{campaign.code}/account")
    await _audit(page, f"{lang}-participant-account")
    await page.goto(f"/c/{campaign.code}")
    await page.get_by_role("link", name=sign_in).click()
    await page.locator("#f-email").fill(person.email)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.locator("#f-password").fill(PASSWORD)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.wait_for_url(f"**/c/{campaign.code}")
    await page.get_by_role("button", name=start).click()
    await page.wait_for_url("**/p/**")
    await _audit(page, f"{lang}-participant-challenge")
    # First challenge: answered with the keyboard only (the first choice, or some text).
    if await page.locator("#f-answer").count():
        await page.locator("#f-answer").fill("something")
    else:
        await page.locator("#f-answer-0").focus()
        await page.keyboard.press("Space")
    await page.get_by_role("button", name=confirm).click()
    await page.wait_for_load_state("networkidle")
    # Then an empty answer: the question again with the error next to it.
    if not await page.locator("#f-answer").count():
        await page.get_by_role("button", name=confirm).click()
        await page.wait_for_load_state("networkidle")
        await _audit(page, f"{lang}-participant-challenge-error")
    await page.get_by_role("button", name=skip).click()
    await page.wait_for_load_state("networkidle")
    await page.get_by_role("button", name=skip).click()
    await page.wait_for_url("**/results")
    await _audit(page, f"{lang}-participant-results")
    await page.get_by_label(agree).check()
    await page.get_by_role("button", name=share).click()
    await page.wait_for_url("**/results")
    await _audit(page, f"{lang}-participant-results-shared")
    await page.goto("/me/results")
    await _audit(page, f"{lang}-participant-mine")

    # A plain member of the organization sees the shared count on the campaign page.
    await page.context.clear_cookies()
    await _sign_in(page, tenant.member.email)
    await page.goto(f"/o/{tenant.slug}/campaigns")
    await _audit(page, f"{lang}-console-campaigns-member")
    await page.goto(f"/o/{tenant.slug}/campaigns/{campaign.id}")
    shared = page.locator(".stat", has=page.locator(".label", has_text="shared")).locator(".value")
    if lang == "en":
        assert await shared.inner_text() == "1"
    await _audit(page, f"{lang}-console-campaign")
    await page.context.clear_cookies()
    await _sign_in(page, tenant.owner.email)
    await page.goto(f"/o/{tenant.slug}/campaigns")
    await _audit(page, f"{lang}-console-campaigns")
    # The owner exports the results and edits the campaign.
    await page.goto(f"/o/{tenant.slug}/campaigns/{campaign.id}")
    async with page.expect_download() as caught:
        # the CSV download is a form with the separator, preselected for the person's language
        await page.locator(f"form[action$='/campaigns/{campaign.id}/results.csv'] button").click()
    download = await caught.value
    exported = (await download.path()).read_text(encoding="utf-8-sig")
    assert "Jo Participant" in exported
    await page.goto(f"/o/{tenant.slug}/campaigns/{campaign.id}/edit")
    await _audit(page, f"{lang}-console-campaign-edit")


async def test_a_participant_walks_the_journey_in_english(
    page: Page, tenant_a: TenantFixture
) -> None:
    await _walk(page, tenant_a, "en")


async def test_a_participant_walks_the_journey_in_french(
    page_fr: Page, tenant_b: TenantFixture
) -> None:
    await _walk(page_fr, tenant_b, "fr")


async def test_a_timed_question_counts_down_in_the_browser(
    page: Page, tenant_a: TenantFixture
) -> None:
    from uuid import UUID

    from campaigns.content import current_bank
    from core import database

    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Timed check", profile_key="digcomp")
    )
    await shorten(tenant_a.id, campaign.id, 3)
    person = await make_user("Tim Participant")
    await _sign_in(page, person.email)
    await page.goto(f"/c/{campaign.code}")
    await page.get_by_role("button", name="Start").click()
    await page.wait_for_url("**/p/**")
    participation_id = page.url.rstrip("/").rsplit("/", 1)[1]
    timed = next(c for c in current_bank().challenges if c.timer_seconds == 60)
    async with as_tenant(tenant_a.id):  # set-up: the engine chose a timed question
        await database.execute(
            "UPDATE assessment SET current_challenge_id = $3, current_shown_at = NULL "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant_a.id,
            UUID(participation_id),
            timed.id,
        )
    await page.reload()
    clock = page.get_by_role("timer")
    first = await clock.inner_text()
    assert first in ("1:00", "0:59")
    await page.wait_for_timeout(2200)
    later = await clock.inner_text()
    assert later != first  # the script runs the clock
    await _audit(page, "en-participant-challenge-timed")


async def test_more_time_goes_from_the_page_when_the_time_is_up(
    page: Page, tenant_a: TenantFixture
) -> None:
    # WCAG 2.2.1 extends a limit before it runs out: at zero the button is gone (the server
    # refuses it too, tests/api/test_timer_extension.py).
    from uuid import UUID

    from campaigns.content import current_bank
    from core import database

    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Timed end", profile_key="digcomp")
    )
    await shorten(tenant_a.id, campaign.id, 3)
    person = await make_user("Tia Participant")
    await _sign_in(page, person.email)
    await page.goto(f"/c/{campaign.code}")
    await page.get_by_role("button", name="Start").click()
    await page.wait_for_url("**/p/**")
    participation_id = page.url.rstrip("/").rsplit("/", 1)[1]
    timed = next(c for c in current_bank().challenges if c.timer_seconds == 60)
    async with as_tenant(tenant_a.id):  # set-up: a timed question shown 58 s ago
        await database.execute(
            "UPDATE assessment SET current_challenge_id = $3, "
            "current_shown_at = now() - interval '58 seconds' "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant_a.id,
            UUID(participation_id),
            timed.id,
        )
    await page.reload()
    more = page.get_by_role("button", name="More time")
    assert await more.is_visible()
    await page.wait_for_timeout(3500)
    assert await page.get_by_role("timer").inner_text() == "0:00"
    assert not await more.is_visible()
