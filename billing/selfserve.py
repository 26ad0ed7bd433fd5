"""Self-serve: an organization in its trial (or without a subscription) picks a plan and
seats, then pays by card on the gateway's checkout page, or asks to be invoiced (bank
transfer: the trial ends now, a first period starts and its invoice is issued).

The choice is written in one transaction: a refusal (a retired plan, a seat-pack plan, absurd
seats, an unknown currency) leaves nothing behind. The gateway is called after it commits.
Paying by card keeps the subscription on the manual gateway until Stripe reports the
checkout completed (`billing.inbox` then moves it to Stripe): a checkout left unfinished
leaves a trial that ends and is invoiced like any other.
"""

from __future__ import annotations

import logging
from datetime import datetime

from billing import catalogue, changes, subscriptions
from billing.catalogue import PlanKind
from billing.changes import ChangeRequest
from billing.subscriptions import Subscription, SubscriptionStatus
from core.database import tenant_transaction
from core.errors import Invalid
from core.i18n import N_
from core.settings import Settings
from tenants.context import TenantContext
from tenants.permissions import Permission

log = logging.getLogger(__name__)

NO_CARD = N_("Card payments are not set up on this server: choose to be invoiced.")
UNKNOWN_METHOD = N_("Choose how to pay: by card or by invoice.")
GATEWAY_DOWN = N_("The payment service did not answer. Nothing was charged; try again later.")
NO_PORTAL = N_("Your payments are made by bank transfer: there is no card portal.")
PAY_BY = ("card", "invoice")


async def choose_plan(
    ctx: TenantContext,
    request: ChangeRequest,
    *,
    pay_by: str,
    currency: str | None,
    at: datetime,
    settings: Settings,
    return_url: str,
    locale: str = "en",
) -> str | None:
    """Subscribe (or change the trial) to `request`'s plan and seats and have it paid
    `pay_by` "card" or "invoice". For a card, the gateway's checkout URL to send the person
    to (it comes back to `return_url?checkout=done|canceled`); for an invoice, None once the
    first invoice is issued. `Invalid` for a wrong choice, with nothing written."""
    ctx.require(Permission.BILLING_MANAGE)
    if pay_by not in PAY_BY:
        raise Invalid(UNKNOWN_METHOD, field="method")
    card = pay_by == "card"
    if card and not settings.stripe_secret_key:
        raise Invalid(NO_CARD, field="method")
    if request.plan_code is not None:
        plan = await subscriptions.known_plan(request.plan_code)
        if plan.kind == PlanKind.SEAT_PACK:
            # a seat pack's seats come with the pack an account manager adds, not from here
            raise Invalid(changes.PACKS_ARE_BOUGHT, field="plan")
    if request.quantity is not None:
        subscriptions.check_seats(request.quantity, low=1)
    async with tenant_transaction(ctx):
        sub = await subscriptions.read_in_transaction(ctx, lock=True)
        if sub is None or sub.status == SubscriptionStatus.CANCELED:
            if request.plan_code is None:
                raise Invalid(subscriptions.UNKNOWN_PLAN, field="plan")
            # On the manual gateway until paid: a card Checkout left unfinished leaves a
            # trial that ends (and is invoiced) like any other, never an endless one. Stripe's
            # checkout.session.completed moves the subscription to Stripe
            # (billing.inbox._apply_subscription).
            await subscriptions.subscribe(
                ctx,
                request.plan_code,
                at=at,
                quantity=request.quantity or 1,
                currency=currency or (sub.currency if sub else "EUR"),
            )
        elif sub.status != SubscriptionStatus.TRIALING:
            raise Invalid(subscriptions.NOT_IN_TRIAL, field="plan")
        elif request.plan_code not in (None, sub.plan.code) or request.quantity not in (
            None,
            sub.quantity,
        ):
            await changes.apply_in_transaction(ctx, request, at, locale)
        if not card:
            await subscriptions.start_paying(
                ctx, at=at, collection_method="send_invoice", gateway="manual"
            )
        chosen = await subscriptions.read_in_transaction(ctx)
    assert chosen is not None
    if card:
        return await _checkout_url(ctx, chosen, settings, return_url)
    from billing import invoices

    try:
        await invoices.bill_period(ctx, at=at, locale=locale)
    except Exception:
        # The subscription is active: the hourly renewal sweep issues the missing invoice.
        log.exception("first invoice of %s failed; the renewal sweep retries", ctx.tenant.slug)
    return None


async def _checkout_url(
    ctx: TenantContext, sub: Subscription, settings: Settings, return_url: str
) -> str:
    from billing.gateways import gateway_for
    from billing.gateways.base import GatewayError

    price = await catalogue.plan_price(sub.plan.id, sub.currency, sub.price_category)
    if price is None:
        raise Invalid(subscriptions.NO_PRICE, field="plan", currency=sub.currency)
    try:
        url = await gateway_for("stripe", settings).checkout_url(
            ctx, sub, price, f"{return_url}?checkout=done", f"{return_url}?checkout=canceled"
        )
    except GatewayError:
        log.exception("checkout for %s failed", ctx.tenant.slug)
        raise Invalid(GATEWAY_DOWN) from None
    if url is None:
        raise Invalid(NO_CARD, field="method")
    return url


async def portal_url(ctx: TenantContext, *, settings: Settings, return_url: str) -> str:
    """The gateway's own page for the tenant's cards and receipts; `Invalid` when its
    gateway has none (bank transfer) or it does not answer."""
    from billing.gateways import gateway_for
    from billing.gateways.base import GatewayError

    ctx.require(Permission.BILLING_MANAGE)
    sub = await subscriptions.current_subscription(ctx)
    if sub is None:
        raise Invalid(subscriptions.NO_SUBSCRIPTION)
    try:
        url = await gateway_for(sub.gateway, settings).portal_url(ctx, sub, return_url)
    except GatewayError:
        log.exception("portal for %s failed", ctx.tenant.slug)
        raise Invalid(GATEWAY_DOWN) from None
    if url is None:
        raise Invalid(NO_PORTAL)
    return url
