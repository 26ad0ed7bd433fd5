"""Self-serve: a trial picks a plan and pays by card on the gateway's checkout (the local
Stripe-compatible server) or by invoice; a wrong choice leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from billing.catalogue import PlanFields, PlanKind, create_plan, retire_plan, set_price
from billing.changes import ChangeRequest
from billing.renewals import renew
from billing.selfserve import choose_plan, portal_url
from billing.subscriptions import current_subscription, subscribe
from core.database import fetch
from core.errors import Invalid
from core.settings import Settings
from tests.billing.plans import STAFF, per_seat_plan
from tests.conftest import TenantFixture
from tests.db import as_tenant

NOW = datetime.now(UTC)
BACK = "http://127.0.0.1/o/x/billing"


async def test_a_trial_pays_by_card_on_the_gateways_checkout(
    tenant_a: TenantFixture, stripe_settings: Settings
) -> None:
    plan = await per_seat_plan(500, trial_days=30)
    await subscribe(tenant_a.owner_ctx, plan.code, at=NOW, quantity=5)
    url = await choose_plan(
        tenant_a.owner_ctx,
        ChangeRequest(quantity=8),
        pay_by="card",
        currency=None,
        at=NOW,
        settings=stripe_settings,
        return_url=BACK,
    )
    assert url is not None
    assert url.startswith("http")
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    # Stripe's webhooks turn it active (and on Stripe) once paid; until then it is the trial,
    # on the manual gateway: left unpaid, it ends like any trial.
    assert (sub.status, sub.quantity, sub.gateway, sub.collection_method) == (
        "trialing",
        8,
        "manual",
        "send_invoice",
    )


async def test_an_abandoned_card_checkout_leaves_a_trial_that_ends_and_is_invoiced(
    tenant_a: TenantFixture, stripe_settings: Settings
) -> None:
    plan = await per_seat_plan(500, trial_days=14)
    url = await choose_plan(
        tenant_a.owner_ctx,
        ChangeRequest(plan_code=plan.code, quantity=3),
        pay_by="card",
        currency="EUR",
        at=NOW,
        settings=stripe_settings,
        return_url=BACK,
    )
    assert url is not None
    # the person never pays on the checkout page; the trial runs out
    after = await renew(tenant_a.owner_ctx, at=NOW + timedelta(days=14, hours=1))
    assert after is not None
    assert (after.status, after.gateway) == ("active", "manual")
    async with as_tenant(tenant_a.id):
        invoiced = await fetch(
            "SELECT total FROM invoice WHERE tenant_id = $1 AND status = 'open'", tenant_a.id
        )
    assert len(invoiced) == 1


@pytest.mark.parametrize("wrong", ["seat_pack", "zero", "nul"])
async def test_self_serve_refuses_what_it_cannot_grant(
    tenant_a: TenantFixture, settings: Settings, wrong: str
) -> None:
    pack = await create_plan(
        STAFF,
        PlanFields(
            code=f"pack-{uuid4().hex[:10]}",
            kind=PlanKind.SEAT_PACK,
            names={"en": "Pack"},
            interval="year",
            overage_policy="block",
            pack_seats=50,
            pack_validity_months=12,
        ),
    )
    await set_price(STAFF, pack.code, "EUR", 90_000, category="public")
    seats = await per_seat_plan(500)
    request = {
        "seat_pack": ChangeRequest(plan_code=pack.code, quantity=1),
        "zero": ChangeRequest(plan_code=seats.code, quantity=0),
        "nul": ChangeRequest(plan_code="a\x00b", quantity=1),
    }[wrong]
    with pytest.raises(Invalid) as refused:
        await choose_plan(
            tenant_a.owner_ctx,
            request,
            pay_by="invoice",
            currency="EUR",
            at=NOW,
            settings=settings,
            return_url=BACK,
        )
    assert refused.value.field == ("quantity" if wrong == "zero" else "plan")
    assert await current_subscription(tenant_a.owner_ctx) is None


async def test_a_trial_asks_for_an_invoice(tenant_a: TenantFixture, settings: Settings) -> None:
    plan = await per_seat_plan(500, trial_days=30)
    await subscribe(tenant_a.owner_ctx, plan.code, at=NOW, quantity=5)
    done = await choose_plan(
        tenant_a.owner_ctx,
        ChangeRequest(),
        pay_by="invoice",
        currency=None,
        at=NOW,
        settings=settings,
        return_url=BACK,
    )
    assert done is None
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert (sub.status, sub.gateway, sub.current_period_start) == ("active", "manual", NOW)


@pytest.mark.parametrize("wrong", ["retired", "seats", "method"])
async def test_a_wrong_choice_leaves_the_trial_as_it_was(
    tenant_a: TenantFixture, settings: Settings, wrong: str
) -> None:
    plan = await per_seat_plan(500, trial_days=30)
    other = await per_seat_plan(900, trial_days=30)
    await retire_plan(STAFF, other.code, at=NOW)
    before = await subscribe(tenant_a.owner_ctx, plan.code, at=NOW, quantity=5)
    request = {
        "retired": ChangeRequest(plan_code=other.code),
        "seats": ChangeRequest(quantity=1_000_001),
        "method": ChangeRequest(quantity=6),
    }[wrong]
    with pytest.raises(Invalid):
        await choose_plan(
            tenant_a.owner_ctx,
            request,
            pay_by="card" if wrong == "method" else "invoice",  # no Stripe keys here
            currency=None,
            at=NOW,
            settings=settings,
            return_url=BACK,
        )
    assert await current_subscription(tenant_a.owner_ctx) == before


async def test_bank_transfer_has_no_card_portal(
    tenant_a: TenantFixture, settings: Settings
) -> None:
    plan = await per_seat_plan(500)
    await subscribe(tenant_a.owner_ctx, plan.code, at=NOW)
    with pytest.raises(Invalid, match="no card portal"):
        await portal_url(tenant_a.owner_ctx, settings=settings, return_url=BACK)
