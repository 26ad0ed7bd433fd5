"""Billing's periodic jobs: the hourly dunning sweep, one job per tenant with a subscription.

The sweep only lists the tenants to look at (inside each one's own transaction, as the
per-tenant sweeps do) and queues one `dunning_tenant` job for each, with an id of the tenant
and the hour: a tenant's dunning runs in its own transaction, and twice in an hour at most
once. The job itself is idempotent too (`billing.dunning.run_dunning`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from billing.dunning import run_dunning
from core.database import fetch
from core.jobs import enqueue, every, job
from tenants.organizations import dangerously_sweep_tenants, system_context, tenant_by_id


@job
async def dunning_tenant(ctx: dict[str, Any], tenant_id: str) -> str | None:
    """Run one tenant's dunning now; the subscription's status after it."""
    tenant = await tenant_by_id(UUID(tenant_id))
    outcome = await run_dunning(system_context(tenant, "dunning"), at=datetime.now(UTC))
    return outcome.status


async def queue_dunning(at: datetime) -> int:
    """Queue the dunning of every tenant whose subscription may need it (past due, suspended,
    or with an open invoice past its due date); how many were queued."""
    stamp = at.astimezone(UTC).strftime("%Y%m%d%H")

    async def look(tenant_id: UUID) -> int:
        rows = await fetch(
            """SELECT 1 FROM subscription s WHERE s.tenant_id = $1 AND (
                   s.status IN ('past_due', 'suspended') OR EXISTS (
                       SELECT 1 FROM invoice i WHERE i.tenant_id = $1 AND i.status = 'open'
                       AND i.gateway = 'manual' AND i.due_on < $2
                       AND i.total > i.amount_paid))""",
            tenant_id,
            at.astimezone(UTC).date(),
        )
        if not rows:
            return 0
        enqueue("dunning_tenant", str(tenant_id), job_id=f"dunning:{tenant_id}:{stamp}")
        return 1

    return await dangerously_sweep_tenants(look)


@every(minutes=60)
async def sweep_dunning(ctx: dict[str, Any]) -> int:
    """Hourly: queue each tenant's dunning (reminders, suspension, reactivation)."""
    return await queue_dunning(datetime.now(UTC))
