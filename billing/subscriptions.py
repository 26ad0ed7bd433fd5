"""A tenant's subscription: which plan, how many seats, in which state, for which period.

One per tenant at most; a tenant without one is not billed at all (no seat limit, no
block). The state machine:

    trialing ─► active ─► past_due ─► suspended ─► canceled
        │          ▲          │            │
        │          └──────────┴────────────┘   (a payment brings it back to active)
        └─► past_due, canceled; active, past_due and suspended may also be canceled.

Every transition is recorded in the tenant's audit log as `billing.subscription.<status>`.
"""

from __future__ import annotations

import calendar
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from billing.catalogue import CODE as PLAN_CODE
from billing.catalogue import (
    PLAN_COLUMNS,
    OveragePolicy,
    Plan,
    PlanKind,
    plan_by_code,
    plan_from_row,
    plan_price,
)
from billing.catalogue import UNKNOWN_PLAN as UNKNOWN_PLAN
from billing.money import Money, currency_code
from core.database import DB, execute, fetch, tenant_transaction
from core.errors import Conflict, Invalid, NotFound
from core.i18n import N_
from tenants.audit import record
from tenants.context import TenantContext
from tenants.permissions import Permission

#: The most seats a subscription may count.
MAX_SEATS = 1_000_000


class SubscriptionStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    CANCELED = "canceled"


S = SubscriptionStatus

#: Which status may follow which. A canceled subscription stays canceled: subscribing again
#: starts a new one.
TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    S.TRIALING: frozenset({S.ACTIVE, S.PAST_DUE, S.CANCELED}),
    S.ACTIVE: frozenset({S.PAST_DUE, S.CANCELED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.SUSPENDED, S.CANCELED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.CANCELED}),
    S.CANCELED: frozenset(),
}

#: Statuses in which the tenant may use what it pays for.
IN_GOOD_STANDING = frozenset({S.TRIALING, S.ACTIVE, S.PAST_DUE})

REFUSED_TRANSITION = N_("A subscription that is {current} cannot become {status}.")
NO_SUBSCRIPTION = N_("This organization has no subscription.")
ALREADY_SUBSCRIBED = N_("This organization already has a subscription.")
BAD_SEATS = N_("The number of seats must be a whole number between {low} and {high}.")
NO_PRICE = N_("This plan has no price in {currency}.")
RETIRED_PLAN = N_("This plan is no longer offered.")


@dataclass(frozen=True)
class Subscription:
    """A tenant's subscription with its plan, and its price when the catalogue has one."""

    id: UUID
    tenant_id: UUID
    plan: Plan
    status: SubscriptionStatus
    quantity: int
    currency: str
    price_category: str
    current_period_start: datetime
    current_period_end: datetime
    trial_end: datetime | None
    collection_method: str
    net_terms_days: int
    po_number: str
    cancel_at_period_end: bool
    proration: str
    gateway: str
    gateway_customer_id: str | None
    gateway_subscription_id: str | None
    gateway_synced_at: datetime | None
    past_due_since: datetime | None
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime
    #: the plan's price in this currency and category (None if the catalogue lost it)
    unit_amount: int | None
    overage_unit_amount: int | None

    @property
    def kind(self) -> PlanKind:
        return self.plan.kind

    @property
    def overage_policy(self) -> OveragePolicy:
        return self.plan.overage_policy

    @property
    def included_seats(self) -> int | None:
        return self.plan.included_seats

    @property
    def unit_price(self) -> Money | None:
        return None if self.unit_amount is None else Money(self.unit_amount, self.currency)

    @property
    def in_good_standing(self) -> bool:
        return self.status in IN_GOOD_STANDING

    @property
    def period_amount(self) -> Money | None:
        """What one full period costs at today's quantity, as the period's invoice bills it."""
        if self.unit_amount is None:
            return None
        return Money(period_price(self.plan, self.unit_amount, self.quantity), self.currency)


def period_price(plan: Plan, unit_amount: int, quantity: int) -> int:
    """What a period of `plan` costs at `unit_amount` for `quantity`, as the period's invoice
    line bills it: seats × the seat price, packs × the pack price, one licence."""
    if plan.kind in (PlanKind.PER_SEAT, PlanKind.SEAT_PACK):
        return unit_amount * quantity
    return unit_amount


# The columns are constants of this package; every value is a bound parameter.
SELECT_SQL = (
    f"SELECT s.*, {PLAN_COLUMNS}, pp.unit_amount, pp.overage_unit_amount "  # noqa: S608
    "FROM subscription s JOIN plan p ON p.id = s.plan_id "
    "LEFT JOIN plan_price pp ON pp.plan_id = s.plan_id AND pp.currency = s.currency "
    "AND pp.category = s.price_category WHERE s.tenant_id = $1"
)


def _subscription(row: dict[str, Any]) -> Subscription:
    return Subscription(
        id=row["id"],
        tenant_id=row["tenant_id"],
        plan=plan_from_row(row),
        status=SubscriptionStatus(row["status"]),
        quantity=row["quantity"],
        currency=row["currency"],
        price_category=row["price_category"],
        current_period_start=row["current_period_start"],
        current_period_end=row["current_period_end"],
        trial_end=row["trial_end"],
        collection_method=row["collection_method"],
        net_terms_days=row["net_terms_days"],
        po_number=row["po_number"],
        cancel_at_period_end=row["cancel_at_period_end"],
        proration=row["proration"],
        gateway=row["gateway"],
        gateway_customer_id=row["gateway_customer_id"],
        gateway_subscription_id=row["gateway_subscription_id"],
        gateway_synced_at=row["gateway_synced_at"],
        past_due_since=row["past_due_since"],
        status_changed_at=row["status_changed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        unit_amount=row["unit_amount"],
        overage_unit_amount=row["overage_unit_amount"],
    )


@asynccontextmanager
async def joined(ctx: TenantContext) -> AsyncIterator[None]:
    """The caller's open transaction (its tenant already set), or a new one for `ctx`: the
    functions of this module work alone or inside a caller's change."""
    if DB.current_transaction.get() is not None:
        yield
        return
    async with tenant_transaction(ctx):
        yield


async def read_in_transaction(ctx: TenantContext, *, lock: bool = False) -> Subscription | None:
    """The tenant's subscription, read in the caller's open transaction; with `lock`, its row
    locked first (FOR UPDATE, until the transaction ends) for a caller that means to change
    it, so two changes at once read and write one after the other."""
    if lock:
        locked = await fetch(
            "SELECT id FROM subscription WHERE tenant_id = $1 FOR UPDATE", ctx.tenant_id
        )
        if not locked:
            return None
    rows = await fetch(SELECT_SQL, ctx.tenant_id)
    return _subscription(rows[0]) if rows else None


async def current_subscription(ctx: TenantContext) -> Subscription | None:
    """The tenant's subscription, canceled ones included; None when it has never had one
    (then it is not billed). Anyone of the tenant may ask: seat limits read it."""
    async with joined(ctx):
        return await read_in_transaction(ctx)


async def known_plan(code: str | None, field: str = "plan") -> Plan:
    """The plan `code` names, retired or not; `Invalid` on `field` for anything else. A code
    unlike the catalogue's codes (a NUL, say, which PostgreSQL's text cannot hold) is
    refused before any query."""
    if not code or not PLAN_CODE.fullmatch(code):
        raise Invalid(UNKNOWN_PLAN, field=field)
    try:
        return await plan_by_code(code)
    except NotFound:
        raise Invalid(UNKNOWN_PLAN, field=field) from None


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` `months` calendar months later, the day clamped to the month's last (31
    January + 1 month = 28 or 29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_end(start: datetime, interval: str) -> datetime:
    """The end of a billing period of `interval` ("month" or "year") that begins at `start`."""
    return add_months(start, 12 if interval == "year" else 1)


def check_seats(quantity: int, *, low: int = 0) -> int:
    """`quantity` when it is a sensible seat count; `Invalid` otherwise."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise Invalid(BAD_SEATS, field="quantity", low=low, high=MAX_SEATS)
    if not low <= quantity <= MAX_SEATS:
        raise Invalid(BAD_SEATS, field="quantity", low=low, high=MAX_SEATS)
    return quantity


async def transition(
    ctx: TenantContext, to_status: SubscriptionStatus | str, *, reason: str, at: datetime
) -> Subscription:
    """Move the tenant's subscription to `to_status` at `at`, if the state machine allows it
    (`Conflict` otherwise; `NotFound` without a subscription), and audit it with `reason`.
    Already there: nothing changes and nothing is recorded. Joins an open transaction."""
    ctx.require(Permission.BILLING_MANAGE)
    target = SubscriptionStatus(to_status)
    async with joined(ctx):
        # The row is locked so that two transitions at once (a webhook and the dunning job)
        # read and write one after the other.
        rows = await fetch(
            "SELECT id, status FROM subscription WHERE tenant_id = $1 FOR UPDATE", ctx.tenant_id
        )
        if not rows:
            raise NotFound(NO_SUBSCRIPTION)
        current = SubscriptionStatus(rows[0]["status"])
        if current != target:
            if target not in TRANSITIONS[current]:
                raise Conflict(REFUSED_TRANSITION, current=current.value, status=target.value)
            await execute(
                """
                UPDATE subscription
                SET status = $2,
                    status_changed_at = $3,
                    past_due_since = CASE WHEN $2 IN ('past_due', 'suspended')
                        THEN coalesce(past_due_since, $3::timestamptz) END,
                    cancel_at_period_end = cancel_at_period_end AND $2 <> 'canceled',
                    updated_at = $3
                WHERE tenant_id = $1
                """,
                ctx.tenant_id,
                target.value,
                at,
            )
            await record(
                ctx,
                f"billing.subscription.{target.value}",
                "subscription",
                rows[0]["id"],
                reason=reason,
                previous=current.value,
            )
        updated = await read_in_transaction(ctx)
    assert updated is not None
    return updated


def seats_for(plan: Plan, quantity: int) -> int:
    """The quantity a subscription to `plan` records: seats billed for a per-seat plan, the
    licence's seats for a licence, packs bought with the subscription for seat packs (the
    seat ledger holds each pack and its validity)."""
    if plan.kind == PlanKind.LICENSE:
        return plan.included_seats or 0
    return check_seats(quantity, low=1)


async def subscribe(
    ctx: TenantContext,
    plan_code: str,
    *,
    at: datetime,
    quantity: int = 1,
    currency: str = "EUR",
    price_category: str = "standard",
    trial: bool = True,
    collection_method: str = "send_invoice",
    gateway: str = "manual",
    net_terms_days: int = 30,
) -> Subscription:
    """Subscribe the tenant to plan `plan_code` from `at`: a trial first when the plan has
    one and `trial` holds, else an active first period (its invoice is the caller's next
    step). A trial is for a tenant's first subscription only: a tenant whose subscription
    was canceled may subscribe again, paying from the first day. One with a live
    subscription changes it instead (`Conflict`, also for the loser of two subscribes at
    once). Joins an open transaction."""
    ctx.require(Permission.BILLING_MANAGE)
    currency = currency_code(currency)
    if collection_method not in ("automatic", "send_invoice"):
        raise Invalid(N_("Unknown collection method."), field="collection_method")
    if gateway not in ("manual", "stripe"):
        raise Invalid(N_("Unknown payment gateway."), field="gateway")
    async with joined(ctx):
        plan = await known_plan(plan_code)
        if plan.retired_at is not None:
            raise Invalid(RETIRED_PLAN, field="plan")
        if await plan_price(plan.id, currency, price_category) is None:
            raise Invalid(NO_PRICE, field="currency", currency=currency)
        seats = seats_for(plan, quantity)
        existing = await read_in_transaction(ctx, lock=True)
        if existing is not None and existing.status != S.CANCELED:
            raise Conflict(ALREADY_SUBSCRIBED)
        # No second trial: a canceled tenant that subscribes again pays from the first day.
        trialing = trial and plan.trial_days > 0 and existing is None
        end = at + timedelta(days=plan.trial_days) if trialing else period_end(at, plan.interval)
        status = S.TRIALING if trialing else S.ACTIVE
        values = (
            ctx.tenant_id,
            existing.id if existing else uuid4(),
            plan.id,
            status.value,
            seats,
            currency,
            price_category,
            at,
            end,
            end if trialing else None,
            collection_method,
            net_terms_days,
            gateway,
        )
        if existing is None:
            # Two subscribes at once both read no subscription: the second insert finds the
            # first's row and is refused like any second subscription.
            inserted = await fetch(
                """
                INSERT INTO subscription (tenant_id, id, plan_id, status, quantity, currency,
                    price_category, current_period_start, current_period_end, trial_end,
                    collection_method, net_terms_days, gateway, status_changed_at, created_at,
                    updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $8, $8, $8)
                ON CONFLICT (tenant_id) DO NOTHING RETURNING id
                """,
                *values,
            )
            if not inserted:
                raise Conflict(ALREADY_SUBSCRIBED)
        else:
            # A canceled subscription is started afresh: same row (pending charges point at
            # it), new plan, period and state.
            await execute(
                """
                UPDATE subscription SET plan_id = $3, status = $4, quantity = $5, currency = $6,
                    price_category = $7, current_period_start = $8, current_period_end = $9,
                    trial_end = $10, collection_method = $11, net_terms_days = $12,
                    gateway = $13, status_changed_at = $8, updated_at = $8,
                    cancel_at_period_end = false, past_due_since = NULL,
                    gateway_subscription_id = NULL
                WHERE tenant_id = $1 AND id = $2
                """,
                *values,
            )
        await record(
            ctx,
            f"billing.subscription.{status.value}",
            "subscription",
            values[1],
            reason="subscribed",
            plan=plan.code,
            quantity=seats,
            currency=currency,
        )
        created = await read_in_transaction(ctx)
    assert created is not None
    return created


NOT_IN_TRIAL = N_("Only a subscription in its trial can start paying this way.")


async def start_paying(
    ctx: TenantContext,
    *,
    at: datetime,
    collection_method: str = "send_invoice",
    gateway: str = "manual",
) -> Subscription:
    """End the tenant's trial at `at` (early, or when it runs out): the subscription becomes
    active for a first full period from `at`, paid by `collection_method` through `gateway`.
    Audited as `billing.subscription.active`. Already active: unchanged. Its first invoice
    is the caller's next step (after commit). Joins an open transaction."""
    ctx.require(Permission.BILLING_MANAGE)
    async with joined(ctx):
        sub = await read_in_transaction(ctx, lock=True)
        if sub is None:
            raise NotFound(NO_SUBSCRIPTION)
        if sub.status == S.ACTIVE:
            return sub
        if sub.status != S.TRIALING:
            raise Conflict(NOT_IN_TRIAL)
        trial_end = min(sub.trial_end or at, at)
        await execute(
            """
            UPDATE subscription SET status = 'active', status_changed_at = $2,
                current_period_start = $2, current_period_end = $3, trial_end = $4,
                collection_method = $5, gateway = $6, updated_at = $2
            WHERE tenant_id = $1
            """,
            ctx.tenant_id,
            at,
            period_end(at, sub.plan.interval),
            trial_end,
            collection_method,
            gateway,
        )
        await record(
            ctx,
            "billing.subscription.active",
            "subscription",
            sub.id,
            reason="trial converted",
            previous=sub.status.value,
            collection_method=collection_method,
            gateway=gateway,
        )
        updated = await read_in_transaction(ctx)
    assert updated is not None
    return updated


async def use_gateway(ctx: TenantContext, gateway: str, collection_method: str) -> Subscription:
    """Have the tenant's subscription paid through `gateway` (before its card checkout, say).
    Audited as `billing.subscription.gateway`. Joins an open transaction."""
    ctx.require(Permission.BILLING_MANAGE)
    async with joined(ctx):
        sub = await read_in_transaction(ctx)
        if sub is None:
            raise NotFound(NO_SUBSCRIPTION)
        if (sub.gateway, sub.collection_method) != (gateway, collection_method):
            await execute(
                "UPDATE subscription SET gateway = $2, collection_method = $3, updated_at = $4 "
                "WHERE tenant_id = $1",
                ctx.tenant_id,
                gateway,
                collection_method,
                datetime.now(UTC),
            )
            await record(
                ctx,
                "billing.subscription.gateway",
                "subscription",
                sub.id,
                gateway=gateway,
                collection_method=collection_method,
            )
        updated = await read_in_transaction(ctx)
    assert updated is not None
    return updated


# --- the back office: trials, and the organization's life ----------------------------------

#: The most days an account manager extends a trial by at once.
MAX_TRIAL_EXTENSION_DAYS = 90
BAD_TRIAL_DAYS = N_("Extend a trial by a whole number of days between 1 and {high}.")


async def extend_trial(ctx: TenantContext, days: int, *, at: datetime) -> Subscription:
    """Give a trialing subscription `days` more days (1..`MAX_TRIAL_EXTENSION_DAYS`): its trial
    and its current period end that much later. `Invalid` for another number, `Conflict`
    unless it is trialing on the manual gateway (a payment service's trial is extended
    there), `NotFound` without a subscription. Audited as
    `billing.subscription.trial_extended`. Joins an open transaction."""
    ctx.require(Permission.BILLING_MANAGE)
    if isinstance(days, bool) or not isinstance(days, int):
        raise Invalid(BAD_TRIAL_DAYS, field="days", high=MAX_TRIAL_EXTENSION_DAYS)
    if not 1 <= days <= MAX_TRIAL_EXTENSION_DAYS:
        raise Invalid(BAD_TRIAL_DAYS, field="days", high=MAX_TRIAL_EXTENSION_DAYS)
    async with joined(ctx):
        sub = await read_in_transaction(ctx, lock=True)
        if sub is None:
            raise NotFound(NO_SUBSCRIPTION)
        if sub.status != S.TRIALING:
            raise Conflict(NOT_TRIALING)
        if sub.gateway != "manual":
            # the payment service would charge at the trial's old end all the same
            raise Conflict(TRIAL_ON_GATEWAY)
        trial_end = (sub.trial_end or sub.current_period_end) + timedelta(days=days)
        await execute(
            """UPDATE subscription SET trial_end = $2, current_period_end = $2, updated_at = $3
               WHERE tenant_id = $1""",
            ctx.tenant_id,
            trial_end,
            at,
        )
        await record(
            ctx,
            "billing.subscription.trial_extended",
            "subscription",
            sub.id,
            days=days,
            previous_trial_end=(sub.trial_end or sub.current_period_end).isoformat(),
            trial_end=trial_end.isoformat(),
        )
        updated = await read_in_transaction(ctx)
    assert updated is not None
    return updated


NOT_TRIALING = N_("Only a subscription in its trial can have its trial extended.")
TRIAL_ON_GATEWAY = N_("This subscription is billed by the payment service: extend the trial there.")
