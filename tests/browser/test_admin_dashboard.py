"""The back office's dashboard and tenants list as an account manager meets them, in headless
Chromium: signing in, reading the charts and their tables, searching the tenants, and the
accessibility audit of both pages."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.admin.conftest import StaffFixture
from tests.admin.test_dashboard import Book, book  # noqa: F401 - the seeded book of business
from tests.browser.audit import audit
from tests.browser.conftest import staff_sign_in

pytestmark = pytest.mark.browser


async def _accessible(page: Page, name: str) -> None:
    await audit(page, name)  # basics, axe-core, and a screenshot


async def test_an_account_manager_reads_the_dashboard_and_searches_the_tenants(
    page: Page,
    account_manager: StaffFixture,
    book: Book,  # noqa: F811 - the fixture
) -> None:
    await staff_sign_in(page, account_manager)
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await expect(page.locator("svg[role=img]")).to_have_count(6)
    trials = page.locator("section[aria-labelledby=trials-heading] tbody")
    gamma = book.tenants["c"].owner_ctx.tenant.name
    await expect(trials).to_contain_text(gamma)
    await _accessible(page, "admin-dashboard")

    await page.get_by_role("link", name="Tenants", exact=True).click()
    await page.wait_for_url("**/admin/tenants")
    await expect(page.locator("h1")).to_have_text("Tenants")
    alpha = book.tenants["a"]
    await page.locator("#f-q").fill(alpha.member.email)
    await page.get_by_role("button", name="Search").click()
    rows = page.locator("table.tenants tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(alpha.slug)
    await expect(rows.first).to_contain_text("7 / 15")
    await page.locator("#f-q").fill("")
    await _accessible(page, "admin-tenants")

    await page.locator("#f-country").fill("F1")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("[role=alert]")).to_contain_text("two-letter code")
    await _accessible(page, "admin-tenants-refused")
