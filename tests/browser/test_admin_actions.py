"""An account manager's day, in headless Chromium: they sign in with their TOTP code, add a
seat pack to a city (a local authority on a seat-pack plan), confirm it, then record the
city's bank transfer against an issued invoice, and see both on the pages. Each page passes
the accessibility basics and is photographed in var/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from playwright.async_api import Page, expect

from billing import invoices
from billing.catalogue import PlanFields, create_plan, set_price
from billing.subscriptions import subscribe
from tenants.context import Actor, TenantSummary
from tenants.organizations import OrganizationFields, create_organization, system_context
from tests.admin.conftest import StaffFixture
from tests.billing.plans import STAFF
from tests.browser.audit import audit
from tests.browser.conftest import screenshot, staff_sign_in

pytestmark = pytest.mark.browser


async def _audit(page: Page, name: str) -> None:
    await audit(page, name)  # basics, axe-core, and a screenshot


async def a_city() -> TenantSummary:
    """A French local authority on a yearly seat-pack plan (packs of 10 seats)."""
    city = await create_organization(
        OrganizationFields(
            name="Ville de Villeurbanne",
            slug=f"villeurbanne-{uuid4().hex[:6]}",
            kind="local_authority",
            country="FR",
        ),
        None,
        Actor.system("tests"),
        status="active",
    )
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"city-packs-{uuid4().hex[:8]}",
            kind="seat_pack",
            names={"en": "Seat packs for public bodies", "fr": "Packs de sièges"},
            interval="year",
            overage_policy="block",
            pack_seats=10,
            pack_validity_months=12,
        ),
    )
    await set_price(STAFF, plan.code, "EUR", 45_000)
    ctx = system_context(city, "tests")
    await subscribe(ctx, plan.code, at=datetime.now(UTC) - timedelta(days=3), trial=False)
    return city


async def an_invoice(city: TenantSummary) -> invoices.Invoice:
    ctx = system_context(city, "tests")
    draft = await invoices.draft_invoice(
        ctx,
        [invoices.LineInput("adjustment", "Formation des agents / Staff training", 1, 100_000)],
        currency="EUR",
    )
    return await invoices.issue_invoice(ctx, draft.id)


async def test_an_account_manager_adds_a_seat_pack_to_a_city_and_records_its_transfer(
    page: Page, account_manager: StaffFixture
) -> None:
    city = await a_city()
    invoice = await an_invoice(city)
    await staff_sign_in(page, account_manager)
    actions = f"/admin/tenants/{city.id}/actions"

    # the seat pack: the form, then its confirmation
    await page.goto(f"{actions}/seat-pack")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Seat packs")
    await page.locator("#f-seats").fill("30")
    await page.get_by_label("Reference (order, quote)").fill("BC-2026-0117")
    await page.get_by_label("Invoice this pack now (seat-pack plans)").check()
    await page.locator("#f-reason").fill("Order form received from the city")
    await _audit(page, "admin-action-seat-pack")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Confirm: Add a seat pack")
    await expect(page.get_by_role("cell", name="BC-2026-0117")).to_be_visible()
    await _audit(page, "admin-action-seat-pack-confirm")
    await page.get_by_role("button", name="Confirm").click()
    await page.wait_for_url(f"**/admin/tenants/{city.id}")
    await expect(
        page.get_by_role("status").filter(has_text="A pack of 30 seats was added")
    ).to_be_visible()

    # the pack on the tenant's page (and the action's own list), its invoice issued
    await page.goto(f"/admin/tenants/{city.id}/subscription")
    packs = page.get_by_role(
        "table", name="Seats bought in packs, each valid from its first to its last day"
    )
    await expect(packs.get_by_role("cell", name="BC-2026-0117")).to_be_visible()
    await screenshot(page, "admin-action-seat-pack-on-tenant-page")
    await page.goto(f"{actions}/seat-pack")
    listed = page.get_by_role("table", name="Seat packs not removed, newest first")
    await expect(listed.get_by_role("cell", name="BC-2026-0117")).to_be_visible()
    await expect(page.get_by_text("This period: 0 seats used of 30.")).to_be_visible()

    # the transfer, written as the bank statement writes it
    await page.goto(f"/admin/tenants/{city.id}/invoices")
    await page.get_by_role("link", name=f"Record a transfer {invoice.number}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Record a bank transfer")
    due = invoice.total
    grouped = f"{due // 100:,}".replace(",", " ") + f",{due % 100:02d}"
    await page.locator("#f-amount").fill(grouped)
    await page.locator("#f-reference").fill("VIR SEPA VILLEURBANNE 2026-118")
    await page.locator("#f-reason").fill("Transfer on the bank statement of today")
    await _audit(page, "admin-action-payment")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Confirm: Record a bank transfer"
    )
    await expect(page.get_by_role("cell", name="VIR SEPA VILLEURBANNE 2026-118")).to_be_visible()
    await screenshot(page, "admin-action-payment-confirm")
    await page.get_by_role("button", name="Confirm").click()
    await page.wait_for_url(f"**/admin/tenants/{city.id}")
    await expect(page.get_by_role("status").filter(has_text="A transfer of")).to_be_visible()

    await page.goto(f"/admin/tenants/{city.id}/invoices")
    await expect(page.get_by_text("VIR SEPA VILLEURBANNE 2026-118")).to_be_visible()
    await screenshot(page, "admin-action-payment-on-tenant-page")
    await page.goto(f"{actions}/payment/{invoice.id}")
    await expect(page.get_by_text("Nothing is due on this invoice.")).to_be_visible()
    await expect(page.get_by_text("paid", exact=True)).to_be_visible()
    await screenshot(page, "admin-action-payment-recorded")
    paid = await invoices.get_invoice(system_context(city, "tests"), invoice.id)
    assert (paid.status, paid.amount_paid) == ("paid", invoice.total)


async def test_every_action_page_passes_the_accessibility_basics(
    page: Page, account_manager: StaffFixture
) -> None:
    city = await a_city()
    invoice = await an_invoice(city)
    ctx = system_context(city, "tests")
    from billing.seats import SeatPackFields, add_seat_pack

    pack = await add_seat_pack(
        ctx, STAFF, SeatPackFields(10, datetime.now(UTC).date(), reference="BC-1")
    )
    await staff_sign_in(page, account_manager)
    actions = f"/admin/tenants/{city.id}/actions"
    for rest in (
        "plan",
        "trial",
        "seat-pack",
        f"seat-pack/{pack.id}/remove",
        "discount",
        f"credit-note/{invoice.id}",
        f"payment/{invoice.id}",
        "suspend",
        "reactivate",
        "close",
        "features",
    ):
        await page.goto(f"{actions}/{rest}")
        await _audit(page, "admin-action-" + rest.split("/")[0])
    # a refused form keeps what was typed and says why, next to the field
    await page.goto(f"{actions}/close")
    await page.locator("#f-confirm_slug").fill("not-the-slug")
    await page.locator("#f-reason").fill("Contract ended")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#f-confirm_slug-error")).to_have_text(
        "Type the organization's identifier exactly to confirm."
    )
    await expect(page.locator("#f-reason")).to_have_value("Contract ended")
    await _audit(page, "admin-action-close-error")
