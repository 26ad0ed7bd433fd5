"""A tenant's subscription and its state machine: allowed and refused transitions, each
recorded in the tenant's audit log, the other tenant untouched."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from billing.subscriptions import (
    TRANSITIONS,
    SubscriptionStatus,
    add_months,
    current_subscription,
    subscribe,
    transition,
)
from core.database import fetch
from core.errors import Conflict, Forbidden, Invalid, NotFound
from tests.billing.plans import licence_plan, per_seat_plan
from tests.conftest import TenantFixture
from tests.db import as_tenant

S = SubscriptionStatus
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


async def _actions(tenant_id: object) -> list[str]:
    async with as_tenant(str(tenant_id)):
        rows = await fetch(
            "SELECT action FROM audit_event WHERE tenant_id = $1 AND action LIKE 'billing.%' "
            "ORDER BY occurred_at",
            tenant_id,
        )
    return [row["action"] for row in rows]


async def test_a_tenant_without_subscription_is_not_billed(tenant_a: TenantFixture) -> None:
    assert await current_subscription(tenant_a.owner_ctx) is None


async def test_subscribing_to_a_plan_with_a_trial_starts_trialing(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    plan = await per_seat_plan(500, trial_days=14)
    sub = await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=25)
    assert sub.status == S.TRIALING
    assert sub.trial_end == T0 + timedelta(days=14)
    assert (sub.current_period_start, sub.current_period_end) == (T0, T0 + timedelta(days=14))
    assert sub.kind == "per_seat"
    assert sub.overage_policy == "bill"
    assert sub.quantity == 25
    assert sub.unit_amount == 500
    assert sub.period_amount is not None
    assert sub.period_amount.amount == 12_500
    assert await current_subscription(tenant_b.owner_ctx) is None
    assert await _actions(tenant_a.id) == ["billing.subscription.trialing"]


async def test_a_licence_records_its_seats_and_starts_active_without_trial(
    tenant_a: TenantFixture,
) -> None:
    plan = await licence_plan(seats=300)
    sub = await subscribe(tenant_a.owner_ctx, plan.code, at=T0, trial=True)
    assert sub.status == S.ACTIVE
    assert sub.trial_end is None
    assert sub.quantity == 300
    assert sub.included_seats == 300
    assert sub.current_period_end == datetime(2027, 12, 3, 9, 0, tzinfo=UTC)


async def test_the_whole_life_of_a_subscription_is_audited(tenant_a: TenantFixture) -> None:
    plan = await per_seat_plan()
    ctx = tenant_a.owner_ctx
    await subscribe(ctx, plan.code, at=T0, quantity=3)
    active = await transition(ctx, S.ACTIVE, reason="paid", at=T0 + timedelta(days=14))
    assert active.status == S.ACTIVE
    assert active.past_due_since is None
    late = T0 + timedelta(days=44)
    past_due = await transition(ctx, S.PAST_DUE, reason="invoice unpaid", at=late)
    assert past_due.past_due_since == late
    suspended = await transition(ctx, "suspended", reason="dunning", at=late + timedelta(days=7))
    # Suspension keeps the date the payment fell due: dunning counts from it.
    assert suspended.past_due_since == late
    assert suspended.status_changed_at == late + timedelta(days=7)
    back = await transition(ctx, S.ACTIVE, reason="paid", at=late + timedelta(days=8))
    assert back.past_due_since is None
    assert back.in_good_standing
    await transition(ctx, S.CANCELED, reason="customer left", at=late + timedelta(days=9))
    assert await _actions(tenant_a.id) == [
        "billing.subscription.trialing",
        "billing.subscription.active",
        "billing.subscription.past_due",
        "billing.subscription.suspended",
        "billing.subscription.active",
        "billing.subscription.canceled",
    ]


async def test_a_transition_already_made_changes_and_records_nothing(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan()
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0)
    first = await transition(tenant_a.owner_ctx, S.ACTIVE, reason="paid", at=T0)
    again = await transition(tenant_a.owner_ctx, S.ACTIVE, reason="paid", at=T0 + timedelta(1))
    assert again == first
    assert (await _actions(tenant_a.id)).count("billing.subscription.active") == 1


REFUSED = [
    (source, target)
    for source in SubscriptionStatus
    for target in SubscriptionStatus
    if source != target and target not in TRANSITIONS[source]
]


@pytest.mark.parametrize(("source", "target"), REFUSED)
def test_the_state_machine_refuses_what_billing_does_not_do(
    source: SubscriptionStatus, target: SubscriptionStatus
) -> None:
    # A trial is never suspended before it is late; nothing comes back from canceled.
    assert target not in TRANSITIONS[source]
    assert (source, target) in {
        (S.TRIALING, S.SUSPENDED),
        (S.ACTIVE, S.TRIALING),
        (S.ACTIVE, S.SUSPENDED),
        (S.PAST_DUE, S.TRIALING),
        (S.SUSPENDED, S.TRIALING),
        (S.SUSPENDED, S.PAST_DUE),
        *((S.CANCELED, other) for other in SubscriptionStatus if other != S.CANCELED),
    }


async def test_a_refused_transition_is_a_conflict_and_changes_nothing(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan()
    ctx = tenant_a.owner_ctx
    await subscribe(ctx, plan.code, at=T0)
    with pytest.raises(Conflict):
        await transition(ctx, S.SUSPENDED, reason="too early", at=T0)
    await transition(ctx, S.CANCELED, reason="left", at=T0)
    with pytest.raises(Conflict):
        await transition(ctx, S.ACTIVE, reason="paid after leaving", at=T0)
    sub = await current_subscription(ctx)
    assert sub is not None
    assert sub.status == S.CANCELED
    assert await _actions(tenant_a.id) == [
        "billing.subscription.trialing",
        "billing.subscription.canceled",
    ]


async def test_transition_without_subscription_is_not_found(tenant_a: TenantFixture) -> None:
    with pytest.raises(NotFound):
        await transition(tenant_a.owner_ctx, S.ACTIVE, reason="paid", at=T0)


async def test_members_may_not_change_a_subscription(tenant_a: TenantFixture) -> None:
    plan = await per_seat_plan()
    with pytest.raises(Forbidden):
        await subscribe(tenant_a.member_ctx, plan.code, at=T0)
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0)
    with pytest.raises(Forbidden):
        await transition(tenant_a.member_ctx, S.CANCELED, reason="no", at=T0)
    # Reading is for everyone in the tenant: seat limits depend on it.
    assert await current_subscription(tenant_a.member_ctx) is not None


async def test_subscribing_twice_is_a_conflict_until_canceled(tenant_a: TenantFixture) -> None:
    plan = await per_seat_plan()
    ctx = tenant_a.owner_ctx
    first = await subscribe(ctx, plan.code, at=T0)
    with pytest.raises(Conflict):
        await subscribe(ctx, plan.code, at=T0)
    await transition(ctx, S.CANCELED, reason="left", at=T0 + timedelta(days=1))
    again = await subscribe(ctx, plan.code, at=T0 + timedelta(days=2), trial=False, quantity=7)
    assert again.id == first.id
    assert again.status == S.ACTIVE
    assert again.quantity == 7


@pytest.mark.parametrize("quantity", [-1, 0, 1_000_001])
async def test_absurd_seat_counts_are_refused(tenant_a: TenantFixture, quantity: int) -> None:
    plan = await per_seat_plan()
    with pytest.raises(Invalid):
        await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=quantity)
    assert await current_subscription(tenant_a.owner_ctx) is None


async def test_a_currency_without_price_is_refused(tenant_a: TenantFixture) -> None:
    plan = await per_seat_plan(currency="EUR")
    with pytest.raises(Invalid):
        await subscribe(tenant_a.owner_ctx, plan.code, at=T0, currency="USD")
    with pytest.raises(Invalid):
        await subscribe(tenant_a.owner_ctx, plan.code, at=T0, currency="EUX")


def test_months_are_added_on_the_calendar() -> None:
    assert add_months(datetime(2027, 1, 31, tzinfo=UTC), 1) == datetime(2027, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2026, 12, 3, tzinfo=UTC), 12) == datetime(2027, 12, 3, tzinfo=UTC)


async def test_the_loser_of_two_subscribes_at_once_gets_a_conflict(
    tenant_a: TenantFixture, owner_url: str
) -> None:
    plan = await per_seat_plan()
    winner = await asyncpg.connect(owner_url)
    try:
        # The winner has inserted its subscription but not committed yet when the loser,
        # which could not see it, inserts its own: the loser waits for the winner's row.
        commit = winner.transaction()
        await commit.start()
        await winner.execute(
            "INSERT INTO subscription (tenant_id, id, plan_id, status, quantity, currency, "
            "current_period_start, current_period_end, status_changed_at) "
            "VALUES ($1, gen_random_uuid(), $2, 'trialing', 1, 'EUR', $3, $4, $3)",
            tenant_a.id,
            plan.id,
            T0,
            T0 + timedelta(days=14),
        )
        loser = asyncio.create_task(subscribe(tenant_a.owner_ctx, plan.code, at=T0))
        for _ in range(10_000):
            if await winner.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO subscription%'"
            ):
                break
            await asyncio.sleep(0.005)
        await commit.commit()
        with pytest.raises(Conflict):
            await loser
    finally:
        await winner.close()
    async with as_tenant(tenant_a.id):
        rows = await fetch("SELECT id FROM subscription WHERE tenant_id = $1", tenant_a.id)
    assert len(rows) == 1


async def test_a_canceled_organization_gets_no_second_trial(tenant_a: TenantFixture) -> None:
    plan = await per_seat_plan(trial_days=30)
    ctx = tenant_a.owner_ctx
    assert (await subscribe(ctx, plan.code, at=T0)).status == S.TRIALING
    await transition(ctx, S.CANCELED, reason="left", at=T0 + timedelta(days=2))
    again = await subscribe(ctx, plan.code, at=T0 + timedelta(days=3))
    assert (again.status, again.trial_end) == (S.ACTIVE, None)


@pytest.mark.parametrize("code", ["a\x00b", "A plan", "", "x" * 65, "plan\n"])
async def test_a_malformed_plan_code_is_an_unknown_plan(tenant_a: TenantFixture, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        await subscribe(tenant_a.owner_ctx, code, at=T0)
    assert (refused.value.message, refused.value.field) == ("Unknown plan.", "plan")
