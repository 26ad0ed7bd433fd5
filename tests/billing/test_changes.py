"""Changes mid-period: previewed lines in minor units, prorated exactly (never a cent created
or lost), applied with the prorations waiting for the next invoice, or not prorated at all
when the subscription says so."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.changes import ChangeRequest, apply_change, portion, preview_change, share
from billing.subscriptions import current_subscription, subscribe, transition
from core.database import execute, fetch
from core.errors import Conflict, Forbidden, Invalid
from core.settings import Settings
from tests.billing.plans import licence_plan, per_seat_plan
from tests.conftest import TenantFixture
from tests.db import as_tenant

T0 = datetime(2027, 1, 1, tzinfo=UTC)
#: January 2027: 31 days.
HALF = T0 + timedelta(days=15, hours=12)


# --- the arithmetic -----------------------------------------------------------------------


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    length=st.integers(min_value=1, max_value=366 * 24 * 3600 * 10**6),
    cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=30),
)
def test_the_pieces_of_a_period_always_sum_to_its_price(
    amount: int, length: int, cuts: list[float]
) -> None:
    end = T0 + timedelta(microseconds=length)
    moments = sorted({T0 + timedelta(microseconds=int(cut * length)) for cut in cuts})
    bounds = [T0, *moments, end]
    pieces = [portion(amount, T0, end, a, b) for a, b in itertools.pairwise(bounds)]
    assert sum(pieces) == amount
    assert all(piece >= 0 for piece in pieces)


@given(
    amounts=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=31 * 24 * 3600), min_size=0, max_size=19),
)
def test_charging_and_crediting_each_change_bills_exactly_the_time_at_each_price(
    amounts: list[int], cuts: list[int]
) -> None:
    """Full price up front, then at each change a credit of the old price's rest and a
    charge of the new one's: the total is each price for exactly the time it held."""
    end = T0 + timedelta(days=31)
    moments = sorted(T0 + timedelta(seconds=cut) for cut in cuts)[: len(amounts) - 1]
    amounts = amounts[: len(moments) + 1]
    billed = amounts[0]
    for moment, old, new in zip(moments, amounts, amounts[1:], strict=False):
        billed += -portion(old, T0, end, moment, end) + portion(new, T0, end, moment, end)
    bounds = [T0, *moments, end]
    held = sum(
        portion(price, T0, end, a, b)
        for price, a, b in zip(amounts, bounds, bounds[1:], strict=False)
    )
    assert billed == held


def test_shares_round_half_even_and_stay_within_the_period() -> None:
    end = T0 + timedelta(days=2)
    assert share(3, T0, end, T0 + timedelta(days=1)) == 2  # 1.5 → 2
    assert share(5, T0, end, T0 + timedelta(days=1)) == 2  # 2.5 → 2
    assert share(100, T0, end, T0 - timedelta(days=1)) == 0
    assert share(100, T0, end, end + timedelta(days=1)) == 100


# --- previews and changes -------------------------------------------------------------------


async def _active(tenant: TenantFixture, seats: int = 10, amount: int = 3100) -> None:
    """An active per-seat subscription for January 2027, `amount` cents a seat."""
    plan = await per_seat_plan(amount)
    await subscribe(tenant.owner_ctx, plan.code, at=T0, quantity=seats, trial=False)


async def _pending(tenant: TenantFixture) -> list[dict[str, object]]:
    async with as_tenant(tenant.id):
        return await fetch(
            "SELECT kind, description, quantity, amount, currency FROM pending_charge "
            "WHERE tenant_id = $1 ORDER BY amount",
            tenant.id,
        )


async def test_more_seats_mid_period_credit_the_rest_and_charge_the_new_rest(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await _active(tenant_a, seats=10, amount=3100)  # 310.00 € for January
    preview = await preview_change(tenant_a.owner_ctx, ChangeRequest(quantity=20), at=HALF)
    assert [(line.kind, line.amount.amount) for line in preview.now_lines] == [
        ("credit", -15_500),
        ("charge", 31_000),
    ]
    assert preview.due_now.amount == 15_500
    assert [(line.kind, line.amount.amount) for line in preview.renewal_lines] == [
        ("renewal", 62_000)
    ]
    assert preview.renewal_lines[0].period_start == T0 + timedelta(days=31)
    assert preview.now_lines[1].describe("en") == "Remaining time on Per seat × 20"
    # A preview changes nothing.
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.quantity == 10

    after = await apply_change(tenant_a.owner_ctx, ChangeRequest(quantity=20), at=HALF)
    assert after.quantity == 20
    assert [(row["kind"], row["amount"]) for row in await _pending(tenant_a)] == [
        ("proration", -15_500),
        ("proration", 31_000),
    ]
    assert await _pending(tenant_b) == []


async def test_a_downgrade_mid_period_is_a_credit(tenant_a: TenantFixture) -> None:
    await _active(tenant_a, seats=10, amount=3100)
    preview = await preview_change(tenant_a.owner_ctx, ChangeRequest(quantity=4), at=HALF)
    assert preview.due_now.amount == -(15_500 - 6_200)


async def test_a_plan_change_is_prorated_between_the_two_prices(tenant_a: TenantFixture) -> None:
    await _active(tenant_a, seats=10, amount=3100)
    better = await per_seat_plan(6200)
    preview = await preview_change(
        tenant_a.owner_ctx, ChangeRequest(plan_code=better.code), at=HALF
    )
    assert preview.due_now.amount == 31_000 - 15_500
    after = await apply_change(tenant_a.owner_ctx, ChangeRequest(plan_code=better.code), at=HALF)
    assert after.plan.code == better.code
    assert after.unit_amount == 6200


async def test_without_proration_the_new_price_waits_for_renewal(tenant_a: TenantFixture) -> None:
    await _active(tenant_a, seats=10, amount=3100)
    async with as_tenant(tenant_a.id):
        await execute(
            "UPDATE subscription SET proration = 'none' WHERE tenant_id = $1", tenant_a.id
        )
    preview = await preview_change(tenant_a.owner_ctx, ChangeRequest(quantity=20), at=HALF)
    assert preview.now_lines == []
    assert preview.at_renewal.amount == 62_000
    await apply_change(tenant_a.owner_ctx, ChangeRequest(quantity=20), at=HALF)
    assert await _pending(tenant_a) == []


async def test_changes_during_a_trial_cost_nothing_now(tenant_a: TenantFixture) -> None:
    plan = await per_seat_plan(3100, trial_days=30)
    await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=10)
    preview = await preview_change(tenant_a.owner_ctx, ChangeRequest(quantity=50), at=HALF)
    assert preview.now_lines == []
    assert preview.at_renewal.amount == 155_000


async def test_cancelling_at_period_end_has_no_renewal_and_can_be_undone(
    tenant_a: TenantFixture,
) -> None:
    await _active(tenant_a)
    ctx = tenant_a.owner_ctx
    preview = await preview_change(ctx, ChangeRequest(cancel_at_period_end=True), at=HALF)
    assert (preview.now_lines, preview.renewal_lines) == ([], [])
    after = await apply_change(ctx, ChangeRequest(cancel_at_period_end=True), at=HALF)
    assert after.cancel_at_period_end
    assert after.status == "active"
    resumed = await apply_change(ctx, ChangeRequest(cancel_at_period_end=False), at=HALF)
    assert not resumed.cancel_at_period_end
    async with as_tenant(tenant_a.id):
        rows = await fetch(
            "SELECT count(*) AS n FROM audit_event WHERE tenant_id = $1 "
            "AND action = 'billing.subscription.changed'",
            tenant_a.id,
        )
    assert rows[0]["n"] == 2


@pytest.mark.parametrize("quantity", [0, -3, 1_000_001])
async def test_absurd_seat_counts_are_refused_and_nothing_changes(
    tenant_a: TenantFixture, quantity: int
) -> None:
    await _active(tenant_a)
    with pytest.raises(Invalid) as refused:
        await apply_change(tenant_a.owner_ctx, ChangeRequest(quantity=quantity), at=HALF)
    assert refused.value.field == "quantity"
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.quantity == 10
    assert await _pending(tenant_a) == []


async def test_wrong_changes_are_refused(tenant_a: TenantFixture) -> None:
    await _active(tenant_a)
    ctx = tenant_a.owner_ctx
    with pytest.raises(Invalid):  # the same again
        await preview_change(ctx, ChangeRequest(quantity=10), at=HALF)
    with pytest.raises(Invalid):
        await preview_change(ctx, ChangeRequest(plan_code="no-such-plan"), at=HALF)
    with pytest.raises(Invalid):  # a NUL is refused before any query, not a 500
        await preview_change(ctx, ChangeRequest(plan_code="a\x00b"), at=HALF)
    yearly = await licence_plan()
    with pytest.raises(Invalid):  # billed yearly, not monthly
        await preview_change(ctx, ChangeRequest(plan_code=yearly.code), at=HALF)
    with pytest.raises(Forbidden):
        await preview_change(tenant_a.member_ctx, ChangeRequest(quantity=11), at=HALF)
    await transition(ctx, "past_due", reason="unpaid", at=HALF)
    with pytest.raises(Conflict):
        await apply_change(ctx, ChangeRequest(quantity=11), at=HALF)


async def test_seats_cannot_drop_below_those_already_used_this_period(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    sub = await subscribe(tenant_a.owner_ctx, plan.code, at=T0, quantity=10, trial=False)
    async with as_tenant(tenant_a.id):
        await execute(
            "INSERT INTO seat_balance (tenant_id, id, period_start, used, capacity, "
            "overage_policy, updated_at) VALUES ($1, gen_random_uuid(), $2, 7, 10, 'block', $2)",
            tenant_a.id,
            sub.current_period_start,
        )
    with pytest.raises(Invalid) as refused:
        await apply_change(tenant_a.owner_ctx, ChangeRequest(quantity=6), at=HALF)
    assert (refused.value.field, refused.value.status_code) == ("quantity", 422)
    after = await current_subscription(tenant_a.owner_ctx)
    assert after is not None
    assert after.quantity == 10
    # as many as are used is fine
    assert (
        await apply_change(tenant_a.owner_ctx, ChangeRequest(quantity=7), at=HALF)
    ).quantity == 7


async def test_a_change_the_gateway_refuses_is_undone_and_explained(
    tenant_a: TenantFixture, stripe_settings: Settings
) -> None:
    plan = await per_seat_plan(1000, trial_days=0)
    # On Stripe by name but never linked there: Stripe's gateway refuses any change of it.
    await subscribe(
        tenant_a.owner_ctx,
        plan.code,
        at=T0,
        quantity=10,
        trial=False,
        gateway="stripe",
        collection_method="automatic",
    )
    with pytest.raises(Invalid) as refused:
        await apply_change(
            tenant_a.owner_ctx, ChangeRequest(quantity=12), at=HALF, settings=stripe_settings
        )
    assert "nothing was changed" in refused.value.message
    after = await current_subscription(tenant_a.owner_ctx)
    assert after is not None
    assert after.quantity == 10
    async with as_tenant(tenant_a.id):
        actions = [
            row["action"]
            for row in await fetch(
                "SELECT action FROM audit_event WHERE tenant_id = $1 ORDER BY occurred_at, id",
                tenant_a.id,
            )
        ]
    assert actions[-2:] == ["billing.subscription.changed", "billing.subscription.change_undone"]
