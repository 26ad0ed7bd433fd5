"""The account managers' actions on a tenant (`admin.tenant_actions`): each works through its
form and its confirmation, writes the tenant's audit event (by the service provider, with the
reason) and the staff trail's; bad input is a 4xx with its message and writes nothing; another
tenant's ids under a tenant's path are unknown; support staff and content editors are refused
(403) and a tenant's owner is told nothing exists (404). Also the features they toggle, which
the API tokens and the webhooks enforce, and the amount parser a transfer is read with."""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar

from admin import tenant_actions
from billing import invoices
from billing.catalogue import PlanFields, create_plan, set_price
from billing.payments import parse_amount
from billing.seats import SeatPackFields, add_seat_pack
from billing.subscriptions import current_subscription, subscribe, transition
from core.database import execute, fetch
from core.errors import Conflict, Forbidden, Invalid, Unauthenticated
from tenants import features
from tenants.features import Feature
from tenants.organizations import system_context
from tenants.tokens import create_token, token_context
from tenants.webhooks.endpoints import EndpointFields, create_endpoint
from tests.admin.conftest import StaffFixture, staff_login
from tests.api.conftest import Browser, browser_on
from tests.billing.plans import STAFF, per_seat_plan
from tests.conftest import TenantFixture
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")

REASON = "Customer asked by phone"
CREDIT_NOTES = "SELECT 1 FROM invoice WHERE tenant_id = $1 AND kind = 'credit_note'"


# --- seeding ------------------------------------------------------------------------------


async def seat_pack_city(tenant: TenantFixture, *, pack_seats: int = 10) -> None:
    """The tenant on an active yearly seat-pack plan (packs of `pack_seats`, 1000 cents)."""
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"packs-{uuid4().hex[:10]}",
            kind="seat_pack",
            names={"en": "Seat packs", "fr": "Packs de sièges"},
            interval="year",
            overage_policy="block",
            pack_seats=pack_seats,
            pack_validity_months=12,
        ),
    )
    await set_price(STAFF, plan.code, "EUR", 1000)
    await subscribe(
        tenant.owner_ctx,
        plan.code,
        at=datetime.now(UTC) - timedelta(days=1),
        quantity=1,
        trial=False,
    )


async def per_seat(tenant: TenantFixture, *, trial: bool = False, seats: int = 5) -> None:
    plan = await per_seat_plan(1000, trial_days=14 if trial else 0)
    await subscribe(
        tenant.owner_ctx,
        plan.code,
        at=datetime.now(UTC) - timedelta(days=1),
        quantity=seats,
        trial=trial,
    )


async def issued_invoice(tenant: TenantFixture, net: int = 100_000) -> invoices.Invoice:
    ctx = system_context(tenant.owner_ctx.tenant, "tests")
    draft = await invoices.draft_invoice(
        ctx, [invoices.LineInput("adjustment", "Onboarding days", 1, net)], currency="EUR"
    )
    return await invoices.issue_invoice(ctx, draft.id)


async def events(tenant: TenantFixture, action: str) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        rows = await fetch(
            """SELECT actor_kind, actor_label, details FROM audit_event
               WHERE tenant_id = $1 AND action = $2 ORDER BY occurred_at""",
            tenant.id,
            action,
        )
    return [{**row, "details": json.loads(row["details"])} for row in rows]


async def trail(tenant: TenantFixture, action: str) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await fetch(
            """SELECT staff_label, reason, organization_id, target_id FROM staff_audit
               WHERE organization_id = $1 AND action = $2 ORDER BY occurred_at""",
            tenant.id,
            action,
        )


async def one(tenant: TenantFixture, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await fetch(sql, tenant.id, *args)


def url(tenant: TenantFixture, rest: str) -> str:
    return f"/admin/tenants/{tenant.id}/actions/{rest}"


async def act(
    browser: Browser, tenant: TenantFixture, rest: str, data: dict[str, str], *, apply: bool = True
) -> Any:
    """Submit an action's form (the first step), and with `apply` its confirmation's
    `step=apply` with the confirmation's single-use nonce (when the first step is refused,
    `step=apply` is posted anyway without one: it must be refused the same way)."""
    form = {"reason": REASON, **data, "step": "preview"}
    first = await browser.post(url(tenant, rest), form, page=url(tenant, rest))
    if not apply:
        return first
    return await browser.post(
        url(tenant, rest), {**form, **confirmed(first), "step": "apply"}, page=url(tenant, rest)
    )


def confirmed(page: Any) -> dict[str, str]:
    """The confirmation page's nonce ({} when the response is no confirmation page)."""
    found = re.search(r'name="nonce" value="([^"]+)"', page.text)
    return {"nonce": found.group(1)} if page.status_code == 200 and found else {}


async def assert_logged(
    tenant: TenantFixture, staff: StaffFixture, action: str, count: int = 1
) -> list[dict[str, Any]]:
    """`action` recorded `count` times in the tenant's log (by staff, with the reason) and in
    the staff trail (naming the tenant and the reason)."""
    logged = await events(tenant, action)
    assert len(logged) == count, logged
    assert all(e["actor_kind"] == "staff" for e in logged)
    assert all(e["details"]["reason"] == REASON for e in logged)
    assert all(e["actor_label"] == staff.user.email for e in logged)
    staff_rows = await trail(tenant, action)
    assert len(staff_rows) == count
    assert all(r["reason"] == REASON and r["staff_label"] == staff.user.email for r in staff_rows)
    return logged


def error_text(response: Any) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.text))


# --- seat packs ---------------------------------------------------------------------------


async def test_an_account_manager_adds_a_seat_pack_confirmed_and_invoiced(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    await seat_pack_city(tenant_a)
    page = await am_browser.get(url(tenant_a, "seat-pack"))
    assert page.status_code == 200
    assert "Add a seat pack" in page.text
    today = datetime.now(UTC).date().isoformat()
    fields = {"seats": "25", "starts_on": today, "reference": "BC-2026-17", "invoice": "on"}
    confirm = await act(am_browser, tenant_a, "seat-pack", fields, apply=False)
    assert confirm.status_code == 200
    assert "Confirm" in confirm.text
    assert "BC-2026-17" in confirm.text
    assert await one(tenant_a, "SELECT 1 FROM seat_pack WHERE tenant_id = $1") == []

    done = await act(am_browser, tenant_a, "seat-pack", fields)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/tenants/{tenant_a.id}"
    packs = await one(tenant_a, "SELECT seats, reference FROM seat_pack WHERE tenant_id = $1")
    assert packs == [{"seats": 25, "reference": "BC-2026-17"}]
    added = await assert_logged(tenant_a, account_manager, "billing.seat_pack.added")
    assert added[0]["details"]["seats"] == 25
    billed = await one(
        tenant_a, "SELECT status, total FROM invoice WHERE tenant_id = $1 AND kind = 'invoice'"
    )
    assert [row["status"] for row in billed] == ["open"]  # 3 packs of 10 seats

    listed = await am_browser.get(url(tenant_a, "seat-pack"))
    assert "BC-2026-17" in listed.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"seats": "10", "reason": ""}, "Give the reason for this action."),
        ({"seats": "-3"}, "A seat pack holds a whole number of seats"),
        ({"seats": "ten"}, "Enter a whole number."),
        ({"seats": "10", "starts_on": "2026-13-40"}, "Enter a date as YYYY-MM-DD."),
        ({"seats": "10", "ends_on": "2020-01-01"}, "A seat pack ends on or after the day"),
        ({"seats": "10", "category": "vip"}, "Unknown price category."),
    ],
)
async def test_a_bad_seat_pack_is_refused_and_nothing_is_written(
    am_browser: Browser, tenant_a: TenantFixture, data: dict[str, str], message: str
) -> None:
    await seat_pack_city(tenant_a)
    form = {"starts_on": datetime.now(UTC).date().isoformat(), "category": "standard", **data}
    for apply in (False, True):
        response = await act(am_browser, tenant_a, "seat-pack", form, apply=apply)
        assert response.status_code == 422, response.text
        assert message in error_text(response)
    assert await one(tenant_a, "SELECT 1 FROM seat_pack WHERE tenant_id = $1") == []
    assert await trail(tenant_a, "billing.seat_pack.added") == []


async def test_a_pack_is_removed_unless_its_seats_are_used_this_period(
    am_browser: Browser,
    account_manager: StaffFixture,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    await seat_pack_city(tenant_a)
    await seat_pack_city(tenant_b)
    today = datetime.now(UTC).date() - timedelta(days=1)
    kept = await add_seat_pack(tenant_a.owner_ctx, STAFF, SeatPackFields(10, today))
    spare = await add_seat_pack(tenant_a.owner_ctx, STAFF, SeatPackFields(5, today))
    theirs = await add_seat_pack(tenant_b.owner_ctx, STAFF, SeatPackFields(5, today))
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    async with as_tenant(tenant_a.id):
        await execute(
            """INSERT INTO seat_balance (tenant_id, id, period_start, used, capacity,
                   overage_policy, updated_at) VALUES ($1, $2, $3, 12, 15, 'block', now())""",
            tenant_a.id,
            uuid4(),
            sub.current_period_start,
        )

    # tenant B's pack under tenant A's path: unknown, and untouched
    assert (await am_browser.get(url(tenant_a, f"seat-pack/{theirs.id}/remove"))).status_code == 404
    refused = await act(am_browser, tenant_a, f"seat-pack/{theirs.id}/remove", {})
    assert refused.status_code == 404
    assert (
        await one(
            tenant_b, "SELECT 1 FROM seat_pack WHERE tenant_id = $1 AND removed_at IS NOT NULL"
        )
        == []
    )

    # 12 seats used: without the pack of 10 only 5 would be left
    page = await am_browser.get(url(tenant_a, f"seat-pack/{kept.id}/remove"))
    assert page.status_code == 200
    in_use = await act(am_browser, tenant_a, f"seat-pack/{kept.id}/remove", {})
    assert in_use.status_code == 409
    assert "12 seats are already used this period" in error_text(in_use)
    # nor the pack of 5: 10 seats would be left for 12 used
    also_in_use = await act(am_browser, tenant_a, f"seat-pack/{spare.id}/remove", {})
    assert also_in_use.status_code == 409
    assert await trail(tenant_a, "billing.seat_pack.removed") == []

    async with as_tenant(tenant_a.id):
        await execute("UPDATE seat_balance SET used = 9 WHERE tenant_id = $1", tenant_a.id)
    removed = await act(am_browser, tenant_a, f"seat-pack/{spare.id}/remove", {})
    assert removed.status_code == 303
    await assert_logged(tenant_a, account_manager, "billing.seat_pack.removed")
    left = await one(
        tenant_a, "SELECT id FROM seat_pack WHERE tenant_id = $1 AND removed_at IS NULL"
    )
    assert [row["id"] for row in left] == [kept.id]


# --- payments and credit notes ------------------------------------------------------------


def grouped(minor: int) -> str:
    """120050 as "1 200,50": how a French bank statement writes it."""
    whole, cents = divmod(minor, 100)
    return f"{whole:,}".replace(",", " ") + f",{cents:02d}"


async def test_a_bank_transfer_is_recorded_against_an_invoice(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    invoice = await issued_invoice(tenant_a)
    page = await am_browser.get(url(tenant_a, f"payment/{invoice.id}"))
    assert page.status_code == 200
    assert str(invoice.number) in page.text
    data = {
        "amount": grouped(invoice.total),
        "received_on": datetime.now(UTC).date().isoformat(),
        "reference": "VIR-2026-0042",
    }
    confirm = await act(am_browser, tenant_a, f"payment/{invoice.id}", data, apply=False)
    assert confirm.status_code == 200
    assert "VIR-2026-0042" in confirm.text
    done = await act(am_browser, tenant_a, f"payment/{invoice.id}", data)
    assert done.status_code == 303
    after = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    assert (after.status, after.amount_paid) == ("paid", invoice.total)
    recorded = await assert_logged(tenant_a, account_manager, "billing.payment.recorded")
    assert recorded[0]["details"]["amount"] == invoice.total
    again = await act(am_browser, tenant_a, f"payment/{invoice.id}", data)
    assert again.status_code == 422  # nothing is due any more
    assert len(await one(tenant_a, "SELECT 1 FROM payment WHERE tenant_id = $1")) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "1,200"}, "A comma followed by three digits is ambiguous"),
        ({"amount": "-5"}, "Give the amount received, such as 1200.50."),
        ({"amount": "99999"}, "This payment is more than the"),
        ({"received_on": "2999-01-01"}, "A payment cannot have been received in the future."),
        ({"received_on": "yesterday"}, "Enter a date as YYYY-MM-DD."),
        ({"reference": " "}, "A bank transfer needs the bank's reference."),
        ({"reason": "x"}, "Give the reason for this action."),
    ],
)
async def test_a_bad_transfer_is_refused_and_nothing_is_written(
    am_browser: Browser, tenant_a: TenantFixture, data: dict[str, str], message: str
) -> None:
    invoice = await issued_invoice(tenant_a, net=1000)
    form = {
        "amount": "10",
        "received_on": datetime.now(UTC).date().isoformat(),
        "reference": "VIR-1",
        **data,
    }
    for apply in (False, True):
        response = await act(am_browser, tenant_a, f"payment/{invoice.id}", form, apply=apply)
        assert response.status_code == 422, response.text
        assert message in error_text(response)
    assert await one(tenant_a, "SELECT 1 FROM payment WHERE tenant_id = $1") == []


async def test_another_tenants_invoice_is_unknown_under_a_tenants_path(
    am_browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    theirs = await issued_invoice(tenant_b)
    data = {
        "amount": "10",
        "received_on": datetime.now(UTC).date().isoformat(),
        "reference": "VIR-X",
    }
    for rest in (f"payment/{theirs.id}", f"credit-note/{theirs.id}"):
        assert (await am_browser.get(url(tenant_a, rest))).status_code == 404
        assert (await act(am_browser, tenant_a, rest, data)).status_code == 404
    assert await one(tenant_b, "SELECT 1 FROM payment WHERE tenant_id = $1") == []
    after = await invoices.get_invoice(tenant_b.owner_ctx, theirs.id)
    assert (after.status, after.amount_paid) == ("open", 0)
    assert (
        await one(tenant_b, "SELECT 1 FROM invoice WHERE tenant_id = $1 AND kind = 'credit_note'")
        == []
    )


async def test_a_partial_then_a_full_credit_note(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    await per_seat(tenant_a)
    ctx = system_context(tenant_a.owner_ctx.tenant, "tests")
    await transition(ctx, "past_due", reason="tests", at=datetime.now(UTC))
    invoice = await issued_invoice(tenant_a)
    over = await act(am_browser, tenant_a, f"credit-note/{invoice.id}", {"amount": "999999"})
    assert over.status_code == 422
    assert "Credit an amount between 0.01 and what is still due" in error_text(over)
    assert (
        await one(tenant_a, "SELECT 1 FROM invoice WHERE tenant_id = $1 AND kind = 'credit_note'")
        == []
    )

    partial = await act(am_browser, tenant_a, f"credit-note/{invoice.id}", {"amount": "100,00"})
    assert partial.status_code == 303
    after = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    assert (after.status, after.amount_paid) == ("open", 10_000)
    notes = await one(
        tenant_a,
        "SELECT total, subtotal, tax_total, status FROM invoice"
        " WHERE tenant_id = $1 AND kind = 'credit_note'",
    )
    assert notes[0]["total"] == 10_000
    assert notes[0]["status"] == "paid"
    assert notes[0]["subtotal"] + notes[0]["tax_total"] == 10_000
    await assert_logged(tenant_a, account_manager, "billing.invoice.credited")

    rest = after.total - after.amount_paid
    full = await act(am_browser, tenant_a, f"credit-note/{invoice.id}", {"amount": grouped(rest)})
    assert full.status_code == 303
    settled = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    assert (settled.status, settled.amount_paid) == ("paid", settled.total)
    # nothing overdue any more: the past-due subscription is settled as after a payment
    assert (await current_subscription(tenant_a.owner_ctx)).status == "active"  # type: ignore[union-attr]


async def test_a_discount_waits_for_the_next_invoice(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    await per_seat(tenant_a)  # 5 seats at 10.00 a month: 50.00 a period
    too_much = await act(
        am_browser, tenant_a, "discount", {"amount": "60", "description": "Goodwill"}
    )
    assert too_much.status_code == 422
    assert "at most one period" in error_text(too_much)
    both = await act(
        am_browser,
        tenant_a,
        "discount",
        {"amount": "6", "percent": "10", "description": "Goodwill"},
    )
    assert both.status_code == 422
    assert await one(tenant_a, "SELECT 1 FROM pending_charge WHERE tenant_id = $1") == []

    done = await act(
        am_browser, tenant_a, "discount", {"percent": "20", "description": "Late onboarding"}
    )
    assert done.status_code == 303
    charges = await one(tenant_a, "SELECT amount, kind FROM pending_charge WHERE tenant_id = $1")
    assert charges == [{"amount": -1000, "kind": "other"}]
    await assert_logged(tenant_a, account_manager, "billing.discount.granted")
    bill = await invoices.bill_period(tenant_a.owner_ctx)
    assert bill is not None
    assert [line.amount for line in bill.lines] == [5000, -1000]


# --- the plan and the trial ---------------------------------------------------------------


async def test_a_plan_change_is_previewed_then_applied(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    await per_seat(tenant_a)
    page = await am_browser.get(url(tenant_a, "plan"))
    assert page.status_code == 200
    preview = await act(am_browser, tenant_a, "plan", {"quantity": "8"}, apply=False)
    assert preview.status_code == 200
    assert "Remaining time on" in preview.text
    assert "Unused time on" in preview.text
    assert (await current_subscription(tenant_a.owner_ctx)).quantity == 5  # type: ignore[union-attr]
    done = await act(am_browser, tenant_a, "plan", {"quantity": "8"})
    assert done.status_code == 303
    assert (await current_subscription(tenant_a.owner_ctx)).quantity == 8  # type: ignore[union-attr]
    await assert_logged(tenant_a, account_manager, "billing.subscription.changed")

    unknown = await act(am_browser, tenant_a, "plan", {"plan": "no-such-plan"})
    assert unknown.status_code == 422
    zero = await act(am_browser, tenant_a, "plan", {"quantity": "0"})
    assert zero.status_code == 422
    assert (await current_subscription(tenant_a.owner_ctx)).quantity == 8  # type: ignore[union-attr]


async def test_a_trial_is_extended_within_bounds(
    am_browser: Browser,
    account_manager: StaffFixture,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    await per_seat(tenant_a, trial=True)
    before = await current_subscription(tenant_a.owner_ctx)
    assert before is not None
    assert before.trial_end is not None
    for days in ("0", "91", "x"):
        refused = await act(am_browser, tenant_a, "trial", {"days": days})
        assert refused.status_code == 422
    done = await act(am_browser, tenant_a, "trial", {"days": "10"})
    assert done.status_code == 303
    after = await current_subscription(tenant_a.owner_ctx)
    assert after is not None
    assert after.trial_end == before.trial_end + timedelta(days=10)
    await assert_logged(tenant_a, account_manager, "billing.subscription.trial_extended")

    await per_seat(tenant_b)  # active: no trial to extend
    not_trialing = await act(am_browser, tenant_b, "trial", {"days": "5"})
    assert not_trialing.status_code == 422
    assert "Only a subscription in its trial" in error_text(not_trialing)


# --- suspending, closing, reopening -------------------------------------------------------


async def test_suspend_then_reactivate_leaves_the_subscription_to_billing(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    """Suspending the organization does not suspend a past-due subscription (only dunning
    does, for not paying); reactivating settles it as a payment would: with nothing overdue,
    active again."""
    await per_seat(tenant_a)
    ctx = system_context(tenant_a.owner_ctx.tenant, "tests")
    await transition(ctx, "past_due", reason="tests", at=datetime.now(UTC))
    assert (await act(am_browser, tenant_a, "suspend", {"reason": ""})).status_code == 422
    done = await act(am_browser, tenant_a, "suspend", {})
    assert done.status_code == 303
    org = await one(tenant_a, "SELECT status FROM organization WHERE id = $1")
    assert org == [{"status": "suspended"}]
    assert (await current_subscription(tenant_a.owner_ctx)).status == "past_due"  # type: ignore[union-attr]
    await assert_logged(tenant_a, account_manager, "organization.suspended")
    assert (await act(am_browser, tenant_a, "suspend", {})).status_code == 422  # already

    back = await act(am_browser, tenant_a, "reactivate", {})
    assert back.status_code == 303
    org = await one(tenant_a, "SELECT status FROM organization WHERE id = $1")
    assert org == [{"status": "trial"}]  # what it was before
    assert (await current_subscription(tenant_a.owner_ctx)).status == "active"  # type: ignore[union-attr]
    await assert_logged(tenant_a, account_manager, "organization.reactivated")


async def test_closing_needs_the_slug_keeps_the_data_and_can_be_undone(
    am_browser: Browser,
    account_manager: StaffFixture,
    tenant_a: TenantFixture,
    app: Litestar,
) -> None:
    await per_seat(tenant_a)
    for data, message in (
        ({"confirm_slug": "wrong", "retention_days": "90"}, "Type the organization's identifier"),
        ({"confirm_slug": tenant_a.slug, "retention_days": "10"}, "between 30 and 365 days"),
    ):
        refused = await act(am_browser, tenant_a, "close", data)
        assert refused.status_code == 422
        assert message in error_text(refused)
    assert await one(tenant_a, "SELECT status FROM organization WHERE id = $1") == [
        {"status": "trial"}
    ]

    confirm = await act(am_browser, tenant_a, "close", {"confirm_slug": tenant_a.slug}, apply=False)
    assert confirm.status_code == 200
    done = await act(am_browser, tenant_a, "close", {"confirm_slug": tenant_a.slug.upper()})
    assert done.status_code == 303
    rows = await one(
        tenant_a, "SELECT status, closed_at, delete_after FROM organization WHERE id = $1"
    )
    assert rows[0]["status"] == "closed"
    assert rows[0]["closed_at"] is not None
    assert rows[0]["delete_after"] == datetime.now(UTC).date() + timedelta(days=90)
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.cancel_at_period_end
    assert sub.status == "active"
    closed = await assert_logged(tenant_a, account_manager, "organization.closed")
    assert closed[0]["details"]["retention_days"] == 90
    async with browser_on(app) as owner:
        await owner.login(tenant_a.owner)
        assert (await owner.get(f"/o/{tenant_a.slug}")).status_code == 404

    reopened = await act(am_browser, tenant_a, "reactivate", {})
    assert reopened.status_code == 303
    rows = await one(
        tenant_a, "SELECT status, closed_at, delete_after FROM organization WHERE id = $1"
    )
    assert rows == [{"status": "trial", "closed_at": None, "delete_after": None}]
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert not sub.cancel_at_period_end
    async with browser_on(app) as owner:
        await owner.login(tenant_a.owner)
        assert (await owner.get(f"/o/{tenant_a.slug}")).status_code == 200


# --- features -----------------------------------------------------------------------------


async def test_features_are_toggled_and_the_api_and_webhooks_enforce_them(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    issued = await create_token(tenant_a.owner_ctx, "ci", ["org:campaigns:read"], None)
    page = await am_browser.get(url(tenant_a, "features"))
    assert page.status_code == 200
    assert "Webhooks" in page.text
    on = {f"feature_{f.value}": "on" for f in Feature}
    nothing = await act(am_browser, tenant_a, "features", on)
    assert nothing.status_code == 422
    off = {k: v for k, v in on.items() if k not in ("feature_api_access", "feature_webhooks")}
    done = await act(am_browser, tenant_a, "features", off)
    assert done.status_code == 303
    changed = await assert_logged(tenant_a, account_manager, "organization.features_changed")
    assert set(changed[0]["details"]["changes"]) == {"api_access", "webhooks"}
    stored = await one(tenant_a, "SELECT features FROM organization WHERE id = $1")
    assert json.loads(stored[0]["features"]) == {"api_access": False, "webhooks": False}

    with pytest.raises(Forbidden):
        await create_token(tenant_a.owner_ctx, "again", ["org:campaigns:read"], None)
    with pytest.raises(Unauthenticated):
        await token_context(issued.token, None, "")
    with pytest.raises(Forbidden):
        await create_endpoint(
            tenant_a.owner_ctx,
            EndpointFields("https://hooks.example.org/jalon"),
        )
    with pytest.raises(Forbidden):  # the tenant's own people switch nothing
        await features.set_features(tenant_a.owner_ctx, {"api_access": True})
    with pytest.raises(Invalid):
        await features.set_features(system_context(tenant_a.owner_ctx.tenant), {"x": True})

    assert (await act(am_browser, tenant_a, "features", on)).status_code == 303
    assert (await token_context(issued.token, None, "")).tenant_id == tenant_a.id
    stored = await one(tenant_a, "SELECT features FROM organization WHERE id = $1")
    assert json.loads(stored[0]["features"]) == {}


def test_features_have_defaults_and_unknown_keys_are_off() -> None:
    assert features.enabled({}, Feature.API_ACCESS)
    assert not features.enabled({"api_access": False}, "api_access")
    assert features.enabled('{"webhooks": true}', Feature.WEBHOOKS)
    assert not features.enabled({}, "teleportation")


# --- amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("1200", 120_000),
        ("1200.50", 120_050),
        ("1200,50", 120_050),
        ("1 200,50", 120_050),
        ("1\u00a0200,50", 120_050),
        ("1\u202f200,50", 120_050),
        ("1,200.50", 120_050),
        ("1.200,50", 120_050),
        ("12 345 678", 1_234_567_800),
        ("1,234,567.00", 123_456_700),
    ],
)
def test_a_transfer_amount_is_read_as_a_statement_writes_it(text: str, minor: int) -> None:
    assert parse_amount(text, "EUR") == minor


@pytest.mark.parametrize("text", ["1,200", "1,200,50", "1 20,00", "12.345", "", "1e3", "-1"])
def test_an_ambiguous_or_malformed_amount_is_refused(text: str) -> None:
    with pytest.raises(Invalid):
        parse_amount(text, "EUR")


# --- who may act --------------------------------------------------------------------------


def _action_routes(app: Litestar) -> list[tuple[str, str]]:
    ours = [handler.fn for handler in tenant_actions.handlers]
    paths = []
    for route in app.routes:
        if "/actions/" not in route.path or not route.path.startswith("/admin/tenants/"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.fn not in ours:
                continue  # another module's action (impersonation)
            for method in handler.http_methods - {"HEAD", "OPTIONS"}:
                paths.append((method, route.path))
    return sorted(paths)


def _concrete(path: str, tenant: TenantFixture) -> str:
    path = path.replace("{tenant_id:uuid}", str(tenant.id))
    return re.sub(r"\{\w+:uuid\}", str(uuid4()), path)


@pytest.mark.parametrize("role", ["support", "content_editor"])
async def test_staff_without_the_permission_are_refused_every_action(
    app: Litestar,
    role: str,
    support: StaffFixture,
    content_editor: StaffFixture,
    tenant_a: TenantFixture,
) -> None:
    routes = _action_routes(app)
    assert len(routes) == len(tenant_actions.handlers) == 22
    staff = support if role == "support" else content_editor
    async with browser_on(app) as browser:
        await staff_login(browser, staff)
        for method, path in routes:
            target = _concrete(path, tenant_a)
            if method == "GET":
                response = await browser.get(target)
            else:
                response = await browser.post(
                    target,
                    {"reason": REASON, "step": "apply", "seats": "5"},
                    page="/admin/second-factor",
                )
            assert response.status_code == 403, f"{method} {path}: {response.status_code}"
    assert await trail(tenant_a, "billing.seat_pack.added") == []
    assert await events(tenant_a, "organization.suspended") == []


async def test_a_tenant_owner_is_told_the_actions_do_not_exist(
    app: Litestar, browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    for method, path in _action_routes(app):
        target = _concrete(path, tenant_a)
        if method == "GET":
            response = await browser.get(target)
        else:
            response = await browser.post(target, {"reason": REASON, "step": "apply"}, page="/")
        assert response.status_code == 404, f"{method} {path}"
    assert await events(tenant_a, "organization.suspended") == []


async def _overdue_invoice(tenant: TenantFixture) -> invoices.Invoice:
    """A bank-transfer invoice issued long enough ago for its due date to have passed."""
    ctx = system_context(tenant.owner_ctx.tenant, "tests")
    draft = await invoices.draft_invoice(
        ctx, [invoices.LineInput("adjustment", "Onboarding days", 1, 1000)], currency="EUR"
    )
    invoice = await invoices.issue_invoice(
        ctx, draft.id, at=datetime.now(UTC) - timedelta(days=120)
    )
    assert invoice.due_on is not None
    assert invoice.due_on < datetime.now(UTC).date()
    return invoice


@pytest.mark.parametrize("dunning_status", ["past_due", "suspended"])
async def test_reactivating_an_organization_clears_no_debt(
    am_browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture, dunning_status: str
) -> None:
    """With an invoice overdue, a past-due subscription stays past due and one dunning
    suspended stays suspended through the organization's suspension and reactivation (only
    a payment, through dunning's settlement, makes it active)."""
    await per_seat(tenant_a)
    await per_seat(tenant_b)
    ctx = system_context(tenant_a.owner_ctx.tenant, "tests")
    await _overdue_invoice(tenant_a)
    await transition(ctx, "past_due", reason="tests", at=datetime.now(UTC))
    if dunning_status == "suspended":
        await transition(
            ctx, "suspended", reason="dunning: grace period over", at=datetime.now(UTC)
        )
    assert (await act(am_browser, tenant_a, "suspend", {})).status_code == 303
    assert (await current_subscription(tenant_a.owner_ctx)).status == dunning_status  # type: ignore[union-attr]
    assert (await act(am_browser, tenant_a, "reactivate", {})).status_code == 303
    org = await one(tenant_a, "SELECT status FROM organization WHERE id = $1")
    assert org == [{"status": "trial"}]
    assert (await current_subscription(tenant_a.owner_ctx)).status == dunning_status  # type: ignore[union-attr]
    assert (await current_subscription(tenant_b.owner_ctx)).status == "active"  # type: ignore[union-attr]


# --- a confirmation applies once -----------------------------------------------------------


async def apply_twice(
    browser: Browser, tenant: TenantFixture, rest: str, data: dict[str, str]
) -> tuple[Any, Any]:
    """Confirm an action, then submit its confirmation twice (a double click, a reload)."""
    form = {"reason": REASON, **data, "step": "preview"}
    confirmation = await browser.post(url(tenant, rest), form, page=url(tenant, rest))
    assert confirmation.status_code == 200, confirmation.text
    applied = {**form, **confirmed(confirmation), "step": "apply"}
    assert "nonce" in applied
    first = await browser.post(url(tenant, rest), applied, page=url(tenant, rest))
    second = await browser.post(url(tenant, rest), applied, page=url(tenant, rest))
    assert first.status_code == 303, first.text
    assert second.status_code == 409, second.text
    assert "This action was already done" in error_text(second)
    return first, second


async def test_a_credit_note_confirmed_twice_is_issued_once(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    invoice = await issued_invoice(tenant_a)
    await apply_twice(am_browser, tenant_a, f"credit-note/{invoice.id}", {"amount": "100,00"})
    assert len(await one(tenant_a, CREDIT_NOTES)) == 1
    await assert_logged(tenant_a, account_manager, "billing.invoice.credited")
    after = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    assert after.amount_paid == 10_000


async def test_a_discount_confirmed_twice_is_granted_once(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    await per_seat(tenant_a)
    await apply_twice(am_browser, tenant_a, "discount", {"amount": "5", "description": "Sorry"})
    charges = await one(tenant_a, "SELECT amount FROM pending_charge WHERE tenant_id = $1")
    assert charges == [{"amount": -500}]
    await assert_logged(tenant_a, account_manager, "billing.discount.granted")


async def test_a_seat_pack_confirmed_twice_is_added_and_invoiced_once(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    await seat_pack_city(tenant_a)
    today = datetime.now(UTC).date().isoformat()
    fields = {"seats": "10", "starts_on": today, "category": "standard", "invoice": "on"}
    await apply_twice(am_browser, tenant_a, "seat-pack", fields)
    assert len(await one(tenant_a, "SELECT 1 FROM seat_pack WHERE tenant_id = $1")) == 1
    billed = await one(tenant_a, "SELECT 1 FROM invoice WHERE tenant_id = $1 AND kind = 'invoice'")
    assert len(billed) == 1
    await assert_logged(tenant_a, account_manager, "billing.seat_pack.added")


async def test_a_transfer_confirmed_twice_is_recorded_once(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    invoice = await issued_invoice(tenant_a)
    data = {
        "amount": "10",
        "received_on": datetime.now(UTC).date().isoformat(),
        "reference": "VIR-TWICE",
    }
    await apply_twice(am_browser, tenant_a, f"payment/{invoice.id}", data)
    assert len(await one(tenant_a, "SELECT 1 FROM payment WHERE tenant_id = $1")) == 1
    after = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    assert after.amount_paid == 1000
    await assert_logged(tenant_a, account_manager, "billing.payment.recorded")


async def test_a_confirmation_applies_only_what_it_showed_and_only_there(
    am_browser: Browser, tenant_a: TenantFixture
) -> None:
    invoice = await issued_invoice(tenant_a)
    other = await issued_invoice(tenant_a)
    rest = f"credit-note/{invoice.id}"
    form = {"reason": REASON, "amount": "10", "step": "preview"}

    async def nonce() -> dict[str, str]:
        page = await am_browser.post(url(tenant_a, rest), form, page=url(tenant_a, rest))
        return confirmed(page)

    # without the confirmation's nonce, with other values, or on another invoice: refused
    for path, data in (
        (rest, {**form, "step": "apply"}),
        (rest, {**form, **await nonce(), "amount": "900", "step": "apply"}),
        (f"credit-note/{other.id}", {**form, **await nonce(), "step": "apply"}),
    ):
        refused = await am_browser.post(url(tenant_a, path), data, page=url(tenant_a, path))
        assert refused.status_code == 409, refused.text
    assert await one(tenant_a, CREDIT_NOTES) == []


# --- two staff members on the features page -------------------------------------------------


def shown(page: Any) -> dict[str, str]:
    """The features form as the page shows it: its checkboxes ticked and the hidden state."""
    fields = dict(re.findall(r'type="hidden" name="(was_[a-z_]+)" value="(on|off)"', page.text))
    ticked = re.findall(r'name="(feature_[a-z_]+)" value="on" checked', page.text)
    return {**fields, **dict.fromkeys(ticked, "on")}


async def test_a_stale_features_page_changes_only_what_it_changed(
    am_browser: Browser, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    page = await am_browser.get(url(tenant_a, "features"))  # staff A's page, all on
    stale = shown(page)
    assert stale["was_webhooks"] == "on"
    assert stale["feature_webhooks"] == "on"
    # staff B turns the webhooks off meanwhile
    await features.set_features(system_context(tenant_a.owner_ctx.tenant), {"webhooks": False})

    # A, on the page shown before, turns the API access off: the webhooks stay off
    form = {k: v for k, v in stale.items() if k != "feature_api_access"}
    done = await act(am_browser, tenant_a, "features", form)
    assert done.status_code == 303, done.text
    logged = await events(tenant_a, "organization.features_changed")
    by_staff = [e for e in logged if e["actor_kind"] == "staff"]
    assert [set(e["details"]["changes"]) for e in by_staff] == [{"api_access"}]
    assert by_staff[0]["actor_label"] == account_manager.user.email
    stored = await one(tenant_a, "SELECT features FROM organization WHERE id = $1")
    assert json.loads(stored[0]["features"]) == {"api_access": False, "webhooks": False}


async def test_a_feature_changed_by_someone_else_meanwhile_is_refused(
    am_browser: Browser, tenant_a: TenantFixture
) -> None:
    stale = shown(await am_browser.get(url(tenant_a, "features")))
    await features.set_features(system_context(tenant_a.owner_ctx.tenant), {"webhooks": False})
    # A (page showing the webhooks on) turns them off too: refused, reload
    form = {k: v for k, v in stale.items() if k != "feature_webhooks"}
    refused = await act(am_browser, tenant_a, "features", form, apply=False)
    assert refused.status_code == 409
    assert "Someone else changed these features" in error_text(refused)
    assert shown(refused)["was_webhooks"] == "off"  # drawn again as stored now

    # confirmed before the other change, applied after it: refused too, nothing written
    fresh = shown(await am_browser.get(url(tenant_a, "features")))
    form = {"reason": REASON, **fresh, "feature_webhooks": "on", "step": "preview"}
    confirmation = await am_browser.post(
        url(tenant_a, "features"), form, page=url(tenant_a, "features")
    )
    assert confirmation.status_code == 200, confirmation.text
    await features.set_features(system_context(tenant_a.owner_ctx.tenant), {"webhooks": True})
    late = await am_browser.post(
        url(tenant_a, "features"),
        {**form, **confirmed(confirmation), "step": "apply"},
        page=url(tenant_a, "features"),
    )
    assert late.status_code == 409
    assert await trail(tenant_a, "organization.features_changed") == []
    # the service checks it under the organization's lock, whoever calls it
    with pytest.raises(Conflict):
        await features.set_features(
            system_context(tenant_a.owner_ctx.tenant),
            {"webhooks": True},
            expected={"webhooks": False},
        )


# --- a seat pack invoiced now needs what its invoice needs ----------------------------------


async def test_a_pack_to_invoice_now_is_refused_when_no_invoice_can_be_issued(
    am_browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    today = datetime.now(UTC).date().isoformat()
    fields = {"seats": "10", "starts_on": today, "category": "standard", "invoice": "on"}
    await per_seat(tenant_a)  # not a seat-pack plan
    await seat_pack_city(tenant_b)  # a seat-pack plan priced in the standard category only
    for tenant, data, message in (
        (tenant_a, fields, "is not a seat-pack plan"),
        (tenant_b, {**fields, "category": "reduced"}, "has no price in EUR for the category"),
    ):
        for apply in (False, True):
            refused = await act(am_browser, tenant, "seat-pack", data, apply=apply)
            assert refused.status_code == 422, refused.text
            assert message in error_text(refused)
        assert await one(tenant, "SELECT 1 FROM seat_pack WHERE tenant_id = $1") == []
        assert await one(tenant, "SELECT 1 FROM invoice WHERE tenant_id = $1") == []

    # unticked, the pack is added without an invoice
    done = await act(
        am_browser, tenant_a, "seat-pack", {k: v for k, v in fields.items() if k != "invoice"}
    )
    assert done.status_code == 303, done.text
    assert len(await one(tenant_a, "SELECT 1 FROM seat_pack WHERE tenant_id = $1")) == 1
    assert await one(tenant_a, "SELECT 1 FROM invoice WHERE tenant_id = $1") == []


async def test_a_pack_to_invoice_now_needs_a_subscription(
    am_browser: Browser, tenant_a: TenantFixture
) -> None:
    today = datetime.now(UTC).date().isoformat()
    fields = {"seats": "10", "starts_on": today, "category": "standard", "invoice": "on"}
    refused = await act(am_browser, tenant_a, "seat-pack", fields)
    assert refused.status_code == 422, refused.text
    assert "has no subscription" in error_text(refused)
    assert await one(tenant_a, "SELECT 1 FROM seat_pack WHERE tenant_id = $1") == []


async def test_a_double_click_on_a_confirmation_records_one_transfer(
    am_browser: Browser, tenant_a: TenantFixture
) -> None:
    """Both submissions arrive before either response saved the session: one is applied."""
    invoice = await issued_invoice(tenant_a)
    rest = f"payment/{invoice.id}"
    today = datetime.now(UTC).date().isoformat()
    form = {"reason": REASON, "amount": "10", "received_on": today, "reference": "VIR-DBL"}
    confirmation = await am_browser.post(
        url(tenant_a, rest), {**form, "step": "preview"}, page=url(tenant_a, rest)
    )
    applied = {**form, **confirmed(confirmation), "step": "apply"}
    results = await asyncio.gather(
        *(am_browser.post(url(tenant_a, rest), applied, page=url(tenant_a, rest)) for _ in "ab")
    )
    assert sorted(r.status_code for r in results) == [303, 409]
    assert len(await one(tenant_a, "SELECT 1 FROM payment WHERE tenant_id = $1")) == 1
