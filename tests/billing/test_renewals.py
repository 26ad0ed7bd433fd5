"""The end of a period on the manual gateway: a trial converts and is invoiced, a period rolls
over and is invoiced once, a subscription set to cancel is canceled; Stripe's and suspended
ones are left alone; the hourly sweep queues only the tenants whose period is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billing.changes import ChangeRequest, apply_change
from billing.invoices import bill_period
from billing.renewals import queue_renewals, renew
from billing.subscriptions import (
    add_months,
    current_subscription,
    subscribe,
    transition,
    use_gateway,
)
from core.database import fetch
from tests.billing.plans import per_seat_plan
from tests.conftest import HeldQueue, TenantFixture
from tests.db import as_tenant

T0 = datetime(2027, 3, 1, tzinfo=UTC)


async def _invoices(tenant: TenantFixture) -> list[dict[str, object]]:
    async with as_tenant(tenant.id):
        return await fetch(
            "SELECT total, period_start FROM invoice WHERE tenant_id = $1 "
            "AND status <> 'draft' ORDER BY period_start",
            tenant.id,
        )


async def _actions(tenant: TenantFixture) -> list[str]:
    async with as_tenant(tenant.id):
        rows = await fetch(
            "SELECT action FROM audit_event WHERE tenant_id = $1 "
            "AND action LIKE 'billing.subscription.%' ORDER BY occurred_at, id",
            tenant.id,
        )
    return [row["action"] for row in rows]


async def test_a_trial_that_ends_becomes_a_paid_period_invoiced_once(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(1000, trial_days=14)
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=3)
    still = await renew(tenant_a.owner_ctx, at=T0 + timedelta(days=13))
    assert still is not None
    assert still.status == "trialing"
    after = await renew(tenant_a.owner_ctx, at=T0 + timedelta(days=14, hours=1))
    assert after is not None
    assert after.status == "active"
    trial_end = T0 + timedelta(days=14)
    assert (after.current_period_start, after.current_period_end) == (
        trial_end,
        datetime(2027, 4, 15, tzinfo=UTC),
    )
    again = await renew(tenant_a.owner_ctx, at=T0 + timedelta(days=14, hours=2))
    assert again == after
    assert [row["total"] for row in await _invoices(tenant_a)] == [3600]  # 30.00 + 20 % VAT
    assert await _actions(tenant_a) == [
        "billing.subscription.trialing",
        "billing.subscription.active",
        "billing.subscription.renewed",
    ]


async def test_each_period_rolls_over_and_is_invoiced(tenant_a: TenantFixture) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=2, trial=False)
    late = datetime(2027, 4, 1, 0, 30, tzinfo=UTC)
    renewed = await renew(tenant_a.owner_ctx, at=late)
    assert renewed is not None
    assert renewed.current_period_start == datetime(2027, 4, 1, tzinfo=UTC)
    assert renewed.current_period_end == datetime(2027, 5, 1, tzinfo=UTC)
    assert [row["period_start"] for row in await _invoices(tenant_a)] == [
        datetime(2027, 4, 1, tzinfo=UTC)
    ]


async def test_cancelling_at_period_end_cancels_when_the_period_ends(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0, trial=False)
    await apply_change(
        tenant_a.owner_ctx, ChangeRequest(cancel_at_period_end=True), at=T0 + timedelta(days=3)
    )
    ended = await renew(tenant_a.owner_ctx, at=datetime(2027, 4, 2, tzinfo=UTC))
    assert ended is not None
    assert ended.status == "canceled"
    assert ended.status_changed_at == datetime(2027, 4, 1, tzinfo=UTC)
    # its period was never invoiced: it is, before the subscription ends
    assert [row["period_start"] for row in await _invoices(tenant_a)] == [T0]


async def test_stripe_and_suspended_subscriptions_are_left_alone(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0, trial=False)
    await use_gateway(tenant_a.owner_ctx, "stripe", "automatic")
    await subscribe(tenant_b.owner_ctx, plan.code, at=T0, trial=False)
    await transition(tenant_b.owner_ctx, "past_due", reason="unpaid", at=T0)
    await transition(tenant_b.owner_ctx, "suspended", reason="unpaid", at=T0)
    later = datetime(2027, 5, 1, tzinfo=UTC)
    for tenant in (tenant_a, tenant_b):
        before = await current_subscription(tenant.owner_ctx)
        assert await renew(tenant.owner_ctx, at=later) == before


async def test_the_sweep_queues_only_tenants_whose_period_is_over(
    tenant_a: TenantFixture, tenant_b: TenantFixture, held: HeldQueue
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    now = datetime.now(UTC)
    started = now - timedelta(days=40)
    await subscribe(tenant_a.owner_ctx, plan.code, at=started, trial=False)
    await subscribe(tenant_b.owner_ctx, plan.code, at=now - timedelta(days=5), trial=False)
    await bill_period(tenant_b.owner_ctx, at=now - timedelta(days=5))  # B's period is invoiced
    held.held.clear()
    await queue_renewals(now)
    mine = {str(tenant_a.id), str(tenant_b.id)}
    queued = [args for name, args in held.held if name == "renew_tenant" and args[0] in mine]
    assert queued == [(str(tenant_a.id),)]
    held.held = [(name, args) for name, args in held.held if args == (str(tenant_a.id),)]
    await held.run()
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.current_period_start == add_months(started, 1)
    assert len(await _invoices(tenant_a)) == 1


async def test_seats_added_before_a_cancellation_are_invoiced_when_it_ends(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    ctx = tenant_a.owner_ctx
    await subscribe(ctx, plan.code, at=T0, quantity=2, trial=False)
    await bill_period(ctx, at=T0)
    await apply_change(ctx, ChangeRequest(cancel_at_period_end=True), at=T0 + timedelta(days=3))
    # March has 31 days: 2 more seats for the second half of it
    await apply_change(ctx, ChangeRequest(quantity=4), at=T0 + timedelta(days=15, hours=12))
    ended = await renew(ctx, at=datetime(2027, 4, 1, 1, tzinfo=UTC))
    assert ended is not None
    assert ended.status == "canceled"
    async with as_tenant(tenant_a.id):
        rows = await fetch(
            "SELECT billing_key, subtotal FROM invoice WHERE tenant_id = $1 "
            "AND status <> 'draft' ORDER BY issued_at, number",
            tenant_a.id,
        )
        waiting = await fetch(
            "SELECT 1 FROM pending_charge WHERE tenant_id = $1 AND invoiced_at IS NULL",
            tenant_a.id,
        )
    assert [row["subtotal"] for row in rows] == [2000, 1000]  # the period, then 2 × 10.00 × ½
    assert rows[1]["billing_key"].startswith("final:")
    assert waiting == []
    # a second run finds nothing more to bill
    await renew(ctx, at=datetime(2027, 4, 1, 2, tzinfo=UTC))
    assert len(await _invoices(tenant_a)) == 2


async def test_a_period_whose_invoice_failed_is_invoiced_by_the_next_renewal(
    tenant_a: TenantFixture, tenant_b: TenantFixture, held: HeldQueue
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    now = datetime.now(UTC)
    # both began two hours ago; the first invoice of A never came (it failed), B's did
    for tenant in (tenant_a, tenant_b):
        await subscribe(tenant.owner_ctx, plan.code, at=now - timedelta(hours=2), trial=False)
    await bill_period(tenant_b.owner_ctx, at=now)
    held.held.clear()
    await queue_renewals(now)
    mine = {str(tenant_a.id), str(tenant_b.id)}
    queued = [args for name, args in held.held if name == "renew_tenant" and args[0] in mine]
    assert queued == [(str(tenant_a.id),)]
    held.held = [(name, args) for name, args in held.held if args == (str(tenant_a.id),)]
    await held.run()
    assert [row["period_start"] for row in await _invoices(tenant_a)] == [now - timedelta(hours=2)]
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.current_period_start == now - timedelta(hours=2)


async def test_periods_keep_their_anchor_day_through_short_months(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    start = datetime(2027, 1, 31, 9, tzinfo=UTC)
    await subscribe(tenant_a.owner_ctx, plan.code, at=start, trial=False)
    ends = []
    at = start
    for _ in range(3):
        sub = await current_subscription(tenant_a.owner_ctx)
        assert sub is not None
        at = sub.current_period_end
        renewed = await renew(tenant_a.owner_ctx, at=at + timedelta(minutes=1))
        assert renewed is not None
        ends.append(renewed.current_period_end.date().isoformat())
    # 31 Jan -> 28 Feb -> 31 Mar -> 30 Apr -> 31 May
    assert ends == ["2027-03-31", "2027-04-30", "2027-05-31"]
