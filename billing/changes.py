"""Changes to a subscription mid-period, previewed then applied: more or fewer seats, another
plan (upgrade or downgrade), cancellation at the end of the period (or its undoing).

Proration is exact integer arithmetic. A period's price is spread over its microseconds: the
share of `amount` elapsed at `t` is `amount × elapsed / length`, rounded half-even, and the
piece of the period between `a` and `b` costs `share(b) − share(a)`. The pieces of any split
of a period therefore always sum to the full price: no cent is created or lost, whatever the
number of changes. A change credits the unused rest of the old price and charges the rest of
the new one, unless the subscription says `proration = 'none'` (then the new price starts at
renewal) or it is still in its trial (nothing has been paid).

On the manual gateway, the prorated amounts wait in `pending_charge` for the next invoice
(`billing.invoices.bill_period` takes them). On Stripe, the gateway is told after commit and
its invoices bring the prorations back through webhooks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4

from billing.catalogue import Plan, PlanKind, plan_price
from billing.dunning import settle
from billing.money import Money, total
from billing.subscriptions import (
    NO_PRICE,
    NO_SUBSCRIPTION,
    RETIRED_PLAN,
    Subscription,
    SubscriptionStatus,
    check_seats,
    known_plan,
    period_end,
    period_price,
    read_in_transaction,
    seats_for,
    transition,
)
from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.i18n import N_, translate
from core.settings import Settings, get_settings
from tenants.audit import record
from tenants.context import TenantContext
from tenants.organizations import (
    close_in_transaction,
    last_closing_or_suspension,
    reactivate_in_transaction,
    suspend_in_transaction,
)
from tenants.permissions import Permission

log = logging.getLogger(__name__)

_TICK = timedelta(microseconds=1)

CREDIT = N_("Unused time on {plan} × {quantity}")
CHARGE = N_("Remaining time on {plan} × {quantity}")
RENEWAL = N_("{plan} × {quantity}, next period")
NOTHING_TO_CHANGE = N_("Nothing to change: choose another plan or number of seats.")
NOT_CHANGEABLE = N_("A subscription that is {status} cannot be changed.")
OTHER_INTERVAL = N_(
    "This plan is billed on another interval: cancel at the end of the period, then choose it."
)
PACKS_ARE_BOUGHT = N_("Seat packs are bought one pack at a time, not by changing plans.")
BELOW_USED = N_("{used} seats are already used this period: keep at least that many until it ends.")
GATEWAY_REFUSED = N_(
    "The payment service did not take the change, so nothing was changed. Try again later."
)


def share(amount: int, start: datetime, end: datetime, moment: datetime) -> int:
    """The part of `amount` (for the period `start`–`end`) used up at `moment`, rounded
    half-even to the minor unit; 0 before the period, `amount` after it."""
    length = (end - start) // _TICK
    elapsed = min(max((moment - start) // _TICK, 0), length)
    quotient, remainder = divmod(amount * elapsed, length)
    twice = 2 * remainder
    if twice > length or (twice == length and quotient % 2 == 1):
        quotient += 1
    return quotient


def portion(amount: int, start: datetime, end: datetime, a: datetime, b: datetime) -> int:
    """What the piece `a`–`b` of the period `start`–`end` costs at `amount` a period."""
    return share(amount, start, end, b) - share(amount, start, end, a)


@dataclass(frozen=True)
class ChangeRequest:
    """What the tenant asks for; None keeps the current value."""

    plan_code: str | None = None
    quantity: int | None = None
    cancel_at_period_end: bool | None = None


@dataclass(frozen=True)
class PreviewLine:
    """One line of what a change invoices: a credit (negative), a charge, or the renewal."""

    kind: str
    plan: Plan
    quantity: int
    amount: Money
    period_start: datetime
    period_end: datetime
    #: a msgid with {plan} and {quantity}
    label: str

    def describe(self, locale: str) -> str:
        """The line as the invoice and the preview write it in `locale`."""
        return translate(locale, self.label, plan=self.plan.name(locale), quantity=self.quantity)


@dataclass(frozen=True)
class ChangePreview:
    """A change worked out before it is made: the subscription before, the plan and seats
    after, what is charged with the change and what the next period will cost."""

    before: Subscription
    plan: Plan
    quantity: int
    price_category: str
    cancel_at_period_end: bool
    at: datetime
    prorated: bool
    now_lines: list[PreviewLine] = field(default_factory=list)
    renewal_lines: list[PreviewLine] = field(default_factory=list)

    @property
    def due_now(self) -> Money:
        """The sum of the lines charged with the change (negative: a credit)."""
        return total([line.amount for line in self.now_lines], self.before.currency)

    @property
    def at_renewal(self) -> Money:
        return total([line.amount for line in self.renewal_lines], self.before.currency)

    @property
    def changes_plan_or_seats(self) -> bool:
        return self.plan.id != self.before.plan.id or self.quantity != self.before.quantity


async def _work_out(
    ctx: TenantContext, sub: Subscription, request: ChangeRequest, at: datetime
) -> ChangePreview:
    if sub.status not in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE):
        raise Conflict(NOT_CHANGEABLE, status=sub.status.value)
    plan = sub.plan
    if request.plan_code is not None and request.plan_code != sub.plan.code:
        plan = await known_plan(request.plan_code)
        if plan.retired_at is not None:
            raise Invalid(RETIRED_PLAN, field="plan")
        if PlanKind.SEAT_PACK in (plan.kind, sub.plan.kind):
            raise Invalid(PACKS_ARE_BOUGHT, field="plan")
        if plan.interval != sub.plan.interval:
            raise Invalid(OTHER_INTERVAL, field="plan")
    if request.quantity is not None:
        check_seats(request.quantity, low=1)
    if plan.kind == PlanKind.SEAT_PACK and request.quantity not in (None, sub.quantity):
        raise Invalid(PACKS_ARE_BOUGHT, field="quantity")
    quantity = seats_for(plan, request.quantity if request.quantity is not None else sub.quantity)
    category = sub.price_category if plan.id == sub.plan.id else "standard"
    price = await plan_price(plan.id, sub.currency, category)
    if price is None:
        raise Invalid(NO_PRICE, field="plan", currency=sub.currency)
    cancel = (
        sub.cancel_at_period_end
        if request.cancel_at_period_end is None
        else request.cancel_at_period_end
    )
    if plan.id == sub.plan.id and quantity == sub.quantity and cancel == sub.cancel_at_period_end:
        raise Invalid(NOTHING_TO_CHANGE, field="quantity")
    if plan.kind == PlanKind.PER_SEAT and quantity < sub.quantity:
        # The seats used this period are consumed: fewer would credit seats already used.
        used = await fetch(
            "SELECT used FROM seat_balance WHERE tenant_id = $1 AND period_start = $2",
            ctx.tenant_id,
            sub.current_period_start,
        )
        if used and quantity < used[0]["used"]:
            raise Invalid(BELOW_USED, field="quantity", used=used[0]["used"])
    start, end = sub.current_period_start, sub.current_period_end
    prorated = (
        sub.proration == "prorate"
        and sub.status == SubscriptionStatus.ACTIVE
        and start <= at < end
        and sub.unit_amount is not None
    )
    new_amount = period_price(plan, price.unit_amount, quantity)
    now_lines: list[PreviewLine] = []
    if prorated and (plan.id != sub.plan.id or quantity != sub.quantity):
        assert sub.unit_amount is not None
        old_amount = period_price(sub.plan, sub.unit_amount, sub.quantity)
        credit = portion(old_amount, start, end, at, end)
        charge = portion(new_amount, start, end, at, end)
        if credit:
            now_lines.append(
                PreviewLine(
                    "credit", sub.plan, sub.quantity, Money(-credit, sub.currency), at, end, CREDIT
                )
            )
        if charge:
            now_lines.append(
                PreviewLine("charge", plan, quantity, Money(charge, sub.currency), at, end, CHARGE)
            )
    renewal_lines = []
    if not cancel:
        renewal_lines.append(
            PreviewLine(
                "renewal",
                plan,
                quantity,
                Money(new_amount, sub.currency),
                end,
                period_end(end, plan.interval),
                RENEWAL,
            )
        )
    return ChangePreview(
        before=sub,
        plan=plan,
        quantity=quantity,
        price_category=category,
        cancel_at_period_end=cancel,
        at=at,
        prorated=prorated,
        now_lines=now_lines,
        renewal_lines=renewal_lines,
    )


async def preview_change(
    ctx: TenantContext, request: ChangeRequest, *, at: datetime
) -> ChangePreview:
    """What `request` would change at `at` and cost, without changing anything. `Invalid`
    for a wrong request, `Conflict` when the subscription cannot change now, `NotFound`
    without a subscription."""
    ctx.require(Permission.BILLING_MANAGE)
    async with tenant_transaction(ctx):
        sub = await read_in_transaction(ctx)
        if sub is None:
            raise NotFound(NO_SUBSCRIPTION)
        return await _work_out(ctx, sub, request, at)


async def apply_change(
    ctx: TenantContext,
    request: ChangeRequest,
    *,
    at: datetime,
    locale: str = "en",
    settings: Settings | None = None,
) -> Subscription:
    """Make the change `preview_change` shows, worked out again on the locked subscription:
    the subscription is updated, the prorated lines wait for the next invoice, and the
    change is audited as `billing.subscription.changed`. A Stripe subscription is then
    changed on Stripe (after commit: no transaction waits on the network)."""
    ctx.require(Permission.BILLING_MANAGE)
    async with tenant_transaction(ctx):
        preview = await apply_in_transaction(ctx, request, at, locale)
        after = await read_in_transaction(ctx)
    assert after is not None
    if after.gateway != "manual":
        from billing.gateways.base import GatewayError

        try:
            await _tell_gateway(ctx, preview, after, settings or get_settings())
        except GatewayError:
            # Jalon and the gateway must agree: the change is undone, and the person told.
            log.exception("the gateway refused %s's change; undone", ctx.tenant.slug)
            await _undo(ctx, preview, at)
            raise Invalid(GATEWAY_REFUSED) from None
    return after


async def _undo(ctx: TenantContext, preview: ChangePreview, at: datetime) -> None:
    """Put the subscription back as it was before `preview`'s change (the gateway refused
    it), audited as `billing.subscription.change_undone`."""
    before = preview.before
    async with tenant_transaction(ctx):
        await execute(
            """
            UPDATE subscription SET plan_id = $2, quantity = $3, price_category = $4,
                cancel_at_period_end = $5, updated_at = $6
            WHERE tenant_id = $1
            """,
            ctx.tenant_id,
            before.plan.id,
            before.quantity,
            before.price_category,
            before.cancel_at_period_end,
            at,
        )
        await record(
            ctx,
            "billing.subscription.change_undone",
            "subscription",
            before.id,
            reason="gateway refused the change",
            plan=before.plan.code,
            quantity=before.quantity,
            cancel_at_period_end=before.cancel_at_period_end,
        )


async def apply_in_transaction(
    ctx: TenantContext, request: ChangeRequest, at: datetime, locale: str
) -> ChangePreview:
    """The change, inside the caller's transaction: worked out on the locked subscription,
    written, its prorations held for the next invoice, audited."""
    sub = await read_in_transaction(ctx, lock=True)
    if sub is None:
        raise NotFound(NO_SUBSCRIPTION)
    preview = await _work_out(ctx, sub, request, at)
    await execute(
        """
        UPDATE subscription SET plan_id = $2, quantity = $3, price_category = $4,
            cancel_at_period_end = $5, updated_at = $6
        WHERE tenant_id = $1
        """,
        ctx.tenant_id,
        preview.plan.id,
        preview.quantity,
        preview.price_category,
        preview.cancel_at_period_end,
        at,
    )
    await _hold_for_next_invoice(ctx, preview, locale)
    await record(
        ctx,
        "billing.subscription.changed",
        "subscription",
        sub.id,
        plan=preview.plan.code,
        previous_plan=sub.plan.code,
        quantity=preview.quantity,
        previous_quantity=sub.quantity,
        cancel_at_period_end=preview.cancel_at_period_end,
        due_now=preview.due_now.amount,
        currency=sub.currency,
    )
    return preview


async def _hold_for_next_invoice(ctx: TenantContext, preview: ChangePreview, locale: str) -> None:
    """The prorated lines, as charges the next invoice takes (one multi-row INSERT)."""
    if not preview.now_lines or preview.before.gateway != "manual":
        return
    args: list[Any] = [ctx.tenant_id, preview.before.id, preview.before.currency]
    rows = []
    for line in preview.now_lines:
        base = len(args)
        rows.append(
            f"($1, ${base + 1}, $2, 'proration', ${base + 2}, ${base + 3}, ${base + 4}, $3, "
            f"${base + 5}, ${base + 6}, ${base + 7})"
        )
        args += [
            uuid4(),
            line.describe(locale)[:500],
            line.quantity,
            line.amount.amount,
            line.period_start,
            line.period_end,
            preview.at,
        ]
    await execute(
        "INSERT INTO pending_charge (tenant_id, id, subscription_id, kind, description, "  # noqa: S608
        "quantity, amount, currency, period_start, period_end, created_at) VALUES "
        + ", ".join(rows),
        *args,
    )


async def _tell_gateway(
    ctx: TenantContext, preview: ChangePreview, after: Subscription, settings: Settings
) -> None:
    from billing.gateways import gateway_for

    gateway = gateway_for(after.gateway, settings)
    if preview.changes_plan_or_seats:
        price = await plan_price(after.plan.id, after.currency, after.price_category)
        assert price is not None
        await gateway.change_subscription(
            ctx, after, plan_price=price, quantity=after.quantity, prorate=preview.prorated
        )
    if preview.cancel_at_period_end and not preview.before.cancel_at_period_end:
        await gateway.cancel_subscription(ctx, after, at_period_end=True)
    elif preview.before.cancel_at_period_end and not preview.cancel_at_period_end:
        # "Keep the subscription": without this, the gateway's next webhook (a fresh read)
        # would set the cancellation back on Jalon's row
        await gateway.resume_subscription(ctx, after)


# --- a discount granted by our staff ----------------------------------------------------------

BAD_CREDIT = N_("A discount is a positive amount, at most one period's price ({high}).")
NO_CREDIT_ON_GATEWAY = N_(
    "This subscription is billed by the payment service: grant the discount there."
)
CREDIT_NEEDS_PRICE = N_("This subscription has no price to discount.")
#: How an account manager's discount reads on the invoice, as its description says.
DISCOUNT_LINE = "Remise commerciale / Discount: {description}"


async def grant_discount(
    ctx: TenantContext, amount: int, description: str, *, at: datetime
) -> Money:
    """A discount of `amount` (minor units of the subscription's currency) on the tenant's
    next invoice: a negative charge waiting in `pending_charge` that `bill_period` takes as an
    adjustment line (once, while the invoice stays at zero or more). At most one full
    period's price, so that one invoice can take it whole. Our staff or the system only
    (`Forbidden` for a tenant's own people); manual gateway only (`Conflict`: Stripe bills
    the subscription itself). Audited as `billing.discount.granted`."""
    ctx.require(Permission.BILLING_MANAGE)
    if ctx.actor.kind not in ("staff", "system"):
        raise Forbidden()
    text = " ".join((description or "").split())
    if not 3 <= len(text) <= 200:
        raise Invalid(N_("Describe the discount (3 to 200 characters)."), field="description")
    async with tenant_transaction(ctx):
        sub = await read_in_transaction(ctx, lock=True)
        if sub is None:
            raise NotFound(NO_SUBSCRIPTION)
        if sub.status == SubscriptionStatus.CANCELED:
            raise Conflict(NOT_CHANGEABLE, status=sub.status.value)
        if sub.gateway != "manual":
            raise Conflict(NO_CREDIT_ON_GATEWAY)
        ceiling = sub.period_amount
        if ceiling is None or ceiling.amount <= 0:
            raise Conflict(CREDIT_NEEDS_PRICE)
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise Invalid(BAD_CREDIT, field="amount", high=str(ceiling))
        if not 0 < amount <= ceiling.amount:
            raise Invalid(BAD_CREDIT, field="amount", high=str(ceiling))
        charge_id = uuid4()
        await execute(
            """INSERT INTO pending_charge (tenant_id, id, subscription_id, kind, description,
                   quantity, amount, currency, period_start, period_end, created_at)
               VALUES ($1, $2, $3, 'other', $4, 1, $5, $6, $7, $8, $9)""",
            ctx.tenant_id,
            charge_id,
            sub.id,
            DISCOUNT_LINE.format(description=text)[:500],
            -amount,
            sub.currency,
            sub.current_period_start,
            sub.current_period_end,
            at,
        )
        await record(
            ctx,
            "billing.discount.granted",
            "subscription",
            sub.id,
            amount=amount,
            currency=sub.currency,
            description=text,
            charge=str(charge_id),
        )
    return Money(amount, sub.currency)


# --- the organization's life (the back office) ----------------------------------------------

S = SubscriptionStatus


async def suspend_tenant(ctx: TenantContext, *, at: datetime) -> None:
    """Suspend the organization (`tenants.organizations.suspend_in_transaction`: its members
    and participants reach it no more). Its subscription stays as it is, whatever its status:
    what was bought stays bought, and what is owed stays owed (a past-due one goes on through
    dunning, which alone suspends a subscription for not paying), so reactivating finds it
    where billing left it. `at` is kept for the callers' symmetry."""
    ctx.require(Permission.BILLING_MANAGE)
    async with tenant_transaction(ctx):
        await suspend_in_transaction(ctx)


async def reactivate_tenant(ctx: TenantContext, *, at: datetime) -> str:
    """Undo `suspend_tenant` or `close_tenant` (before the retention period ends): the
    organization gets its previous status back and the cancellation at the period's end that
    closing set is withdrawn. A past-due or suspended subscription (dunning) is settled as a
    payment would settle it (`billing.dunning.settle`: active again only when nothing Jalon
    invoiced is overdue; on a payment service, only the service's payment does it): reopening
    the organization clears no debt. The organization's new status."""
    ctx.require(Permission.BILLING_MANAGE)
    async with tenant_transaction(ctx):
        undone = await last_closing_or_suspension(ctx)
        status = await reactivate_in_transaction(ctx, at=at)
        sub = await read_in_transaction(ctx, lock=True)
        if sub is None or status == "suspended":
            return status
        if sub.status in (S.PAST_DUE, S.SUSPENDED):
            if sub.gateway == "manual":
                await settle(ctx, at=at)
        elif (
            undone.get("cancels_at_period_end")
            and sub.cancel_at_period_end
            and sub.status in (S.TRIALING, S.ACTIVE)
            # a payment service cannot be told to resume: there, subscribe again
            and sub.gateway == "manual"
        ):
            await apply_in_transaction(ctx, ChangeRequest(cancel_at_period_end=False), at, "en")
    return status


async def close_tenant(
    ctx: TenantContext, *, confirm_slug: str, retention_days: int, at: datetime
) -> date:
    """Close the organization (`tenants.organizations.close_in_transaction`: typed slug,
    retention) and end its subscription in the same transaction: a trialing or active one
    is canceled at the end of its period (already paid for; reopening withdraws the
    cancellation on the manual gateway; a payment service's subscription, told after commit,
    is subscribed again instead), a past-due or suspended one at once. Open invoices stay
    owed. Its `delete_after`."""
    ctx.require(Permission.BILLING_MANAGE)
    at_period_end: bool | None = None  # what the payment service must be told, if anything
    async with tenant_transaction(ctx):
        sub = await read_in_transaction(ctx, lock=True)
        details: dict[str, Any] = {}
        if sub is not None and sub.status in (S.TRIALING, S.ACTIVE):
            details["cancels_at_period_end"] = not sub.cancel_at_period_end
        delete_after = await close_in_transaction(
            ctx, confirm_slug=confirm_slug, retention_days=retention_days, at=at, **details
        )
        if sub is None or sub.status == S.CANCELED:
            return delete_after
        if details.get("cancels_at_period_end"):
            await apply_in_transaction(ctx, ChangeRequest(cancel_at_period_end=True), at, "en")
            at_period_end = True
        elif sub.status not in (S.TRIALING, S.ACTIVE):
            await transition(ctx, S.CANCELED, reason="organization closed", at=at)
            at_period_end = False
        after = await read_in_transaction(ctx)
    if after is not None and after.gateway != "manual" and at_period_end is not None:
        # after commit, like `apply_change`: the organization is closed whatever the payment
        # service answers; a refusal is logged, for the account manager to cancel it there
        from billing.gateways import gateway_for
        from billing.gateways.base import GatewayError

        try:
            gateway = gateway_for(after.gateway, get_settings())
            await gateway.cancel_subscription(ctx, after, at_period_end=at_period_end)
        except GatewayError:
            log.exception("the gateway refused to cancel %s's subscription", ctx.tenant.slug)
    return delete_after
