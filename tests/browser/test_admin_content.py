"""The content editors' back office as a content editor meets it, in headless Chromium: the
framework, the bank and a challenge's preview, then retiring a reported challenge from the
queue (a confirmation and a reason), then launching a calibration and reading its report;
every page checked for the basics of accessibility and photographed in var/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from campaigns.content import current_bank
from campaigns.problem_reports import forget_withdrawn, report_problem
from core import database, jobs
from tests.admin.conftest import StaffFixture
from tests.admin.test_content import _answers
from tests.browser.audit import audit
from tests.browser.conftest import staff_sign_in
from tests.campaigns.conftest import start_a_test
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
async def _no_flag_outlives_its_test(db: str) -> AsyncIterator[None]:
    """Flags are global: this test's are reviewed away afterwards."""
    yield
    async with database.global_transaction():
        await database.execute(
            """UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(),
                   recent_reports = 0, retired_at = NULL"""
        )
    forget_withdrawn()


async def _accessible(page: Page, name: str) -> None:
    await audit(page, name)  # basics, axe-core, and a screenshot


async def test_a_content_editor_retires_a_reported_challenge_and_runs_a_calibration(
    page: Page,
    in_process: jobs.InProcessQueue,
    content_editor: StaffFixture,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    _campaign, paula, participation, view = await start_a_test(tenant_a)
    await report_problem(
        paula.ctx, participation.id, view.challenge_id, "wrong_answer_key", "Two answers fit"
    )
    challenge_id = view.challenge_id
    bank = current_bank()
    await _answers(tenant_a, 2, bank, 1)
    await _answers(tenant_b, 2, bank, 50)
    await staff_sign_in(page, content_editor)

    await page.goto("/admin/content")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Framework")
    await _accessible(page, "admin-content-framework")
    await page.get_by_role("link", name="Challenges", exact=True).click()
    await page.wait_for_url("**/admin/content/challenges")
    # a challenge of the bank in use, found by a word of its statement (the bank the suite
    # serves depends on what ran before: never a hard-coded id or word)
    shown = next(c for c in bank.challenges if "en" in c.statement and "fr" in c.statement)
    word = max(shown.statement["en"].split(), key=len).strip(".,;:?!«»\"'()")
    await page.locator("#f-search").fill(word)
    await page.get_by_role("button", name="Filter").click()
    await _accessible(page, "admin-content-challenges")
    await page.get_by_role("link", name=shown.id, exact=True).click()
    await page.wait_for_url(f"**/admin/content/challenges/{shown.id}")
    await _accessible(page, "admin-content-preview")
    await page.get_by_role("link", name="Français").click()
    await expect(page.locator(".preview")).to_have_attribute("lang", "fr")

    # the queue: retire, confirmed with a reason
    await page.get_by_role("link", name="Problem reports").click()
    await page.wait_for_url("**/admin/content/reports")
    await expect(page.get_by_text("Two answers fit")).to_be_visible()
    await _accessible(page, "admin-content-reports")
    await page.get_by_role("button", name=f"Retire {challenge_id}…").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Retire {challenge_id}?")
    await page.get_by_role("button", name="Retire the challenge").click()
    await expect(page.locator("#f-reason-error")).to_be_visible()  # a reason is required
    await _accessible(page, "admin-content-retire-confirm")
    await page.locator("#f-reason").fill("The answer key is wrong in two languages")
    await page.get_by_role("button", name="Retire the challenge").click()
    await page.wait_for_url("**/admin/content/reports")
    await expect(page.get_by_text(f"{challenge_id} is retired")).to_be_visible()
    await expect(page.get_by_role("button", name=f"Restore {challenge_id}…")).to_be_visible()

    # a calibration, then its report
    await page.get_by_role("link", name="Calibration").click()
    await page.wait_for_url("**/admin/content/calibration")
    await _accessible(page, "admin-content-calibration")
    await page.locator("#f-min_answers").fill("1")
    await page.locator("#f-reason").fill("Monthly check")
    await page.get_by_role("button", name="Launch a calibration").click()
    await page.wait_for_url("**/admin/content/calibration/*")
    await in_process.drain()
    await page.reload()
    await expect(page.locator("p[role=status] .badge")).to_have_text("Done")
    await expect(page.get_by_role("heading", name="Warnings")).to_be_visible()
    rows = page.locator("table.data tbody tr")
    assert await rows.count() > 2
    await _accessible(page, "admin-content-calibration-run")

    await page.get_by_role("link", name="Statistics").click()
    await page.wait_for_url("**/admin/content/stats")
    await page.get_by_role("link", name="Answers").click()
    await expect(page.locator("th[aria-sort]")).to_have_count(1)
    await _accessible(page, "admin-content-stats")
    await page.get_by_role("link", name="Import").click()
    await page.wait_for_url("**/admin/content/import")
    await _accessible(page, "admin-content-import")
