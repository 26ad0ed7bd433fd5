"""The end of a period on the manual gateway: a trial ends, a period rolls over, a
subscription set to cancel at period end is canceled. Stripe runs its own periods (its
webhooks bring them); Jalon runs the manual gateway's.

As on Stripe, a trial that ends converts to a paid subscription: it becomes `active` for a
first full period, invoiced (bank transfer, the subscription's net terms), unless the admins
canceled at period end. An unpaid invoice then goes through dunning. A suspended
subscription does not roll over: it receives no new period until it is paid.

Each period is computed from the subscription's anchor (the first paid day): a period
that began on 31 January ends on 28 February, and the next one on 31 March, not on 28 March.

A subscription canceled at period end first receives what it still owes: its period's
invoice if it never had one, and a final invoice of the prorated charges still waiting
(seats added during the period) and of the last period's overage seats (`bill` policy),
before it becomes canceled.

An hourly sweep queues one job per tenant whose period is over, or whose current period has
no invoice an hour after it began (an invoice that failed is attempted again), one per
tenant and hour; the job renews at most one period per run, and the next sweep catches up
any other missed one, each period invoiced once (`billing.invoices.bill_period` is
idempotent per period).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from billing.seats import mark_overage_billed
from billing.subscriptions import (
    Subscription,
    SubscriptionStatus,
    add_months,
    joined,
    period_end,
    read_in_transaction,
    transition,
)
from core.database import execute, fetch, tenant_transaction
from core.jobs import enqueue, every, job
from tenants.audit import record
from tenants.context import TenantContext
from tenants.organizations import dangerously_sweep_tenants, system_context, tenant_by_id
from tenants.permissions import Permission

log = logging.getLogger(__name__)

S = SubscriptionStatus

#: Periods that roll over when they end (a suspended one waits for its payment).
ROLLING = (S.ACTIVE, S.PAST_DUE)

#: How long after a period begins its missing invoice is attempted again by the sweep (the
#: request or job that began it bills it straight away).
INVOICE_GRACE = timedelta(hours=1)


def due(sub: Subscription, at: datetime) -> bool:
    """Whether the manual gateway has a period to end for `sub` at `at`."""
    if sub.gateway != "manual" or sub.current_period_end > at:
        return False
    return sub.status == S.TRIALING or sub.status in ROLLING


def billable(sub: Subscription) -> bool:
    """Whether the manual gateway invoices `sub`'s current period."""
    return sub.gateway == "manual" and sub.status in ROLLING


def next_period_end(sub: Subscription) -> datetime:
    """The end of the period that follows `sub`'s current one, counted in whole intervals
    from its anchor (the first paid day: the trial's end, else the day it was taken), so
    that a day clamped in a short month comes back in the next. A period not on its anchor
    (one a gateway set) follows on from its own end."""
    end, step = sub.current_period_end, 12 if sub.plan.interval == "year" else 1
    anchor = sub.trial_end or sub.created_at
    months = (end.year - anchor.year) * 12 + end.month - anchor.month
    if months > 0 and add_months(anchor, months) == end:
        return add_months(anchor, months + step)
    return period_end(end, sub.plan.interval)


async def renew(ctx: TenantContext, *, at: datetime) -> Subscription | None:
    """End what has ended at `at` for the tenant's manual subscription: cancel it (canceled at
    period end, once what it owes is invoiced), convert its trial, or start its next period;
    then invoice the period (also when nothing rolled over, should its invoice be missing).
    None without a subscription; unchanged when nothing is due. Audited."""
    ctx.require(Permission.BILLING_MANAGE)
    async with joined(ctx):
        sub = await read_in_transaction(ctx, lock=True)
        if sub is None:
            return None
        if not due(sub, at):
            if not billable(sub):
                return sub
        elif not sub.cancel_at_period_end:
            await _start_next_period(ctx, sub, at)
    if due(sub, at) and sub.cancel_at_period_end:
        await _invoice(ctx, at)
        await _invoice_waiting_charges(ctx, sub, at)
        return await transition(
            ctx, S.CANCELED, reason="canceled at period end", at=sub.current_period_end
        )
    await _invoice(ctx, at)
    async with joined(ctx):
        return await read_in_transaction(ctx)


async def _start_next_period(ctx: TenantContext, sub: Subscription, at: datetime) -> None:
    end, following = sub.current_period_end, next_period_end(sub)
    await execute(
        """
        UPDATE subscription SET current_period_start = $2, current_period_end = $3,
            status = CASE WHEN status = 'trialing' THEN 'active' ELSE status END,
            status_changed_at = CASE WHEN status = 'trialing' THEN $2 ELSE status_changed_at
                END,
            updated_at = $4
        WHERE tenant_id = $1
        """,
        ctx.tenant_id,
        end,
        following,
        at,
    )
    if sub.status == S.TRIALING:
        await record(
            ctx,
            "billing.subscription.active",
            "subscription",
            sub.id,
            reason="trial ended",
            previous=sub.status.value,
        )
    await record(
        ctx,
        "billing.subscription.renewed",
        "subscription",
        sub.id,
        period_start=end.isoformat(),
        period_end=following.isoformat(),
    )


async def _invoice(ctx: TenantContext, at: datetime) -> None:
    from billing import invoices

    await invoices.bill_period(ctx, at=at, locale=ctx.tenant.default_locale)


async def _invoice_waiting_charges(ctx: TenantContext, sub: Subscription, at: datetime) -> None:
    """The subscription's last invoice: what it still owes at the end of its last period,
    billed once: the prorated charges still waiting (seats added after that period was
    invoiced) and, under the `bill` policy, the overage seats of that last period (and of
    any earlier one not billed yet). A net credit is not invoiced (it stays in
    `pending_charge` for a credit note)."""
    from billing import invoices

    key = f"final:{sub.id}:{sub.current_period_start.isoformat()}"
    async with tenant_transaction(ctx):
        billable = await invoices._billable(ctx.tenant_id)
        overage, owed = (
            await invoices.overage_lines(ctx, billable, before=sub.current_period_end)
            if billable is not None
            else ([], [])
        )
        charges = [
            row
            for row in await invoices._pending_charges(ctx.tenant_id, sub.id)
            if row["currency"].strip() == sub.currency
        ]
        owes = sum(line.quantity * line.unit_amount for line in overage)
        if not (charges or overage) or owes + sum(int(row["amount"]) for row in charges) <= 0:
            return
        draft = await invoices.insert_draft(
            ctx,
            overage + [invoices._charge_line(row) for row in charges],
            currency=sub.currency,
            subscription_id=sub.id,
            billing_key=key,
            period=(sub.current_period_start, sub.current_period_end),
            collection_method=sub.collection_method,
            po_number=sub.po_number,
            gateway=sub.gateway,
        )
        if draft.status != "draft":
            return
        await mark_overage_billed(ctx, owed)
        await execute(
            """UPDATE pending_charge SET invoice_id = $3, invoiced_at = $4
               WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND invoiced_at IS NULL""",
            ctx.tenant_id,
            [row["id"] for row in charges],
            draft.id,
            at,
        )
        issued = await invoices.issue_draft(ctx, draft.id, at=at, net_terms_days=sub.net_terms_days)
        await invoices.mail_issued(ctx, issued)


@job
async def renew_tenant(ctx: dict[str, Any], tenant_id: str) -> str | None:
    """Renew one tenant's manual subscription now; its status after it."""
    tenant = await tenant_by_id(UUID(tenant_id))
    sub = await renew(system_context(tenant, "renewal"), at=datetime.now(UTC))
    return None if sub is None else sub.status.value


async def queue_renewals(at: datetime) -> int:
    """Queue the renewal of every tenant whose manual subscription's period (or trial) is
    over at `at`, or whose current period has no invoice `INVOICE_GRACE` after it began;
    how many were queued."""
    stamp = at.astimezone(UTC).strftime("%Y%m%d%H")

    async def look(tenant_id: UUID) -> int:
        rows = await fetch(
            """SELECT 1 FROM subscription s WHERE s.tenant_id = $1 AND s.gateway = 'manual'
               AND ((s.status IN ('trialing', 'active', 'past_due')
                     AND s.current_period_end <= $2)
                 OR (s.status IN ('active', 'past_due') AND s.current_period_start <= $3
                     AND NOT EXISTS (
                        SELECT 1 FROM invoice i WHERE i.tenant_id = $1
                        AND i.subscription_id = s.id AND i.billing_key LIKE 'period:%'
                        AND i.period_start = s.current_period_start)))""",
            tenant_id,
            at,
            at - INVOICE_GRACE,
        )
        if not rows:
            return 0
        enqueue("renew_tenant", str(tenant_id), job_id=f"renewal:{tenant_id}:{stamp}")
        return 1

    return await dangerously_sweep_tenants(look)


@every(minutes=60)
async def sweep_renewals(ctx: dict[str, Any]) -> int:
    """Hourly: queue the renewal of each tenant whose period is over or not yet invoiced."""
    return await queue_renewals(datetime.now(UTC))
