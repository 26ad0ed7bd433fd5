"""The Stripe gateway, through Stripe's official SDK (`stripe.StripeClient`, asynchronous over
its httpx client).

Jalon's plan prices become Stripe prices found by a lookup key (a Stripe price cannot change:
a new amount is a new price), each under one product per plan. The customer carries the
tenant's id in its metadata and the VAT number as a tax id; `gateway_customer` maps it back
to the tenant for webhooks (`billing.inbox`). Every call here is an HTTP call: the callers
make it outside any database transaction; the short reads and writes of Jalon's own tables
done here open and close their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import stripe

from billing.gateways.base import (
    GatewayError,
    GatewayInvoice,
    GatewayObjectMissing,
    GatewayPlanPrice,
    GatewayProfile,
    GatewaySubscription,
    GatewaySubscriptionView,
)
from billing.profiles import ProfileFields, tax_treatment
from core.database import TenantScope, execute, fetch, tenant_transaction
from core.settings import Settings

if TYPE_CHECKING:
    from stripe.params import (
        CustomerCreateParams,
        CustomerUpdateParams,
        InvoiceItemCreateParams,
        PriceCreateParams,
        SubscriptionCreateParams,
        SubscriptionUpdateParams,
    )
    from stripe.params.checkout import SessionCreateParams as CheckoutSessionCreateParams

#: Stripe's statuses of a subscription, as Jalon's (`incomplete` changes nothing: the first
#: payment is still under way).
STATUSES = {
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    "unpaid": "suspended",
    "paused": "suspended",
    "canceled": "canceled",
    "incomplete_expired": "canceled",
}

#: VAT number prefixes Stripe knows a tax id type for (Greece writes EL).
_VAT_TYPES = {"GB": "gb_vat", "CH": "ch_vat", "NO": "no_vat"}
_EU = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "EL",
        "ES",
        "FI",
        "FR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
        "XI",
    ]
)


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def moment_of(value: Any) -> datetime | None:
    """A Stripe timestamp (whole seconds since the epoch) as a UTC datetime; None for
    anything else (absent, null, or not a number: a payload is never trusted blindly)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, UTC)


def tax_id_type(vat_number: str) -> str | None:
    """Stripe's tax id type for a VAT number, by its country prefix; None when Stripe has none
    for it (the number then stays on Jalon's invoices only)."""
    prefix = vat_number[:2].upper()
    if prefix in _EU:
        return "eu_vat"
    return _VAT_TYPES.get(prefix)


class _HTTPXClient(stripe.HTTPXClient):
    """Stripe's asynchronous httpx client, handing the encoded form to httpx as `content`:
    the SDK passes raw bytes as `data`, which httpx deprecates (a warning on every call)."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if data:
            kwargs["content"] = data
        return [args, kwargs]


@dataclass(frozen=True)
class StripeSubscriptionState:
    """A Stripe subscription as Jalon applies it: what `customer.subscription.*` webhooks and
    a fresh read agree on."""

    id: str
    customer_id: str
    stripe_status: str
    quantity: int
    currency: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    #: Jalon's plan and price category, from the price's metadata (None: not Jalon's price)
    plan_id: str | None
    price_category: str | None

    @property
    def status(self) -> str | None:
        """Jalon's status for it; None when it is not decided yet (`incomplete`)."""
        return STATUSES.get(self.stripe_status)


def subscription_state(subscription: Any) -> StripeSubscriptionState:
    """The state of a Stripe subscription object (from the SDK or a webhook's payload)."""
    if isinstance(subscription, stripe.StripeObject):
        subscription = subscription.to_dict()
    items = subscription["items"]["data"]
    item = items[0] if items else None
    price = item["price"] if item else None
    metadata = (price.get("metadata") if price else None) or {}
    customer = subscription["customer"]
    return StripeSubscriptionState(
        id=subscription["id"],
        customer_id=customer if isinstance(customer, str) else customer["id"],
        stripe_status=subscription["status"],
        quantity=int(item["quantity"] or 0) if item else 0,
        currency=str(subscription.get("currency") or "").upper(),
        current_period_start=moment_of(item.get("current_period_start")) if item else None,
        current_period_end=moment_of(item.get("current_period_end")) if item else None,
        trial_end=moment_of(subscription.get("trial_end")),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        plan_id=metadata.get("jalon_plan_id"),
        price_category=metadata.get("jalon_category"),
    )


@dataclass(frozen=True)
class _Profile:
    """Billing details read back from the database (`GatewayProfile`)."""

    legal_name: str
    country: str
    address_line1: str = ""
    address_line2: str = ""
    postal_code: str = ""
    city: str = ""
    billing_email: str = ""
    vat_number: str = ""
    buyer_kind: str = "business"


@dataclass(frozen=True)
class _PlanFacts:
    code: str
    kind: str
    interval: str
    name: str


class StripeGateway:
    """`PaymentGateway` over Stripe's API."""

    name = "stripe"

    def __init__(self, client: stripe.StripeClient, *, seller_country: str = "FR") -> None:
        self.client = client
        self.seller_country = seller_country.upper()

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        """A gateway with the configured key and API base (RuntimeError without a key)."""
        if not settings.stripe_secret_key:
            raise RuntimeError("the Stripe gateway needs JALON_STRIPE_SECRET_KEY")
        base = settings.stripe_api_base
        client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": base, "files": base, "connect": base},
            http_client=_HTTPXClient(),
            max_network_retries=2,
        )
        return cls(client, seller_country=settings.billing_seller_country)

    # -- customers ------------------------------------------------------------------------

    async def customer_id(self, ctx: TenantScope) -> str | None:
        """The Stripe customer of the tenant of `ctx`, if Jalon made one."""
        async with tenant_transaction(ctx):
            rows = await fetch(
                "SELECT customer_id FROM gateway_customer"
                " WHERE gateway = 'stripe' AND organization_id = $1",
                ctx.tenant_id,
            )
        return str(rows[0]["customer_id"]) if rows else None

    async def ensure_customer(self, ctx: TenantScope, profile: GatewayProfile) -> str:
        """The tenant's Stripe customer, created once (idempotency key of the tenant) or
        brought up to date with `profile`; its VAT number added as a tax id."""
        fields = {
            "name": profile.legal_name or None,
            "email": profile.billing_email or None,
            "address": {
                key: value
                for key, value in (
                    ("line1", profile.address_line1),
                    ("line2", profile.address_line2),
                    ("postal_code", profile.postal_code),
                    ("city", profile.city),
                    ("country", profile.country),
                )
                if value
            }
            or None,
            "metadata": {"jalon_tenant_id": str(ctx.tenant_id)},
        }
        fields = {key: value for key, value in fields.items() if value is not None}
        existing = await self.customer_id(ctx)
        try:
            if existing is None:
                params = cast("CustomerCreateParams", dict(fields))
                vat_type = tax_id_type(profile.vat_number) if profile.vat_number else None
                if vat_type:
                    params["tax_id_data"] = [
                        {"type": cast(Any, vat_type), "value": profile.vat_number}
                    ]
                customer = await self.client.v1.customers.create_async(
                    params, {"idempotency_key": f"jalon-customer-{ctx.tenant_id}"}
                )
                await self._remember_customer(ctx, customer.id)
                return customer.id
            await self.client.v1.customers.update_async(
                existing, cast("CustomerUpdateParams", fields)
            )
            await self._sync_tax_id(existing, profile.vat_number)
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the customer: {error}") from error
        return existing

    async def _remember_customer(self, ctx: TenantScope, customer_id: str) -> None:
        async with tenant_transaction(ctx):
            await execute(
                """
                INSERT INTO gateway_customer (gateway, customer_id, organization_id)
                VALUES ('stripe', $1, $2)
                ON CONFLICT DO NOTHING
                """,
                customer_id,
                ctx.tenant_id,
            )

    async def _sync_tax_id(self, customer_id: str, vat_number: str) -> None:
        vat_type = tax_id_type(vat_number) if vat_number else None
        if vat_type is None:
            return
        tax_ids = await self.client.v1.customers.tax_ids.list_async(customer_id)
        if any(tax_id.value == vat_number for tax_id in tax_ids.data):
            return
        await self.client.v1.customers.tax_ids.create_async(
            customer_id, {"type": cast(Any, vat_type), "value": vat_number}
        )

    async def _customer_of(self, ctx: TenantScope, sub: GatewaySubscriptionView) -> str:
        """The tenant's customer; made now from its stored billing details (or, before it
        gave any, its organization's name and country) when it has none yet, so that every
        Stripe object of a tenant belongs to a customer `gateway_customer` knows."""
        customer = sub.gateway_customer_id or await self.customer_id(ctx)
        if customer is None:
            customer = await self.ensure_customer(ctx, await self._stored_profile(ctx))
        return customer

    async def tax_rate_ids(self, ctx: TenantScope) -> list[str]:
        """The Stripe tax rate of the VAT Jalon's own invoice charges this tenant (the
        seller's standard rate, or none for a reverse charge or a buyer outside the EU), so
        that what Stripe collects is what Jalon's mirrored invoice says; made once per rate."""
        stored = await self._billing_profile(ctx)
        rate = tax_treatment(stored, self.seller_country).rate_basis_points
        if rate == 0:
            return []
        key = str(rate)
        try:
            found = await self.client.v1.tax_rates.list_async({"active": True, "limit": 100})
            for tax_rate in found.data:
                known: dict[str, Any] = tax_rate.to_dict()
                ours = (known.get("metadata") or {}).get("jalon_vat_basis_points") == key
                if ours and not known.get("inclusive"):
                    return [tax_rate.id]
            created = await self.client.v1.tax_rates.create_async(
                {
                    "display_name": "VAT",
                    "percentage": rate / 100,
                    "inclusive": False,
                    "tax_type": "vat",
                    "country": self.seller_country,
                    "metadata": {"jalon_vat_basis_points": key},
                },
                {"idempotency_key": f"jalon-vat-{self.seller_country}-{key}"},
            )
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the tax rate: {error}") from error
        return [created.id]

    async def _billing_profile(self, ctx: TenantScope) -> ProfileFields | None:
        async with tenant_transaction(ctx):
            rows = await fetch("SELECT * FROM billing_profile WHERE tenant_id = $1", ctx.tenant_id)
        if not rows:
            return None
        return ProfileFields(**{key: rows[0][key] for key in ProfileFields.__dataclass_fields__})

    async def _stored_profile(self, ctx: TenantScope) -> GatewayProfile:
        async with tenant_transaction(ctx):
            rows = await fetch("SELECT * FROM billing_profile WHERE tenant_id = $1", ctx.tenant_id)
            if rows:
                row = rows[0]
                return _Profile(**{key: row[key] for key in _Profile.__dataclass_fields__})
            org = await fetch("SELECT name, country FROM organization WHERE id = $1", ctx.tenant_id)
        return _Profile(legal_name=org[0]["name"], country=org[0]["country"] or "")

    # -- prices ---------------------------------------------------------------------------

    async def _plan(self, ctx: TenantScope, plan_price: GatewayPlanPrice) -> _PlanFacts:
        # The catalogue is global; read it with the tenant's transaction (no tenant row read).
        async with tenant_transaction(ctx):
            rows = await fetch(
                "SELECT code, kind, interval, names FROM plan WHERE id = $1", plan_price.plan_id
            )
        if not rows:
            raise GatewayError(f"unknown plan {plan_price.plan_id}")
        row = rows[0]
        names = row["names"]
        if isinstance(names, str):
            import json

            names = json.loads(names)
        name = str(names.get("en") or names.get("fr") or row["code"])
        return _PlanFacts(code=row["code"], kind=row["kind"], interval=row["interval"], name=name)

    async def price_id(self, ctx: TenantScope, plan_price: GatewayPlanPrice) -> str:
        """The Stripe price of `plan_price`, made (with its plan's product) the first time."""
        plan = await self._plan(ctx, plan_price)
        lookup_key = (
            f"jalon:{plan_price.plan_id}:{plan_price.currency}:{plan_price.category}"
            f":{plan_price.unit_amount}"
        )
        try:
            found = await self.client.v1.prices.list_async(
                {"lookup_keys": [lookup_key], "limit": 1}
            )
            if found.data:
                return found.data[0].id
            product_id = f"jalon_plan_{plan.code}"
            try:
                await self.client.v1.products.retrieve_async(product_id)
            except stripe.InvalidRequestError:
                await self.client.v1.products.create_async(
                    {
                        "id": product_id,
                        "name": plan.name,
                        "metadata": {"jalon_plan_id": str(plan_price.plan_id)},
                    },
                    {"idempotency_key": f"jalon-product-{plan_price.plan_id}"},
                )
            params: PriceCreateParams = {
                "currency": plan_price.currency.lower(),
                "unit_amount": plan_price.unit_amount,
                "product": product_id,
                "recurring": {"interval": cast(Any, plan.interval)},
                "lookup_key": lookup_key,
                "metadata": {
                    "jalon_plan_id": str(plan_price.plan_id),
                    "jalon_category": plan_price.category,
                },
            }
            price = await self.client.v1.prices.create_async(
                params, {"idempotency_key": f"jalon-price-{lookup_key}"}
            )
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the price: {error}") from error
        return price.id

    @staticmethod
    def _quantity(plan: _PlanFacts, quantity: int) -> int:
        # Per seat: one unit per seat. A seat pack or a licence is one unit of its price.
        return quantity if plan.kind == "per_seat" else 1

    # -- subscriptions --------------------------------------------------------------------

    async def start_subscription(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, plan_price: GatewayPlanPrice
    ) -> GatewaySubscription:
        """A Stripe subscription for `sub`: charged automatically, or invoiced with
        `net_terms_days` to pay; its trial kept."""
        customer = await self._customer_of(ctx, sub)
        plan = await self._plan(ctx, plan_price)
        price = await self.price_id(ctx, plan_price)
        params: SubscriptionCreateParams = {
            "customer": customer,
            "items": [{"price": price, "quantity": self._quantity(plan, sub.quantity)}],
            "metadata": {
                "jalon_tenant_id": str(ctx.tenant_id),
                "jalon_subscription_id": str(sub.id),
            },
        }
        if sub.collection_method == "send_invoice":
            params["collection_method"] = "send_invoice"
            params["days_until_due"] = sub.net_terms_days
        else:
            params["collection_method"] = "charge_automatically"
        if sub.trial_end is not None and sub.trial_end > datetime.now(UTC):
            params["trial_end"] = _timestamp(sub.trial_end)
        tax_rates = await self.tax_rate_ids(ctx)
        if tax_rates:
            params["default_tax_rates"] = tax_rates
        try:
            created = await self.client.v1.subscriptions.create_async(
                params, {"idempotency_key": f"jalon-subscription-{sub.id}"}
            )
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the subscription: {error}") from error
        state = subscription_state(created)
        return GatewaySubscription(
            gateway_customer_id=customer,
            gateway_subscription_id=state.id,
            status=state.status or "trialing",
            current_period_start=state.current_period_start,
            current_period_end=state.current_period_end,
            trial_end=state.trial_end,
        )

    async def fetch_subscription(self, subscription_id: str) -> StripeSubscriptionState:
        """Stripe's subscription as it is now (webhooks re-read it: order does not matter)."""
        try:
            found = await self.client.v1.subscriptions.retrieve_async(subscription_id)
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing":
                raise GatewayObjectMissing(f"Stripe has no {subscription_id}") from error
            raise GatewayError(f"Stripe could not read {subscription_id}: {error}") from error
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe could not read {subscription_id}: {error}") from error
        return subscription_state(found)

    def _linked(self, sub: GatewaySubscriptionView) -> str:
        if not sub.gateway_subscription_id:
            raise GatewayError("this subscription is not on Stripe yet")
        return sub.gateway_subscription_id

    async def change_subscription(
        self,
        ctx: TenantScope,
        sub: GatewaySubscriptionView,
        *,
        plan_price: GatewayPlanPrice,
        quantity: int,
        prorate: bool,
    ) -> None:
        """Swap the subscription's one item to `plan_price` and `quantity`; Stripe prorates
        (`create_prorations`) or not (`none`)."""
        subscription_id = self._linked(sub)
        plan = await self._plan(ctx, plan_price)
        price = await self.price_id(ctx, plan_price)
        try:
            current = await self.client.v1.subscriptions.retrieve_async(subscription_id)
            item_id = current["items"]["data"][0]["id"]
            params: SubscriptionUpdateParams = {
                "items": [
                    {"id": item_id, "price": price, "quantity": self._quantity(plan, quantity)}
                ],
                "proration_behavior": "create_prorations" if prorate else "none",
            }
            await self.client.v1.subscriptions.update_async(subscription_id, params)
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the change: {error}") from error

    async def cancel_subscription(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, *, at_period_end: bool
    ) -> None:
        """Cancel at the period's end (reversible until then), or at once."""
        subscription_id = self._linked(sub)
        try:
            if at_period_end:
                await self.client.v1.subscriptions.update_async(
                    subscription_id, {"cancel_at_period_end": True}
                )
            else:
                await self.client.v1.subscriptions.cancel_async(subscription_id)
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the cancellation: {error}") from error

    async def resume_subscription(self, ctx: TenantScope, sub: GatewaySubscriptionView) -> None:
        """Keep the subscription: `cancel_at_period_end` off again, so that Stripe renews it
        (and its next webhooks, which re-read it, no longer say it is ending)."""
        subscription_id = self._linked(sub)
        try:
            await self.client.v1.subscriptions.update_async(
                subscription_id, {"cancel_at_period_end": False}
            )
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused to keep the subscription: {error}") from error

    async def bill_overage(
        self,
        ctx: TenantScope,
        *,
        customer_id: str,
        subscription_id: str,
        currency: str,
        seats: int,
        unit_amount: int,
        period: tuple[datetime, datetime],
        description: str,
        idempotency_key: str,
    ) -> str:
        """An invoice item of `seats` overage seats at `unit_amount` (minor units of
        `currency`) on the customer's subscription, which Stripe puts on the subscription's
        next invoice, taxed as Jalon's invoices are; once per `idempotency_key` (a replay
        gets the item made the first time). The item's id."""
        start, end = period
        params: InvoiceItemCreateParams = {
            "customer": customer_id,
            "subscription": subscription_id,
            "currency": currency.lower(),
            "quantity": seats,
            "unit_amount_decimal": Decimal(unit_amount),
            "description": description,
            "period": {"start": _timestamp(start), "end": max(_timestamp(end), _timestamp(start))},
            "metadata": {
                "jalon_tenant_id": str(ctx.tenant_id),
                "jalon_overage_period_start": start.isoformat(),
            },
        }
        tax_rates = await self.tax_rate_ids(ctx)
        if tax_rates:
            params["tax_rates"] = tax_rates
        try:
            item = await self.client.v1.invoice_items.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the overage invoice item: {error}") from error
        return item.id

    # -- hosted pages ---------------------------------------------------------------------

    async def checkout_url(
        self,
        ctx: TenantScope,
        sub: GatewaySubscriptionView,
        plan_price: GatewayPlanPrice,
        success_url: str,
        cancel_url: str,
    ) -> str | None:
        """A Checkout session (mode subscription) for the tenant's customer at `plan_price`."""
        customer = await self._customer_of(ctx, sub)
        plan = await self._plan(ctx, plan_price)
        price = await self.price_id(ctx, plan_price)
        params: CheckoutSessionCreateParams = {
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": str(ctx.tenant_id),
            "line_items": [{"price": price, "quantity": self._quantity(plan, sub.quantity)}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "subscription_data": {
                "metadata": {
                    "jalon_tenant_id": str(ctx.tenant_id),
                    "jalon_subscription_id": str(sub.id),
                }
            },
        }
        tax_rates = await self.tax_rate_ids(ctx)
        if tax_rates:
            params["subscription_data"]["default_tax_rates"] = tax_rates
        try:
            session = await self.client.v1.checkout.sessions.create_async(params)
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the Checkout session: {error}") from error
        return session.url

    async def portal_url(
        self, ctx: TenantScope, sub: GatewaySubscriptionView, return_url: str
    ) -> str | None:
        """A customer-portal session (cards, invoices, cancellation) back to `return_url`."""
        customer = await self._customer_of(ctx, sub)
        try:
            session = await self.client.v1.billing_portal.sessions.create_async(
                {"customer": customer, "return_url": return_url}
            )
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the portal session: {error}") from error
        return session.url

    async def issue_invoice(self, ctx: TenantScope, invoice: GatewayInvoice) -> None:
        """Stripe issues the invoices of its subscriptions itself; a draft one is finalized
        now (Jalon's record mirrors it through the `invoice.finalized` webhook)."""
        if not invoice.gateway_invoice_id:
            raise GatewayError("this invoice is not on Stripe")
        try:
            found = await self.client.v1.invoices.retrieve_async(invoice.gateway_invoice_id)
            if found.status == "draft":
                await self.client.v1.invoices.finalize_invoice_async(
                    invoice.gateway_invoice_id, {"auto_advance": True}
                )
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused to finalize the invoice: {error}") from error
