"""`POST /billing/stripe/webhook`: only events Stripe signed, recently, are stored; each is
stored once and applied once, and whatever the order of delivery the subscription ends as
Stripe has it."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import stripe

from billing.gateways.stripe import StripeGateway
from billing.inbox import (
    MAX_ATTEMPTS,
    dangerously_unprocessed_events,
    process_stripe_event,
    retry_gateway_events,
)
from billing.subscriptions import current_subscription
from core.database import execute, fetch
from core.jobs import InProcessQueue
from tests.billing.conftest import (
    WEBHOOK,
    WEBHOOK_SECRET,
    deliver,
    signed,
    subscribe_on_stripe,
)
from tests.billing.stripe_server import StripeServer
from tests.conftest import HeldQueue, TenantFixture
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")


async def _stored(*event_ids: str) -> list[dict[str, Any]]:
    async with as_tenant(UUID(int=0)):
        return await fetch(
            "SELECT event_id, processed_at, outcome, organization_id FROM gateway_event"
            " WHERE gateway = 'stripe' AND event_id = ANY($1::text[]) ORDER BY event_id",
            list(event_ids),
        )


def _event(server: StripeServer, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    event = server.event(kind, obj)
    server.take_events()
    return event


async def _post(client: httpx.AsyncClient, body: bytes, header: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["stripe-signature"] = header
    return await client.post(WEBHOOK, content=body, headers=headers)


async def test_a_signed_event_is_stored_once_and_acknowledged(
    webhook_client: httpx.AsyncClient, stripe_server: StripeServer, db: str
) -> None:
    event = _event(stripe_server, "customer.created", {"id": "cus_nobody", "customer": None})
    first = await deliver(webhook_client, event)
    again = await deliver(webhook_client, event)
    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    assert len(await _stored(event["id"])) == 1


@pytest.mark.parametrize("case", ["tampered", "wrong secret", "stale", "unsigned", "not json"])
async def test_a_tampered_or_stale_webhook_is_refused_and_nothing_is_stored(
    webhook_client: httpx.AsyncClient, stripe_server: StripeServer, case: str
) -> None:
    event = _event(stripe_server, "invoice.paid", {"id": "in_x", "customer": "cus_x"})
    body, header = signed(event)
    if case == "tampered":
        body = body.replace(b'"invoice.paid"', b'"invoice.voided"')
    elif case == "wrong secret":
        body, header = signed(event, secret="whsec_someone_else")
    elif case == "stale":
        body, header = signed(event, timestamp=int(time.time()) - 3600)
    elif case == "not json":
        body = b"not json"
        header = stripe.WebhookSignature.generate_signature_header("not json", WEBHOOK_SECRET)
    response = await _post(webhook_client, body, None if case == "unsigned" else header)
    assert response.status_code == 400
    assert await _stored(event["id"]) == []


async def test_an_event_about_an_unknown_customer_changes_nothing(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    in_process: InProcessQueue,
    stripe_gateway: StripeGateway,
) -> None:
    event = _event(
        stripe_server,
        "customer.subscription.updated",
        {"id": "sub_unknown", "customer": "cus_unknown", "status": "active"},
    )
    await deliver(webhook_client, event)
    await in_process.drain()
    [row] = await _stored(event["id"])
    assert row["processed_at"] is not None
    assert row["outcome"] == "ignored: unknown customer"
    assert row["organization_id"] is None


async def test_the_same_webhook_twice_and_out_of_order_ends_as_stripe_has_it(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway)
    customer = (await stripe_gateway.fetch_subscription(stripe_id)).customer_id
    stripe_server.fail_payments(customer)
    stripe_server.renew(stripe_id)  # past_due
    invoice = stripe_server.state.objects[stripe_id]["latest_invoice"]
    stripe_server.pay_invoice(invoice)  # active again
    events = stripe_server.take_events()
    # newest first, every one twice
    for event in [*reversed(events), *events]:
        await deliver(webhook_client, event)
    await in_process.drain()
    rows = await _stored(*[event["id"] for event in events])
    assert len(rows) == len(events)
    assert all(row["processed_at"] is not None for row in rows)
    assert {row["organization_id"] for row in rows} == {tenant_a.id}
    now = await current_subscription(tenant_a.owner_ctx)
    assert now is not None
    assert now.status == "active"
    assert now.gateway_subscription_id == stripe_id
    assert now.gateway_customer_id == customer
    assert await current_subscription(tenant_b.owner_ctx) is None
    # processing an event again (a retried job) changes nothing and says so
    again = await process_stripe_event(events[0]["id"])
    assert again.outcome == "already processed"


async def test_a_burst_of_a_thousand_deliveries_with_duplicates_converges(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway, seats=1)
    item = stripe_server.state.objects[stripe_id]["items"]["data"][0]["id"]
    for seats in range(2, 102):
        stripe_server.handle(
            "POST",
            f"/v1/subscriptions/{stripe_id}",
            f"items[0][id]={item}&items[0][quantity]={seats}&proration_behavior=none",
        )
    events = stripe_server.take_events()
    assert len(events) >= 100
    deliveries = (events * 10)[:1000]
    random.Random(11).shuffle(deliveries)
    answers: list[httpx.Response] = []
    for start in range(0, len(deliveries), 50):  # Stripe delivers concurrently too
        batch = deliveries[start : start + 50]
        answers += await asyncio.gather(*(deliver(webhook_client, event) for event in batch))
    await in_process.drain()
    assert sum(not answer.json()["duplicate"] for answer in answers) == len(
        {event["id"] for event in deliveries}
    )
    now = await current_subscription(tenant_a.owner_ctx)
    assert now is not None
    assert now.quantity == 101
    rows = await _stored(*{event["id"] for event in deliveries})
    assert all(row["processed_at"] is not None for row in rows)


def test_event_payloads_keep_their_stripe_shape(stripe_server: StripeServer) -> None:
    event = _event(stripe_server, "invoice.paid", {"id": "in_1", "customer": "cus_1"})
    assert event["object"] == "event"
    assert json.loads(signed(event)[0])["type"] == "invoice.paid"


async def test_an_event_whose_job_was_lost_is_processed_by_the_sweep(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    held: HeldQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway, seats=3)
    stripe_server.take_events()
    item = stripe_server.state.objects[stripe_id]["items"]["data"][0]["id"]
    stripe_server.handle(
        "POST", f"/v1/subscriptions/{stripe_id}", f"items[0][id]={item}&items[0][quantity]=7"
    )
    [event] = stripe_server.take_events()
    await deliver(webhook_client, event)
    held.held.clear()  # the worker died with the job
    await retry_gateway_events({})
    assert [args for _, args in held.held if event["id"] in args] == []  # not yet overdue
    async with as_tenant(tenant_a.id):
        await execute(
            "UPDATE gateway_event SET received_at = $2 WHERE gateway = 'stripe' AND event_id = $1",
            event["id"],
            datetime.now(UTC) - timedelta(hours=1),
        )
    assert await retry_gateway_events({}) >= 1
    await held.run()
    [row] = await _stored(event["id"])
    assert row["processed_at"] is not None
    now = await current_subscription(tenant_a.owner_ctx)
    assert now is not None
    assert now.quantity == 7


async def test_an_event_about_a_subscription_stripe_no_longer_has_is_closed_without_change(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway)
    stripe_server.take_events()
    customer = stripe_server.state.objects[stripe_id]["customer"]
    event = _event(
        stripe_server,
        "customer.subscription.updated",
        {"id": "sub_gone", "customer": customer, "status": "canceled"},
    )
    await deliver(webhook_client, event)
    await in_process.drain()
    [row] = await _stored(event["id"])
    assert row["outcome"] == "gone on Stripe"
    now = await current_subscription(tenant_a.owner_ctx)
    assert now is not None
    assert now.status == "active"


async def test_a_stripe_invoice_of_nothing_is_mirrored_as_paid(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    in_process: InProcessQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway)
    stripe_server.take_events()
    customer = stripe_server.state.objects[stripe_id]["customer"]
    event = _event(
        stripe_server,
        "invoice.finalized",
        {
            "id": "in_nothing",
            "customer": customer,
            "subscription": stripe_id,
            "status": "open",
            "currency": "eur",
            "subtotal": 0,
            "total": 0,
            "amount_paid": 0,
            "created": int(time.time()),
            "lines": {"data": [{"amount": 0, "quantity": 1, "description": "Trial"}]},
        },
    )
    await deliver(webhook_client, event)
    await in_process.drain()
    async with as_tenant(tenant_a.id):
        [row] = await fetch(
            "SELECT status, total, paid_at FROM invoice"
            " WHERE tenant_id = $1 AND billing_key = 'stripe:in_nothing'",
            tenant_a.id,
        )
    assert (row["status"], row["total"]) == ("paid", 0)
    assert row["paid_at"] is not None


async def test_an_event_that_always_fails_becomes_a_dead_letter_and_leaves_the_sweep(
    webhook_client: httpx.AsyncClient,
    stripe_server: StripeServer,
    stripe_gateway: StripeGateway,
    held: HeldQueue,
    tenant_a: TenantFixture,
) -> None:
    _sub, stripe_id = await subscribe_on_stripe(tenant_a, stripe_gateway)
    stripe_server.take_events()
    customer = stripe_server.state.objects[stripe_id]["customer"]
    broken = _event(  # a line Jalon cannot read: it fails every time
        stripe_server,
        "invoice.finalized",
        {
            "id": "in_broken",
            "customer": customer,
            "status": "open",
            "currency": "eur",
            "created": int(time.time()),
            "lines": {"data": [{"amount": "not a number", "quantity": 1}]},
        },
    )
    await deliver(webhook_client, broken)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(ValueError, match="invalid literal"):
            await process_stripe_event(broken["id"], stripe_gateway)
    [row] = await _stored(broken["id"])
    assert row["processed_at"] is None
    assert row["outcome"].startswith(f"attempt {MAX_ATTEMPTS - 1} failed: ValueError")
    outcome = await process_stripe_event(broken["id"], stripe_gateway)
    assert outcome.outcome.startswith(f"dead letter after {MAX_ATTEMPTS} attempts: ValueError")
    [row] = await _stored(broken["id"])
    assert row["processed_at"] is not None
    assert row["outcome"] == outcome.outcome
    later = datetime.now(UTC) + timedelta(days=1)
    assert ("stripe", broken["id"]) not in await dangerously_unprocessed_events(later)
    assert (await process_stripe_event(broken["id"], stripe_gateway)).outcome == (
        "already processed"
    )
