"""Billing in the console and the pricing page, over HTTP: admins see and change their
subscription (preview first), fill in their billing details, subscribe by themselves;
members are refused; bad input is a clear 4xx in the person's language and writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.catalogue import retire_plan
from billing.subscriptions import current_subscription, subscribe
from core import database
from tests.api.conftest import Browser, audit_actions
from tests.billing.plans import STAFF, per_seat_plan
from tests.conftest import TenantFixture
from tests.db import as_tenant


async def _trial(tenant: TenantFixture, seats: int = 10) -> str:
    plan = await per_seat_plan(500, trial_days=30)
    await subscribe(tenant.owner_ctx, plan.code, at=datetime.now(UTC), quantity=seats)
    return plan.code


async def _profile_rows(tenant: TenantFixture) -> int:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT count(*) AS n FROM billing_profile WHERE tenant_id = $1", tenant.id
        )
    return int(rows[0]["n"])


async def test_a_tenant_without_subscription_is_told_it_is_not_billed(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/billing")
    assert page.status_code == 200
    assert "it is not billed" in page.text
    assert f'href="/o/{tenant_a.slug}/billing"' in page.text  # the console's nav link


async def test_members_see_no_billing(browser: Browser, tenant_a: TenantFixture) -> None:
    await _trial(tenant_a)
    await browser.login(tenant_a.member)
    base = f"/o/{tenant_a.slug}/billing"
    assert (await browser.get(base)).status_code == 403
    assert f'href="{base}"' not in (await browser.get(f"/o/{tenant_a.slug}/")).text
    before = await audit_actions(tenant_a.id)
    refused = await browser.post(f"{base}/change", {"quantity": "50"}, page=f"/o/{tenant_a.slug}/")
    assert refused.status_code == 403
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.quantity == 10
    assert await audit_actions(tenant_a.id) == before


async def test_a_trial_is_shown_then_changed_after_a_preview(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await _trial(tenant_a, seats=10)
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/billing"
    page = await browser.get(base)
    assert "Free trial until" in page.text
    assert "€50.00 per month" in page.text
    preview = await browser.post(f"{base}/preview", {"quantity": "25"}, page=base)
    assert preview.status_code == 200
    assert "Confirm the change" in preview.text
    assert "€125.00" in preview.text  # the renewal at 25 seats
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.quantity == 10
    done = await browser.post(f"{base}/change", {"quantity": "25"}, page=base)
    assert done.status_code == 303
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.quantity == 25
    assert "billing.subscription.changed" in await audit_actions(tenant_a.id)


@pytest.mark.parametrize("quantity", ["-1", "0", "1000001", "many"])
async def test_absurd_seat_counts_are_refused_with_a_message(
    browser: Browser, tenant_a: TenantFixture, quantity: str
) -> None:
    await _trial(tenant_a)
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/billing"
    for action in ("preview", "change"):
        refused = await browser.post(f"{base}/{action}", {"quantity": quantity}, page=base)
        assert refused.status_code == 422
        assert "whole number" in refused.text
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.quantity == 10


async def test_cancelling_at_period_end_and_keeping_it(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await _trial(tenant_a)
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/billing"
    assert (await browser.post(f"{base}/cancel", page=base)).status_code == 303
    assert "it will not renew" in (await browser.get(base)).text
    assert (await browser.post(f"{base}/cancel", {"resume": "1"}, page=base)).status_code == 303
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert not sub.cancel_at_period_end


async def test_a_tenant_subscribes_by_itself_and_is_invoiced(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    plan = await per_seat_plan(700, trial_days=0)
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/billing"
    assert plan.code in (await browser.get(base)).text
    form = {"plan": plan.code, "quantity": "12", "method": "invoice", "currency": "EUR"}
    done = await browser.post(f"{base}/subscribe", form, page=base)
    assert done.status_code == 303, done.text
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert (sub.status, sub.quantity, sub.collection_method) == ("active", 12, "send_invoice")
    async with as_tenant(tenant_a.id):
        invoices = await database.fetch(
            "SELECT total FROM invoice WHERE tenant_id = $1 AND status <> 'draft'", tenant_a.id
        )
    assert len(invoices) == 1


async def test_a_trial_converts_to_invoiced_payment(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    code = await _trial(tenant_a)
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/billing"
    form = {"plan": code, "quantity": "10", "method": "invoice"}
    assert (await browser.post(f"{base}/subscribe", form, page=base)).status_code == 303
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.status == "active"
    assert sub.trial_end is not None
    assert sub.trial_end <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currency": "EUX"}, "Unknown currency"),
        ({"method": "card"}, "Card payments are not set up"),
        ({"method": "cheque"}, "Choose how to pay"),
        ({"quantity": "1000001"}, "whole number"),
    ],
)
async def test_wrong_self_serve_choices_are_refused_and_nothing_is_written(
    browser: Browser, tenant_a: TenantFixture, change: dict[str, str], message: str
) -> None:
    plan = await per_seat_plan(700)
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/billing"
    form = {"plan": plan.code, "quantity": "12", "method": "invoice", **change}
    refused = await browser.post(f"{base}/subscribe", form, page=base)
    assert refused.status_code == 422
    assert message in refused.text
    assert await current_subscription(tenant_a.owner_ctx) is None


VALID_DETAILS = {
    "legal_name": "Atelier SAS",
    "country": "FR",
    "billing_email": "billing@atelier.example",
    "address_line1": "1 rue de la Paix",
    "postal_code": "75002",
    "city": "Paris",
    "buyer_kind": "business",
}


async def test_billing_details_are_saved(browser: Browser, tenant_a: TenantFixture) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/billing/profile"
    form = {**VALID_DETAILS, "vat_number": "FR40303265045", "siret": "73282932000074"}
    assert (await browser.post(page, form, page=page)).status_code == 303
    assert "FR40303265045" in (await browser.get(f"/o/{tenant_a.slug}/billing")).text
    assert "billing.profile.updated" in await audit_actions(tenant_a.id)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vat_number": "FR12345"}, "This VAT number is not valid for FR."),
        ({"siret": "12345678901234"}, "This SIRET number is not valid"),
        ({"po_number": "P" * 65}, "at most 64 characters"),
        ({"country": "ZZ"}, "Choose a country"),
        ({"chorus_service_code": "C" * 101}, "at most 100 characters"),
    ],
)
async def test_wrong_billing_details_are_refused_and_nothing_is_written(
    browser: Browser, tenant_a: TenantFixture, change: dict[str, str], message: str
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/billing/profile"
    refused = await browser.post(page, {**VALID_DETAILS, **change}, page=page)
    assert refused.status_code == 422
    assert message in refused.text
    assert await _profile_rows(tenant_a) == 0


async def test_errors_speak_the_persons_language(browser: Browser, tenant_a: TenantFixture) -> None:
    async with database.transaction():
        await database.execute(
            "UPDATE user_account SET locale = 'fr' WHERE id = $1", tenant_a.owner.id
        )
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/billing/profile"
    refused = await browser.post(page, {**VALID_DETAILS, "legal_name": ""}, page=page)
    assert refused.status_code == 422
    assert "Ce champ est obligatoire." in refused.text


async def test_members_may_not_write_billing_details(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    page = f"/o/{tenant_a.slug}/billing/profile"
    refused = await browser.post(page, VALID_DETAILS, page=f"/o/{tenant_a.slug}/")
    assert refused.status_code == 403
    assert await _profile_rows(tenant_a) == 0


async def test_the_pricing_page_lists_plans_on_offer_in_the_visitors_language(
    browser: Browser, db: str
) -> None:
    plan = await per_seat_plan(1234)
    retired = await per_seat_plan(999)
    await retire_plan(STAFF, retired.code, at=datetime.now(UTC) - timedelta(days=1))
    english = await browser.get("/pricing")
    assert english.status_code == 200
    assert f'id="plan-{plan.code}"' in english.text
    assert "€12.34" in english.text
    assert f'id="plan-{retired.code}"' not in english.text
    french = await browser.get("/pricing", headers={"accept-language": "fr"})
    assert "Par siège" in french.text
    assert "12,34\xa0€" in french.text


async def test_the_demo_bills_its_three_organizations_once(db: str) -> None:
    from api.demo import ORGANIZATIONS, _context, seed
    from billing.seats import usage_summary

    await seed()
    await seed()
    by_slug = {demo.fields.slug: demo for demo in ORGANIZATIONS}
    found = {}
    for slug, demo in by_slug.items():
        ctx = await _context(demo)
        sub = await current_subscription(ctx)
        assert sub is not None
        async with as_tenant(ctx.tenant_id):
            issued = await database.fetch(
                "SELECT currency, total FROM invoice WHERE tenant_id = $1 AND status <> 'draft'",
                ctx.tenant_id,
            )
        summary = await usage_summary(ctx)
        assert summary is not None
        found[slug] = (sub.plan.kind, sub.status, sub.currency, len(issued), summary.used)
    assert found["atelier-numerique"][:4] == ("per_seat", "trialing", "EUR", 0)
    assert found["ville-de-belleval"] == ("seat_pack", "active", "EUR", 1, 3)
    assert found["nordvik-digital"][:4] == ("license", "active", "NOK", 1)


async def test_a_late_payment_says_what_to_pay(browser: Browser, tenant_a: TenantFixture) -> None:
    from billing.invoices import bill_period
    from billing.subscriptions import transition

    plan = await per_seat_plan(1000, trial_days=0)
    now = datetime.now(UTC)
    await subscribe(tenant_a.owner_ctx, plan.code, at=now, quantity=3, trial=False)
    await bill_period(tenant_a.owner_ctx, at=now)
    await transition(tenant_a.owner_ctx, "past_due", reason="invoice unpaid", at=now)
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/billing")
    assert "Payment is late since" in page.text
    assert "€36.00 is due." in page.text  # 3 seats at 10.00, and 20 % VAT


async def test_an_active_subscription_previews_a_prorated_change(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    await subscribe(tenant_a.owner_ctx, plan.code, at=datetime.now(UTC), quantity=3, trial=False)
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/billing"
    preview = await browser.post(f"{base}/preview", {"quantity": "6"}, page=base)
    assert preview.status_code == 200
    assert "Unused time on Per seat × 3" in preview.text
    assert "Remaining time on Per seat × 6" in preview.text
    assert "These amounts are added to your next invoice." in preview.text


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"plan": "a\x00b", "quantity": "3", "method": "invoice"}, "plan"),
        ({"plan": "x", "quantity": "3\x00", "method": "invoice"}, "quantity"),
        ({"plan": "x", "quantity": "3", "method": "invoice\x1b"}, "method"),
    ],
)
async def test_a_control_character_in_a_form_is_a_clear_422(
    browser: Browser, tenant_a: TenantFixture, form: dict[str, str], field: str
) -> None:
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/billing"
    refused = await browser.post(f"{base}/subscribe", form, page=base)
    assert refused.status_code == 422
    assert "This field contains characters that are not allowed." in refused.text
    assert await current_subscription(tenant_a.owner_ctx) is None


async def test_plans_of_another_interval_are_not_offered_to_a_subscription(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    # a change of interval is refused (cancel, then choose), during the trial too
    plan = await per_seat_plan(1000, trial_days=30)
    yearly = await per_seat_plan(10_000, interval="year")
    await subscribe(tenant_a.owner_ctx, plan.code, at=datetime.now(UTC), quantity=3)
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/billing")
    assert f'value="{plan.code}"' in page.text
    assert f'value="{yearly.code}"' not in page.text


async def test_open_invoices_in_two_currencies_are_summed_per_currency(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    from billing.invoices import LineInput, bill_period, draft_invoice, issue_invoice
    from tenants.organizations import system_context

    plan = await per_seat_plan(1000, trial_days=0)
    now = datetime.now(UTC)
    await subscribe(tenant_a.owner_ctx, plan.code, at=now, quantity=3, trial=False)
    await bill_period(tenant_a.owner_ctx, at=now)  # €36.00
    system = system_context(tenant_a.owner_ctx.tenant, "tests")
    dollars = await draft_invoice(
        system,
        [LineInput(kind="adjustment", description="Workshop", quantity=1, unit_amount=1000)],
        currency="USD",
    )
    await issue_invoice(system, dollars.id, at=now)  # US$12.00 (en_GB: a European reader)
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/billing")
    assert "€36.00 + US$12.00 is due." in page.text
    assert "€48.00" not in page.text


def test_the_seat_banner_is_read_for_html_pages_only() -> None:
    from api.routes import billing_console, billing_invoices, billing_usage
    from web.guards import renders_a_page

    assert renders_a_page(billing_console.billing_page)
    assert renders_a_page(billing_usage.usage_page)
    assert renders_a_page(billing_console.billing_change)  # a page or a redirect
    assert not renders_a_page(billing_invoices.invoice_file)  # the invoice's PDF or XML
