"""Fixtures shared by the billing tests. Stripe: a Stripe-compatible server on 127.0.0.1 for
the session (`stripe_server`), the real SDK's gateway pointed at it (`stripe_gateway`), and
the application with a webhook secret, to which `deliver` posts events signed by the SDK."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import stripe
from litestar import Litestar

from api.app import create_app
from billing.catalogue import Plan, plan_price
from billing.gateways.stripe import StripeGateway
from billing.inbox import use_stripe_gateway, wakeups_sent
from billing.profiles import BillingProfile, ProfileFields, save_profile
from billing.subscriptions import Subscription, subscribe
from core.settings import Settings
from tests.api.running import asgi_transport, running
from tests.billing.plans import per_seat_plan
from tests.billing.stripe_server import StripeServer
from tests.conftest import TenantFixture

WEBHOOK_SECRET = "whsec_test_jalon_billing"
WEBHOOK = "/billing/stripe/webhook"


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeServer]:
    """The Stripe-compatible server, for the whole session (each test makes its own objects)."""
    with StripeServer.running() as server:
        yield server


@pytest.fixture(scope="session")
def stripe_settings(settings: Settings, stripe_server: StripeServer) -> Settings:
    """The suite's settings with Stripe configured against the local server."""
    return replace(
        settings,
        stripe_secret_key="sk_test_jalon",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=stripe_server.url,
    )


@pytest.fixture
def stripe_gateway(stripe_settings: Settings, db: str) -> Iterator[StripeGateway]:
    """Jalon's Stripe gateway on the local server; the webhook jobs read through it too."""
    gateway = StripeGateway.from_settings(stripe_settings)
    use_stripe_gateway(gateway)
    yield gateway
    use_stripe_gateway(None)


@pytest.fixture(scope="session")
async def stripe_app(db: str, stripe_settings: Settings) -> AsyncIterator[Litestar]:
    """The application, knowing the webhook secret."""
    async with running(create_app(stripe_settings)) as application:
        yield application


@pytest.fixture
async def webhook_client(stripe_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client posting to the application in-process (Stripe's side of the webhooks)."""
    async with httpx.AsyncClient(
        transport=asgi_transport(stripe_app), base_url="http://127.0.0.1"
    ) as client:
        yield client


def signed(
    event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, str]:
    """The body of `event` and its `Stripe-Signature` header, made by the SDK."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=int(time.time()) if timestamp is None else timestamp
    )
    return payload.encode(), header


async def deliver(client: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    """Post `event` as Stripe would, signed; the answer must be a 200."""
    body, header = signed(event)
    response = await client.post(
        WEBHOOK,
        content=body,
        headers={"stripe-signature": header, "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    await wakeups_sent()
    return response


async def billing_details(tenant: TenantFixture) -> BillingProfile:
    """The tenant's billing details: a French business with a VAT number."""
    return await save_profile(
        tenant.owner_ctx,
        ProfileFields(
            legal_name=tenant.owner_ctx.tenant.name,
            country="FR",
            billing_email="billing@example.org",
            address_line1="1 rue de la Paix",
            postal_code="75002",
            city="Paris",
            vat_number="FR40303265045",
        ),
    )


async def subscribe_on_stripe(
    tenant: TenantFixture, gateway: StripeGateway, *, plan: Plan | None = None, seats: int = 10
) -> tuple[Subscription, str]:
    """The tenant subscribed to `plan` (per seat, 5.00 EUR, no trial) on Stripe, charged
    automatically; Jalon's subscription as subscribed, and Stripe's id of it."""
    plan = plan or await per_seat_plan(500, trial_days=0)
    sub = await subscribe(
        tenant.owner_ctx,
        plan.code,
        at=datetime.now(UTC),
        quantity=seats,
        trial=False,
        collection_method="automatic",
        gateway="stripe",
    )
    await gateway.ensure_customer(tenant.owner_ctx, await billing_details(tenant))
    price = await plan_price(plan.id, "EUR")
    assert price is not None
    started = await gateway.start_subscription(tenant.owner_ctx, sub, price)
    assert started.gateway_subscription_id is not None
    return sub, started.gateway_subscription_id
