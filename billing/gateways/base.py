"""The payment gateway interface: what billing asks of Stripe or of the manual (bank
transfer) gateway, chosen per tenant by `subscription.gateway`.

A gateway talks to the outside world: it is called outside any database transaction (or
after commit, from a job), never while one is open. Its arguments are read through small
read-only protocols named after the billing schema's columns, so the billing services pass
their own frozen dataclasses (`billing.subscriptions.Subscription`, a plan price, the
billing profile, an invoice) as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from core.database import TenantScope


class GatewayProfile(Protocol):
    """The billing profile as a gateway reads it (the customer's identity and tax ids)."""

    @property
    def legal_name(self) -> str: ...
    @property
    def address_line1(self) -> str: ...
    @property
    def address_line2(self) -> str: ...
    @property
    def postal_code(self) -> str: ...
    @property
    def city(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def billing_email(self) -> str: ...
    @property
    def vat_number(self) -> str: ...
    @property
    def buyer_kind(self) -> str: ...


class GatewayPlanPrice(Protocol):
    """One price of a plan (`plan_price`): minor units of `currency`, for `category`."""

    @property
    def plan_id(self) -> UUID: ...
    @property
    def currency(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def unit_amount(self) -> int: ...


class GatewaySubscriptionView(Protocol):
    """The subscription as a gateway reads it (`subscription` columns)."""

    @property
    def tenant_id(self) -> UUID: ...
    @property
    def id(self) -> UUID: ...
    @property
    def quantity(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def collection_method(self) -> str: ...
    @property
    def net_terms_days(self) -> int: ...
    @property
    def trial_end(self) -> datetime | None: ...
    @property
    def po_number(self) -> str: ...
    @property
    def gateway_customer_id(self) -> str | None: ...
    @property
    def gateway_subscription_id(self) -> str | None: ...


class GatewayInvoice(Protocol):
    """An invoice of Jalon's own records, as a gateway reads it."""

    @property
    def tenant_id(self) -> UUID: ...
    @property
    def id(self) -> UUID: ...
    @property
    def gateway_invoice_id(self) -> str | None: ...


@dataclass(frozen=True)
class GatewaySubscription:
    """What the gateway made of a subscription: its ids and its current period (UTC)."""

    gateway_customer_id: str
    gateway_subscription_id: str | None
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_end: datetime | None


class GatewayError(Exception):
    """The gateway refused or failed a call (a declined card, an unreachable API): the
    message is for the log; callers show their own translated message."""


class GatewayObjectMissing(GatewayError):
    """The gateway has no such object (deleted, or never made by this account)."""


@runtime_checkable
class PaymentGateway(Protocol):
    """A way of getting paid. `name` is the value of `subscription.gateway`."""

    name: str

    async def ensure_customer(self, ctx: TenantScope, profile: GatewayProfile) -> str:
        """The gateway's customer id for the tenant of `ctx`, created (or updated from
        `profile`, tax ids included) as needed; idempotent."""
        ...

    async def start_subscription(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, plan_price: GatewayPlanPrice
    ) -> GatewaySubscription:
        """Start `sub` on the gateway at `plan_price` for `sub.quantity` seats (or packs)."""
        ...

    async def change_subscription(
        self,
        ctx: TenantScope,
        sub: GatewaySubscriptionView,
        *,
        plan_price: GatewayPlanPrice,
        quantity: int,
        prorate: bool,
    ) -> None:
        """Move `sub` to `plan_price` and `quantity`, prorated or not from now."""
        ...

    async def cancel_subscription(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, *, at_period_end: bool
    ) -> None:
        """Cancel `sub` now, or at the end of its current period."""
        ...

    async def resume_subscription(self, ctx: TenantScope, sub: GatewaySubscriptionView) -> None:
        """Withdraw a cancellation at the end of the period (`cancel_subscription` with
        `at_period_end`): `sub` renews again. Nothing to do when it was not cancelling."""
        ...

    async def checkout_url(
        self,
        ctx: TenantScope,
        sub: GatewaySubscriptionView,
        plan_price: GatewayPlanPrice,
        success_url: str,
        cancel_url: str,
    ) -> str | None:
        """Where to send the customer to pay by card; None when the gateway has no such page."""
        ...

    async def portal_url(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, return_url: str
    ) -> str | None:
        """The customer's self-service page on the gateway; None when there is none."""
        ...

    async def issue_invoice(self, ctx: TenantScope, invoice: GatewayInvoice) -> None:
        """Issue `invoice` (manual: number, PDF and mail; Stripe: finalize its own invoice,
        which Jalon's record mirrors)."""
        ...
