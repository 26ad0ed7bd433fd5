"""The `bill` overage policy: the seats used beyond the allowance in a period go on the next
invoice, found from the seat ledger's own period rows (a short month, the end of a trial),
each seat billed once: on Jalon's next period invoice (manual gateway), on the final invoice
at cancellation, and as one Stripe invoice item per period on a Stripe subscription, however
often its webhooks come."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from billing import seats
from billing.catalogue import PlanFields, create_plan, set_price
from billing.changes import ChangeRequest, apply_change
from billing.gateways.stripe import StripeGateway
from billing.invoices import BillableSubscription, bill_period, overage_seat_price
from billing.renewals import renew
from billing.subscriptions import current_subscription, subscribe
from core.database import execute, fetch, tenant_transaction
from core.jobs import InProcessQueue
from tests.billing.conftest import deliver, subscribe_on_stripe
from tests.billing.plans import STAFF, per_seat_plan
from tests.billing.stripe_server import StripeServer
from tests.conftest import TenantFixture
from tests.db import as_tenant

T0 = datetime(2027, 3, 1, tzinfo=UTC)


async def _consume(tenant: TenantFixture, learners: int, at: datetime) -> None:
    """`learners` people each start a seat-consuming participation at `at`."""
    ctx = tenant.owner_ctx
    async with tenant_transaction(ctx):
        for _ in range(learners):
            outcome = await seats.consume_seat(ctx, uuid4(), uuid4(), at)
            assert outcome.admitted


async def _lines(tenant: TenantFixture) -> list[dict[str, Any]]:
    """Every issued invoice line of the tenant, with its invoice's key and totals."""
    async with as_tenant(tenant.id):
        return await fetch(
            """SELECT i.billing_key, i.period_start AS invoice_start, i.subtotal, i.total,
                      l.kind, l.quantity, l.unit_amount, l.amount, l.period_start, l.period_end
               FROM invoice i JOIN invoice_line l
                 ON l.tenant_id = i.tenant_id AND l.invoice_id = i.id
               WHERE i.tenant_id = $1 AND i.status <> 'draft'
               ORDER BY i.issued_at, i.number, l.position""",
            tenant.id,
        )


def _overage(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["kind"] == "overage"]


async def test_overage_goes_on_the_next_period_invoice_once_at_the_seat_price(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)  # `bill`, no overage price: 10.00 a seat
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=2, trial=False)
    await subscribe(tenant_b.owner_ctx, plan.code, at=T0, quantity=2, trial=False)
    await _consume(tenant_a, 5, T0 + timedelta(days=3))  # 2 seats, 3 beyond them
    await _consume(tenant_b, 2, T0 + timedelta(days=3))  # all within the allowance

    april = datetime(2027, 4, 1, tzinfo=UTC)
    await renew(tenant_a.owner_ctx, at=april + timedelta(minutes=30))
    await renew(tenant_b.owner_ctx, at=april + timedelta(minutes=30))
    lines = await _lines(tenant_a)
    [overage] = _overage(lines)
    assert (overage["quantity"], overage["unit_amount"], overage["amount"]) == (3, 1000, 3000)
    assert (overage["period_start"], overage["period_end"]) == (T0, april)
    assert overage["invoice_start"] == april
    # the period's 2 seats and the 3 beyond, + 20 % VAT
    assert (lines[0]["subtotal"], lines[0]["total"]) == (5000, 6000)
    # no overage, no line
    assert _overage(await _lines(tenant_b)) == []
    assert [line["subtotal"] for line in await _lines(tenant_b)] == [2000]

    # the next period used no seat beyond: its invoice bills none again
    await renew(tenant_a.owner_ctx, at=datetime(2027, 5, 1, 0, 30, tzinfo=UTC))
    lines = await _lines(tenant_a)
    assert len({line["billing_key"] for line in lines}) == 2
    assert len(_overage(lines)) == 1
    async with as_tenant(tenant_a.id):
        [row] = await fetch(
            "SELECT overage, overage_billed FROM seat_balance WHERE tenant_id = $1", tenant_a.id
        )
    assert (row["overage"], row["overage_billed"]) == (3, 3)


async def test_a_period_ending_in_a_short_month_still_has_its_overage_billed(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    start = datetime(2027, 1, 31, 9, tzinfo=UTC)
    await subscribe(tenant_a.owner_ctx, plan.code, at=start, quantity=1, trial=False)
    await _consume(tenant_a, 3, start + timedelta(days=2))
    end = datetime(2027, 2, 28, 9, tzinfo=UTC)
    renewed = await renew(tenant_a.owner_ctx, at=end + timedelta(minutes=1))
    assert renewed is not None
    assert renewed.current_period_start == end
    # one month before 28 February is 28 January, not the 31st the period began on
    [overage] = _overage(await _lines(tenant_a))
    assert (overage["quantity"], overage["amount"]) == (2, 2000)
    assert (overage["period_start"], overage["period_end"]) == (start, end)


async def test_the_overage_of_a_trial_goes_on_the_first_paid_invoice(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(1000, trial_days=14)
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=1)
    await _consume(tenant_a, 2, T0 + timedelta(days=1))
    after = await renew(tenant_a.owner_ctx, at=T0 + timedelta(days=14, hours=1))
    assert after is not None
    assert after.status == "active"
    [overage] = _overage(await _lines(tenant_a))
    assert (overage["quantity"], overage["amount"]) == (1, 1000)
    assert (overage["period_start"], overage["period_end"]) == (T0, T0 + timedelta(days=14))


async def test_the_final_invoice_at_cancellation_bills_the_last_periods_overage(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    ctx = tenant_a.owner_ctx
    await subscribe(ctx, plan.code, at=T0, quantity=2, trial=False)
    await bill_period(ctx, at=T0)
    await apply_change(ctx, ChangeRequest(cancel_at_period_end=True), at=T0 + timedelta(days=3))
    await _consume(tenant_a, 6, T0 + timedelta(days=10))
    april = datetime(2027, 4, 1, tzinfo=UTC)
    ended = await renew(ctx, at=april + timedelta(hours=1))
    assert ended is not None
    assert ended.status == "canceled"
    lines = await _lines(tenant_a)
    assert [line["billing_key"].split(":")[0] for line in lines] == ["period", "final"]
    final = lines[1]
    assert (final["kind"], final["quantity"], final["unit_amount"]) == ("overage", 4, 1000)
    assert (final["subtotal"], final["total"]) == (4000, 4800)
    assert (final["period_start"], final["period_end"]) == (T0, april)
    await renew(ctx, at=april + timedelta(hours=2))
    assert len(await _lines(tenant_a)) == 2


def _billable(kind: str, **prices: Any) -> BillableSubscription:
    return BillableSubscription(
        id=uuid4(),
        status="active",
        plan_kind=kind,
        plan_code="p",
        plan_names={},
        quantity=1,
        currency="EUR",
        unit_amount=prices.pop("unit_amount"),
        period_start=T0,
        period_end=T0,
        collection_method="send_invoice",
        net_terms_days=30,
        po_number="",
        gateway="manual",
        **prices,
    )


def test_an_overage_seat_costs_the_overage_price_or_else_one_seats_share_of_the_price() -> None:
    assert overage_seat_price(_billable("per_seat", unit_amount=500)) == 500
    assert (
        overage_seat_price(_billable("per_seat", unit_amount=500, overage_unit_amount=750)) == 750
    )
    # a pack of 100 seats at 1,234.50: 12.345 a seat, half-even to 12.34
    assert overage_seat_price(_billable("seat_pack", unit_amount=123_450, pack_seats=100)) == 1234
    # a licence of 500 seats at 12,000.00 a year
    assert overage_seat_price(_billable("license", unit_amount=1_200_000, included_seats=500)) == (
        2400
    )
    assert overage_seat_price(_billable("license", unit_amount=9, overage_unit_amount=0)) == 0


async def test_a_seat_pack_plan_bills_its_overage_at_its_overage_price(
    tenant_a: TenantFixture,
) -> None:
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"pack-{uuid4().hex[:10]}",
            kind="seat_pack",
            names={"en": "Pack", "fr": "Pack"},
            interval="year",
            overage_policy="bill",
            pack_seats=10,
            pack_validity_months=12,
        ),
    )
    await set_price(STAFF, plan.code, "EUR", 50_000, overage_unit_amount=1_500)
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=1, trial=False)
    await seats.add_seat_pack(
        tenant_a.owner_ctx, STAFF, seats.SeatPackFields(seats=2, starts_on=T0.date())
    )
    await _consume(tenant_a, 3, T0 + timedelta(days=1))
    await renew(tenant_a.owner_ctx, at=datetime(2028, 3, 1, 1, tzinfo=UTC))
    [overage] = _overage(await _lines(tenant_a))
    assert (overage["quantity"], overage["unit_amount"], overage["amount"]) == (1, 1500, 1500)


# --- Stripe -------------------------------------------------------------------------------


async def _balance(tenant_id: UUID) -> list[dict[str, Any]]:
    async with as_tenant(tenant_id):
        return await fetch(
            "SELECT overage, overage_billed FROM seat_balance WHERE tenant_id = $1 "
            "ORDER BY period_start",
            tenant_id,
        )


@pytest.mark.usefixtures("in_process")
async def test_a_stripe_period_with_overage_makes_one_invoice_item_whatever_the_webhooks(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway, seats=10)
    for event in stripe_server.take_events():
        await deliver(webhook_client, event)
    await in_process.drain()
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    first = sub.current_period_start
    await _consume(tenant_a, 13, first + timedelta(hours=1))
    customer = sub.gateway_customer_id

    def items() -> list[dict[str, Any]]:
        return [
            obj
            for obj in stripe_server.state.objects.values()
            if obj.get("object") == "invoiceitem" and obj["customer"] == customer
        ]

    stripe_server.renew(stripe_id)
    events = stripe_server.take_events()
    # each event twice (the inbox keeps one), then again as replays with new ids
    for event in [*events, *events, *({**e, "id": e["id"] + "_replay"} for e in events)]:
        await deliver(webhook_client, event)
    await in_process.drain()
    [item] = items()
    assert (item["quantity"], item["amount"], item["currency"]) == (3, 1500, "eur")
    assert item["parent"]["subscription_details"]["subscription"] == stripe_id
    assert item["period"]["start"] == int(first.timestamp())
    assert item["invoice"] is None  # waiting for Stripe's next invoice
    assert await _balance(tenant_a.id) == [{"overage": 3, "overage_billed": 3}]
    # (jobs run side by side may each ask, with the same idempotency key: one item)
    asked = stripe_server.requests_to("POST", "/v1/invoiceitems")
    assert asked
    assert all(params == asked[0] for params in asked)
    assert asked[0]["unit_amount_decimal"] == "500"
    assert asked[0]["subscription"] == stripe_id

    # a run that made the item but died before recording it: the replay gets the same item
    async with as_tenant(tenant_a.id):
        await execute(
            "UPDATE seat_balance SET overage_billed = 0 WHERE tenant_id = $1", tenant_a.id
        )
    await deliver(webhook_client, {**events[-1], "id": events[-1]["id"] + "_again"})
    await in_process.drain()
    assert len(stripe_server.requests_to("POST", "/v1/invoiceitems")) == len(asked) + 1
    assert len(items()) == 1
    assert await _balance(tenant_a.id) == [{"overage": 3, "overage_billed": 3}]

    # Stripe's next invoice carries it, and Jalon's mirror of it too
    stripe_server.renew(stripe_id)
    for event in stripe_server.take_events():
        await deliver(webhook_client, event)
    await in_process.drain()
    assert items()[0]["invoice"] == stripe_server.state.objects[stripe_id]["latest_invoice"]
    async with as_tenant(tenant_a.id):
        mirrored = await fetch(
            "SELECT subtotal FROM invoice WHERE tenant_id = $1 AND gateway_invoice_id = $2",
            tenant_a.id,
            items()[0]["invoice"],
        )
    assert [row["subtotal"] for row in mirrored] == [5000 + 1500]
    assert len(items()) == 1
