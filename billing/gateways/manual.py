"""The manual gateway: bank transfers against invoices Jalon issues itself.

Nothing leaves Jalon: the subscription's record is the truth, changes are prorated into
pending charges by the subscription services, and an invoice is issued here (numbered, due
after the subscription's net terms) and mailed to the tenant with its link; account managers
record the transfers received (`billing.payments.record_payment`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from billing.gateways.base import (
    GatewayInvoice,
    GatewayPlanPrice,
    GatewayProfile,
    GatewaySubscription,
    GatewaySubscriptionView,
)
from billing.invoices import issue_draft, mail_issued, require_operator
from core.database import TenantScope, fetch, tenant_transaction
from core.settings import Settings
from tenants.context import TenantContext
from tenants.organizations import system_context, tenant_by_id


async def _context(scope: TenantScope) -> TenantContext:
    if isinstance(scope, TenantContext):
        return scope
    return system_context(await tenant_by_id(scope.tenant_id), "billing")


class ManualGateway:
    """Invoices paid by bank transfer; no outside service, no keys."""

    name = "manual"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def ensure_customer(self, ctx: TenantScope, profile: GatewayProfile) -> str:
        return f"manual:{ctx.tenant_id}"

    async def start_subscription(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, plan_price: GatewayPlanPrice
    ) -> GatewaySubscription:
        # Jalon keeps the period itself; there is no subscription elsewhere.
        return GatewaySubscription(
            gateway_customer_id=f"manual:{ctx.tenant_id}",
            gateway_subscription_id=None,
            status="active",
            current_period_start=None,
            current_period_end=None,
            trial_end=sub.trial_end,
        )

    async def change_subscription(
        self,
        ctx: TenantScope,
        sub: GatewaySubscriptionView,
        *,
        plan_price: GatewayPlanPrice,
        quantity: int,
        prorate: bool,
    ) -> None:
        return None

    async def cancel_subscription(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, *, at_period_end: bool
    ) -> None:
        return None

    async def resume_subscription(self, ctx: TenantScope, sub: GatewaySubscriptionView) -> None:
        # Jalon's row is the only record: the change service has already resumed it.
        return None

    async def checkout_url(
        self,
        ctx: TenantScope,
        sub: GatewaySubscriptionView,
        plan_price: GatewayPlanPrice,
        success_url: str,
        cancel_url: str,
    ) -> str | None:
        return None

    async def portal_url(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, return_url: str
    ) -> str | None:
        return None

    async def issue_invoice(self, ctx: TenantScope, invoice: GatewayInvoice) -> None:
        """Issue the draft `invoice` (its number and due date, after the subscription's net
        terms) and mail it to the tenant's billing email and admins; an invoice already
        issued is left as it is, and mailed again to no one."""
        tenant_ctx = await _context(ctx)
        require_operator(tenant_ctx)  # a tenant's own people never issue invoices
        async with tenant_transaction(tenant_ctx):
            terms = await fetch(
                "SELECT net_terms_days FROM subscription WHERE tenant_id = $1",
                tenant_ctx.tenant_id,
            )
            # locked: two jobs issuing the same draft at once mail it once
            status = await fetch(
                "SELECT status FROM invoice WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                tenant_ctx.tenant_id,
                invoice.id,
            )
            issued = await issue_draft(
                tenant_ctx,
                invoice.id,
                at=datetime.now(UTC),
                net_terms_days=terms[0]["net_terms_days"] if terms else 30,
            )
            if status and status[0]["status"] == "draft":
                await mail_issued(tenant_ctx, issued)
