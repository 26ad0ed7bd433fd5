"""The end of a period on the manual gateway: a trial ends, a period rolls over, a
subscription set to cancel at period end is canceled. Stripe runs its own periods (its
webhooks bring them); Jalon runs the manual gateway's.

As on Stripe, a trial that ends converts to a paid subscription: it becomes `active` for a
first full period, invoiced (bank transfer, the subscription's net terms), unless the admins
canceled at period end. An unpaid invoice then goes through dunning. A suspended
subscription does not roll over: it receives no new period until it is paid.

An hourly sweep queues one job per tenant whose period is over (one per tenant and hour);
the job renews at most one period per run, and the next sweep catches up any other missed
one, each period invoiced once (`billing.invoices.bill_period` is idempotent per period).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from billing.subscriptions import (
    Subscription,
    SubscriptionStatus,
    joined,
    period_end,
    read_in_transaction,
    transition,
)
from core.database import execute, fetch
from core.jobs import enqueue, every, job
from tenants.audit import record
from tenants.context import TenantContext
from tenants.organizations import dangerously_sweep_tenants, system_context, tenant_by_id
from tenants.permissions import Permission

S = SubscriptionStatus

#: Periods that roll over when they end (a suspended one waits for its payment).
ROLLING = (S.ACTIVE, S.PAST_DUE)


def due(sub: Subscription, at: datetime) -> bool:
    """Whether the manual gateway has something to do for `sub` at `at`."""
    if sub.gateway != "manual" or sub.current_period_end > at:
        return False
    return sub.status == S.TRIALING or sub.status in ROLLING


async def renew(ctx: TenantContext, *, at: datetime) -> Subscription | None:
    """End what has ended at `at` for the tenant's manual subscription: cancel it (canceled at
    period end), convert its trial, or start its next period; then invoice the new period.
    None without a subscription; unchanged when nothing is due. Audited."""
    ctx.require(Permission.BILLING_MANAGE)
    async with joined(ctx):
        locked = await fetch(
            "SELECT id FROM subscription WHERE tenant_id = $1 FOR UPDATE", ctx.tenant_id
        )
        sub = await read_in_transaction(ctx) if locked else None
        if sub is None or not due(sub, at):
            return sub
        end = sub.current_period_end
        if sub.cancel_at_period_end:
            return await transition(ctx, S.CANCELED, reason="canceled at period end", at=end)
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
            period_end(end, sub.plan.interval),
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
            period_end=period_end(end, sub.plan.interval).isoformat(),
        )
    await _invoice(ctx, at)
    async with joined(ctx):
        return await read_in_transaction(ctx)


async def _invoice(ctx: TenantContext, at: datetime) -> None:
    from billing import invoices

    await invoices.bill_period(ctx, at=at, locale=ctx.tenant.default_locale)


@job
async def renew_tenant(ctx: dict[str, Any], tenant_id: str) -> str | None:
    """Renew one tenant's manual subscription now; its status after it."""
    tenant = await tenant_by_id(UUID(tenant_id))
    sub = await renew(system_context(tenant, "renewal"), at=datetime.now(UTC))
    return None if sub is None else sub.status.value


async def queue_renewals(at: datetime) -> int:
    """Queue the renewal of every tenant whose manual subscription's period (or trial) is
    over at `at`; how many were queued."""
    stamp = at.astimezone(UTC).strftime("%Y%m%d%H")

    async def look(tenant_id: UUID) -> int:
        rows = await fetch(
            """SELECT 1 FROM subscription WHERE tenant_id = $1 AND gateway = 'manual'
               AND status IN ('trialing', 'active', 'past_due') AND current_period_end <= $2""",
            tenant_id,
            at,
        )
        if not rows:
            return 0
        enqueue("renew_tenant", str(tenant_id), job_id=f"renewal:{tenant_id}:{stamp}")
        return 1

    return await dangerously_sweep_tenants(look)


@every(minutes=60)
async def sweep_renewals(ctx: dict[str, Any]) -> int:
    """Hourly: queue the renewal of each tenant whose period is over."""
    return await queue_renewals(datetime.now(UTC))
