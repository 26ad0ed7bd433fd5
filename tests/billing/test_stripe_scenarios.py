"""Billing through Stripe, end to end: Jalon's gateway calls Stripe through the real SDK (the
local Stripe-compatible server checks every parameter), Stripe's events come back signed to
the webhook endpoint, and the tenant's subscription follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from billing.catalogue import plan_price
from billing.changes import ChangeRequest, apply_change
from billing.gateways.stripe import StripeGateway
from billing.subscriptions import Subscription, current_subscription, subscribe
from core.database import fetch
from core.jobs import InProcessQueue
from core.settings import Settings
from tests.billing.conftest import billing_details, deliver, subscribe_on_stripe
from tests.billing.plans import per_seat_plan
from tests.billing.stripe_server import StripeServer
from tests.conftest import TenantFixture
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")


async def _deliver_all(
    client: httpx.AsyncClient, server: StripeServer, queue: InProcessQueue
) -> list[str]:
    """Post every event Stripe recorded since last time, then let the jobs run."""
    events = server.take_events()
    for event in events:
        await deliver(client, event)
    await queue.drain()
    return [event["type"] for event in events]


async def _now(tenant: TenantFixture) -> Subscription:
    sub = await current_subscription(tenant.owner_ctx)
    assert sub is not None
    return sub


async def _statuses(tenant_id: UUID) -> list[str]:
    async with as_tenant(tenant_id):
        rows = await fetch(
            "SELECT action FROM audit_event WHERE tenant_id = $1"
            " AND action LIKE 'billing.subscription.%' ORDER BY occurred_at",
            tenant_id,
        )
    return [row["action"].rsplit(".", 1)[1] for row in rows]


def _last(server: StripeServer, method: str, path: str) -> dict[str, Any]:
    calls = server.requests_to(method, path)
    assert calls, f"no {method} {path}"
    return calls[-1]


async def test_trial_to_paid_by_checkout(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    plan = await per_seat_plan(500, trial_days=14)
    ctx = tenant_a.owner_ctx
    sub = await subscribe(
        ctx,
        plan.code,
        at=datetime.now(UTC),
        quantity=12,
        collection_method="automatic",
        gateway="stripe",
    )
    assert sub.status == "trialing"
    customer = await stripe_gateway.ensure_customer(ctx, await billing_details(tenant_a))
    price = await plan_price(plan.id, "EUR")
    assert price is not None
    url = await stripe_gateway.checkout_url(
        ctx, sub, price, "https://jalon.test/ok", "https://jalon.test/back"
    )
    assert url is not None
    assert url.startswith("https://checkout.stripe.test/")
    asked = _last(stripe_server, "POST", "/v1/checkout/sessions")
    assert asked["mode"] == "subscription"
    assert asked["customer"] == customer
    assert asked["client_reference_id"] == str(tenant_a.id)
    assert asked["line_items"][0]["quantity"] == "12"
    assert await _deliver_all(webhook_client, stripe_server, in_process) == []

    subscription = stripe_server.complete_checkout(url.rsplit("/", 1)[1])
    kinds = await _deliver_all(webhook_client, stripe_server, in_process)
    assert "checkout.session.completed" in kinds
    now = await _now(tenant_a)
    assert now.status == "active"
    assert now.gateway == "stripe"
    assert now.gateway_subscription_id == subscription["id"]
    assert now.gateway_customer_id == customer
    assert now.quantity == 12
    assert await _statuses(tenant_a.id) == ["trialing", "active"]
    assert await current_subscription(tenant_b.owner_ctx) is None


async def test_upgrade_and_downgrade_tell_stripe_whether_to_prorate(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    ctx = tenant_a.owner_ctx
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway)
    await _deliver_all(webhook_client, stripe_server, in_process)
    bigger, smaller = await per_seat_plan(900, trial_days=0), await per_seat_plan(300, trial_days=0)
    bigger_price, smaller_price = (
        await plan_price(bigger.id, "EUR"),
        await plan_price(smaller.id, "EUR"),
    )
    assert bigger_price is not None
    assert smaller_price is not None

    await stripe_gateway.change_subscription(
        ctx, await _now(tenant_a), plan_price=bigger_price, quantity=10, prorate=True
    )
    upgrade = _last(stripe_server, "POST", f"/v1/subscriptions/{stripe_id}")
    assert upgrade["proration_behavior"] == "create_prorations"
    assert upgrade["items"][0]["price"] == await stripe_gateway.price_id(ctx, bigger_price)
    await _deliver_all(webhook_client, stripe_server, in_process)
    assert (await _now(tenant_a)).plan.id == bigger.id

    await stripe_gateway.change_subscription(
        ctx, await _now(tenant_a), plan_price=smaller_price, quantity=10, prorate=False
    )
    downgrade = _last(stripe_server, "POST", f"/v1/subscriptions/{stripe_id}")
    assert downgrade["proration_behavior"] == "none"
    await _deliver_all(webhook_client, stripe_server, in_process)
    now = await _now(tenant_a)
    assert now.plan.id == smaller.id
    assert now.unit_amount == 300
    assert now.status == "active"


async def test_seats_added_mid_period_are_prorated_on_stripe_and_counted_in_jalon(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway, seats=10)
    await _deliver_all(webhook_client, stripe_server, in_process)
    price = await plan_price(sub.plan.id, "EUR")
    assert price is not None
    period = (await _now(tenant_a)).current_period_end
    await stripe_gateway.change_subscription(
        tenant_a.owner_ctx, await _now(tenant_a), plan_price=price, quantity=15, prorate=True
    )
    change = _last(stripe_server, "POST", f"/v1/subscriptions/{stripe_id}")
    assert change["items"][0]["quantity"] == "15"
    assert change["proration_behavior"] == "create_prorations"
    await _deliver_all(webhook_client, stripe_server, in_process)
    now = await _now(tenant_a)
    assert now.quantity == 15
    assert now.current_period_end == period


async def test_card_failure_then_suspension_payment_and_reactivation(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway)
    await _deliver_all(webhook_client, stripe_server, in_process)
    customer = (await _now(tenant_a)).gateway_customer_id
    assert customer is not None

    stripe_server.fail_payments(customer)
    stripe_server.renew(stripe_id)
    kinds = await _deliver_all(webhook_client, stripe_server, in_process)
    assert "invoice.payment_failed" in kinds
    now = await _now(tenant_a)
    assert now.status == "past_due"
    assert now.past_due_since is not None

    stripe_server.give_up(stripe_id)
    await _deliver_all(webhook_client, stripe_server, in_process)
    assert (await _now(tenant_a)).status == "suspended"

    stripe_server.pay_invoice(stripe_server.state.objects[stripe_id]["latest_invoice"])
    kinds = await _deliver_all(webhook_client, stripe_server, in_process)
    assert "invoice.paid" in kinds
    assert (await _now(tenant_a)).status == "active"
    assert await _statuses(tenant_a.id) == ["active", "past_due", "suspended", "active"]


async def test_cancel_at_period_end_then_at_once(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway)
    await _deliver_all(webhook_client, stripe_server, in_process)
    ctx = tenant_a.owner_ctx
    await stripe_gateway.cancel_subscription(ctx, await _now(tenant_a), at_period_end=True)
    assert _last(stripe_server, "POST", f"/v1/subscriptions/{stripe_id}") == {
        "cancel_at_period_end": "true"
    }
    await _deliver_all(webhook_client, stripe_server, in_process)
    now = await _now(tenant_a)
    assert now.cancel_at_period_end
    assert now.status == "active"

    await stripe_gateway.cancel_subscription(ctx, now, at_period_end=False)
    kinds = await _deliver_all(webhook_client, stripe_server, in_process)
    assert kinds == ["customer.subscription.deleted"]
    assert (await _now(tenant_a)).status == "canceled"


async def test_a_change_in_the_console_reaches_stripe_and_stays_after_its_webhooks(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    stripe_settings: Settings,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway, seats=10)
    await _deliver_all(webhook_client, stripe_server, in_process)
    ctx = tenant_a.owner_ctx
    # a day into the period Stripe reports (its clock runs ahead of ours)
    at = (await _now(tenant_a)).current_period_start + timedelta(days=1)
    changed = await apply_change(ctx, ChangeRequest(quantity=14), at=at, settings=stripe_settings)
    assert changed.quantity == 14
    asked = _last(stripe_server, "POST", f"/v1/subscriptions/{stripe_id}")
    assert asked["items"][0]["quantity"] == "14"
    assert asked["proration_behavior"] == "create_prorations"
    assert stripe_server.state.objects[stripe_id]["items"]["data"][0]["quantity"] == 14
    await _deliver_all(webhook_client, stripe_server, in_process)
    assert (await _now(tenant_a)).quantity == 14


async def test_keeping_the_subscription_withdraws_the_cancellation_on_stripe_too(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    stripe_settings: Settings,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway)
    await _deliver_all(webhook_client, stripe_server, in_process)
    ctx = tenant_a.owner_ctx
    await apply_change(
        ctx,
        ChangeRequest(cancel_at_period_end=True),
        at=datetime.now(UTC),
        settings=stripe_settings,
    )
    assert stripe_server.state.objects[stripe_id]["cancel_at_period_end"] is True
    cancelling = stripe_server.take_events()
    for event in cancelling:
        await deliver(webhook_client, event)
    await in_process.drain()
    assert (await _now(tenant_a)).cancel_at_period_end

    kept = await apply_change(
        ctx,
        ChangeRequest(cancel_at_period_end=False),
        at=datetime.now(UTC),
        settings=stripe_settings,
    )
    assert not kept.cancel_at_period_end
    assert _last(stripe_server, "POST", f"/v1/subscriptions/{stripe_id}") == {
        "cancel_at_period_end": "false"
    }
    assert stripe_server.state.objects[stripe_id]["cancel_at_period_end"] is False
    # Stripe's next webhooks re-read the subscription: it renews; and the cancellation's
    # own event, delivered late, re-reads it too and changes nothing
    await _deliver_all(webhook_client, stripe_server, in_process)
    stripe_server.renew(stripe_id)
    await _deliver_all(webhook_client, stripe_server, in_process)
    for event in cancelling:
        await deliver(webhook_client, {**event, "id": event["id"] + "_late"})
    await in_process.drain()
    now = await _now(tenant_a)
    assert not now.cancel_at_period_end
    assert now.status == "active"


async def test_the_customer_is_made_once_with_its_vat_number_and_the_portal_opens(
    stripe_server: StripeServer, stripe_gateway: StripeGateway, tenant_a: TenantFixture
) -> None:
    ctx = tenant_a.owner_ctx
    profile = await billing_details(tenant_a)
    first = await stripe_gateway.ensure_customer(ctx, profile)
    again = await stripe_gateway.ensure_customer(ctx, profile)
    assert again == first
    customer = stripe_server.state.objects[first]
    assert customer["metadata"] == {"jalon_tenant_id": str(tenant_a.id)}
    assert customer["address"]["country"] == "FR"
    tax_ids = [
        (obj["type"], obj["value"])
        for obj in stripe_server.state.objects.values()
        if obj.get("object") == "tax_id" and obj.get("customer") == first
    ]
    assert tax_ids == [("eu_vat", "FR40303265045")]
    sub, _ = await subscribe_on_stripe(tenant_a, stripe_gateway)
    url = await stripe_gateway.portal_url(ctx, sub, "https://jalon.test/o/x/billing")
    assert url is not None
    assert url.startswith("https://billing.stripe.test/")
    assert _last(stripe_server, "POST", "/v1/billing_portal/sessions") == {
        "customer": first,
        "return_url": "https://jalon.test/o/x/billing",
    }


async def test_an_invoiced_subscription_gets_its_net_terms_on_stripe(
    stripe_server: StripeServer, stripe_gateway: StripeGateway, tenant_a: TenantFixture
) -> None:
    plan = await per_seat_plan(500, trial_days=0)
    ctx = tenant_a.owner_ctx
    sub = await subscribe(
        ctx,
        plan.code,
        at=datetime.now(UTC),
        quantity=3,
        trial=False,
        collection_method="send_invoice",
        net_terms_days=45,
        gateway="stripe",
    )
    await stripe_gateway.ensure_customer(ctx, await billing_details(tenant_a))
    price = await plan_price(plan.id, "EUR")
    assert price is not None
    started = await stripe_gateway.start_subscription(ctx, sub, price)
    asked = _last(stripe_server, "POST", "/v1/subscriptions")
    assert asked["collection_method"] == "send_invoice"
    assert asked["days_until_due"] == "45"
    assert asked["metadata"]["jalon_tenant_id"] == str(tenant_a.id)
    assert started.status == "active"
    invoice = stripe_server.state.objects[
        stripe_server.state.objects[str(started.gateway_subscription_id)]["latest_invoice"]
    ]
    assert invoice["status"] == "open"
    stripe_server.take_events()


async def test_checkout_before_any_billing_details_makes_a_customer_jalon_can_map_back(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan(500, trial_days=14)
    ctx = tenant_a.owner_ctx
    sub = await subscribe(
        ctx, plan.code, at=datetime.now(UTC), quantity=4, collection_method="automatic"
    )
    price = await plan_price(plan.id, "EUR")
    assert price is not None
    url = await stripe_gateway.checkout_url(
        ctx, sub, price, "https://x.test/ok", "https://x.test/no"
    )
    assert url is not None
    customer = stripe_server.state.objects[
        _last(stripe_server, "POST", "/v1/checkout/sessions")["customer"]
    ]
    assert customer["name"] == ctx.tenant.name
    assert customer["address"]["country"] == "FR"
    assert await stripe_gateway.customer_id(ctx) == customer["id"]
    stripe_server.complete_checkout(url.rsplit("/", 1)[1])
    await _deliver_all(webhook_client, stripe_server, in_process)
    now = await _now(tenant_a)
    assert now.gateway == "stripe"
    assert now.status == "active"


async def _invoices(tenant_id: UUID) -> list[dict[str, Any]]:
    async with as_tenant(tenant_id):
        return await fetch(
            """SELECT i.number, i.status, i.subtotal, i.tax_total, i.total, i.gateway,
                   i.gateway_invoice_id,
                   (SELECT count(*) FROM payment p
                    WHERE p.tenant_id = $1 AND p.invoice_id = i.id) AS payments
               FROM invoice i WHERE i.tenant_id = $1 ORDER BY i.created_at""",
            tenant_id,
        )


async def test_stripe_invoices_are_mirrored_numbered_and_paid_once_with_the_same_vat(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway, seats=10)
    asked = _last(stripe_server, "POST", "/v1/subscriptions")
    [rate] = asked["default_tax_rates"]
    assert stripe_server.state.objects[rate]["percentage"] == 20.0
    events = stripe_server.take_events()
    for event in [*reversed(events), *events]:
        await deliver(webhook_client, event)
    await in_process.drain()
    [mirrored] = await _invoices(tenant_a.id)
    stripe_invoice = stripe_server.state.objects[
        stripe_server.state.objects[stripe_id]["latest_invoice"]
    ]
    assert mirrored["gateway"] == "stripe"
    assert mirrored["gateway_invoice_id"] == stripe_invoice["id"]
    assert mirrored["number"].startswith("JALON-")
    assert (mirrored["subtotal"], mirrored["tax_total"], mirrored["total"]) == (5000, 1000, 6000)
    assert mirrored["total"] == stripe_invoice["total"]
    assert mirrored["status"] == "paid"
    assert mirrored["payments"] == 1
    assert await _invoices(tenant_b.id) == []
