"""The plans catalogue and the jobs page as an account manager meets them, in headless
Chromium: creating a plan with a price typed the French way, editing it, retiring it for a
reason, then opening the jobs page; every page checked for the basics of accessibility and
photographed in var/screenshots/."""

from __future__ import annotations

from uuid import uuid4

import pytest
from playwright.async_api import Page, expect

from billing.catalogue import plan_by_code
from tests.admin.conftest import StaffFixture
from tests.admin.test_jobs import _dead_letter, _failed_delivery, _failed_task
from tests.browser.audit import audit
from tests.browser.conftest import staff_sign_in
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser


async def _accessible(page: Page, name: str) -> None:
    await audit(page, name)  # basics, axe-core, and a screenshot


async def test_an_account_manager_creates_edits_and_retires_a_plan(
    page: Page, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    code = f"team-{uuid4().hex[:6]}"
    await staff_sign_in(page, account_manager)
    await page.goto("/admin/plans")
    await _accessible(page, "admin-plans-empty")
    await page.get_by_role("link", name="New plan").click()
    await page.wait_for_url("**/admin/plans/new")

    # a wrong price first: the message next to the field, what was typed kept
    await page.locator("#f-code").fill(code)
    await page.locator("#f-name_en").fill("Team")
    await page.locator("#f-name_fr").fill("Équipe")
    await page.locator("#f-price_amount_0").fill("-12")
    await page.get_by_role("button", name="Create the plan").click()
    await expect(page.locator("#f-price_amount_0-error")).to_have_text(
        "A price cannot be negative."
    )
    await expect(page.locator("#f-name_fr")).to_have_value("Équipe")
    await _accessible(page, "admin-plan-new-error")

    await page.locator("#f-price_amount_0").fill("1 200,50")
    await page.locator("#f-trial_days").fill("14")
    await page.get_by_role("button", name="Create the plan").click()
    await page.wait_for_url(f"**/admin/plans/{code}")
    await expect(page.locator("#f-price_amount_0")).to_have_value("1200.50")
    await _accessible(page, "admin-plan-edit")

    await page.locator("#f-name_en").fill("Team plus")
    await page.locator("#f-price_currency_1").fill("USD")
    await page.locator("#f-price_amount_1").fill("1500")
    await page.locator("#f-reason").fill("Prices of 2027")
    await page.get_by_role("button", name="Save the plan").click()
    await page.wait_for_url(f"**/admin/plans/{code}")
    assert (await plan_by_code(code)).names["en"] == "Team plus"

    await page.get_by_role("link", name="Retire this plan").click()
    await page.wait_for_url(f"**/admin/plans/{code}/retire")
    await _accessible(page, "admin-plan-retire")
    await page.get_by_label("Reason").fill("Replaced by the 2027 offer")
    await page.get_by_role("button", name="Retire the plan").click()
    await page.wait_for_url("**/admin/plans")
    assert (await plan_by_code(code)).retired_at is not None
    await expect(page.locator("main")).to_contain_text("€1,200.50")
    await _accessible(page, "admin-plans")

    # offered again: a confirm page with a reason
    await page.get_by_role("link", name=f"Offer again {code}").click()
    await page.wait_for_url(f"**/admin/plans/{code}/restore")
    await _accessible(page, "admin-plan-restore")
    await page.get_by_label("Reason").fill("The 2027 offer is postponed")
    await page.get_by_role("button", name="Offer the plan again").click()
    await page.wait_for_url("**/admin/plans")
    assert (await plan_by_code(code)).retired_at is None

    await _failed_task(tenant_a)
    await _failed_delivery(tenant_a, "Connection refused by the receiver")
    await _dead_letter("RuntimeError: the gateway is unreachable")
    await page.get_by_role("link", name="Jobs").click()
    await page.wait_for_url("**/admin/jobs")
    await expect(page.locator("main")).to_contain_text("Connection refused by the receiver")
    await _accessible(page, "admin-jobs")
    # a retry asks for confirmation and a reason
    await page.get_by_role("button", name="Retry").first.click()
    await page.wait_for_url("**/admin/jobs/events/**")
    await _accessible(page, "admin-jobs-confirm")
