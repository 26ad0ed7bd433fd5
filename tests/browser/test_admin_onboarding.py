"""An account manager onboards a foreign agency, in headless Chromium: a Norwegian agency on
an annual licence paid by bank transfer, its first administrator invited; they land on the
tenant's page and open each tab. Each page passes the accessibility basics and is
photographed in var/screenshots/."""

from __future__ import annotations

from uuid import uuid4

import pytest
from playwright.async_api import Page, expect

from billing.catalogue import PlanFields, PlanKind, create_plan, set_price
from tests.admin.conftest import StaffFixture
from tests.billing.plans import STAFF
from tests.browser.audit import audit
from tests.browser.conftest import staff_sign_in

pytestmark = pytest.mark.browser


async def _audit(page: Page, name: str) -> None:
    await audit(page, name)  # basics, axe-core, and a screenshot


async def _continue(page: Page) -> None:
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_load_state("networkidle")


async def test_an_account_manager_onboards_a_foreign_agency(
    page: Page, account_manager: StaffFixture
) -> None:
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"licence-annual-{uuid4().hex[:8]}",
            kind=PlanKind.LICENSE,
            names={"en": "Annual licence, 500 seats", "fr": "Licence annuelle, 500 sièges"},
            interval="year",
            overage_policy="warn",
            included_seats=500,
        ),
    )
    await set_price(STAFF, plan.code, "NOK", 13_500_000)
    slug = f"nordfjord-{uuid4().hex[:6]}"
    await staff_sign_in(page, account_manager)
    await page.goto("/admin/tenants/new")

    # (a) kind and country
    await _audit(page, "admin-onboarding-1-kind")
    await page.locator("#f-kind").select_option("foreign_agency")
    await page.locator("#f-country").fill("NO")
    await _continue(page)

    # (b) the organization: the defaults follow Norway (English, Oslo, crowns)
    await expect(page.locator("#f-currency")).to_have_value("NOK")
    await expect(page.locator("#f-locale")).to_have_value("en")
    await expect(page.locator("#f-timezone")).to_have_value("Europe/Oslo")
    await page.locator("#f-name").fill("Nordfjord Digital Agency")
    await page.locator("#f-slug").fill(slug)
    await _audit(page, "admin-onboarding-2-organization")
    await _continue(page)

    # (c) the plan: the licence in crowns, invoiced and paid by bank transfer at 30 days
    await expect(page.locator("#f-collection_method")).to_have_value("send_invoice")
    await expect(page.locator("#f-net_terms_days")).to_have_value("30")
    await page.locator("#f-plan").select_option(f"{plan.code}:standard")
    await page.locator("#f-po_number").fill("NF-2026-04")
    await _audit(page, "admin-onboarding-3-plan")
    await _continue(page)

    # (d) billing details; a wrong VAT number first: its message, what was typed kept
    await expect(page.locator("#f-legal_name")).to_have_value("Nordfjord Digital Agency")
    await expect(page.locator("#f-buyer_kind")).to_have_value("public")
    await page.locator("#f-billing_email").fill("faktura@nordfjord.example")
    await page.locator("#f-address_line1").fill("Strandgata 12")
    await page.locator("#f-postal_code").fill("6770")
    await page.locator("#f-city").fill("Nordfjordeid")
    await page.locator("#f-vat_number").fill("NO 123?")
    await _continue(page)
    await expect(page.locator("#f-vat_number-error")).to_be_visible()
    await expect(page.locator("#f-city")).to_have_value("Nordfjordeid")
    await _audit(page, "admin-onboarding-4-billing-error")
    await page.locator("#f-vat_number").fill("NO123456789MVA")
    await _continue(page)

    # (e) the first administrator; then back, and forward again: nothing lost
    await page.locator("#f-admin_email").fill("ingrid.berg@nordfjord.example")
    await page.locator("#f-admin_name").fill("Ingrid Berg")
    await _audit(page, "admin-onboarding-5-admin")
    await _continue(page)
    await page.get_by_role("link", name="Back").click()
    await expect(page.locator("#f-admin_email")).to_have_value("ingrid.berg@nordfjord.example")
    await _continue(page)

    # (f) confirm with a reason
    summary = page.locator("dl.details")
    await expect(summary).to_contain_text("Nordfjord Digital Agency")
    await expect(summary).to_contain_text("ingrid.berg@nordfjord.example")
    await expect(summary).to_contain_text("Out of the scope of EU VAT")
    await page.locator("#f-reason").fill("Signed order NF-2026-04")
    await _audit(page, "admin-onboarding-6-confirm")
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url("**/admin/tenants/*")

    # the tenant's page, then each tab
    await expect(page.locator("h1")).to_contain_text("Nordfjord Digital Agency")
    await expect(page.get_by_role("status")).to_contain_text("was created")
    await _audit(page, "admin-tenant-overview")
    tabs = page.get_by_role("navigation", name="Tenant")
    for name, shot, text in [
        ("Subscription and seats", "subscription", "Annual licence, 500 seats"),
        ("Invoices and payments", "invoices", "open"),
        ("Members", "members", "ingrid.berg@nordfjord.example"),
        ("Single sign-on", "sso", "No connection."),
        ("Campaigns", "campaigns", "No campaign yet."),
        ("Audit log", "audit", "member.invited"),
        ("Overview", "overview-again", "Foreign agency"),
    ]:
        await tabs.get_by_role("link", name=name).click()
        await page.wait_for_load_state("networkidle")
        await expect(tabs.get_by_role("link", name=name)).to_have_attribute("aria-current", "page")
        await expect(page.locator("main")).to_contain_text(text)
        await _audit(page, f"admin-tenant-{shot}")
