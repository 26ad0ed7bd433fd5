"""What the back office may not do to money a payment service collects, and a partial
credit that would have to guess a VAT rate: a trial on a Stripe-billed subscription is
extended there, an invoice Stripe bills is credited there (`Conflict`, nothing written);
an invoice whose lines have different rates is credited in full or not at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing import invoices
from billing.subscriptions import current_subscription, extend_trial, subscribe
from core.database import execute, fetch
from core.errors import Conflict
from tenants.context import TenantContext
from tenants.organizations import system_context
from tests.billing.plans import per_seat_plan
from tests.conftest import TenantFixture
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")


def system(tenant: TenantFixture) -> TenantContext:
    return system_context(tenant.owner_ctx.tenant, "tests")


async def _credit_notes(tenant: TenantFixture) -> int:
    async with as_tenant(tenant.id):
        rows = await fetch(
            "SELECT 1 FROM invoice WHERE tenant_id = $1 AND kind = 'credit_note'", tenant.id
        )
    return len(rows)


async def _issued(
    tenant: TenantFixture, *, gateway: str = "manual", rates: tuple[int, ...] = ()
) -> invoices.Invoice:
    """An issued invoice of two lines (10 000 and 5 000 net); with `rates`, the lines' VAT
    rates are set to those before it is issued."""
    ctx = system(tenant)
    draft = await invoices.draft_invoice(
        ctx,
        [
            invoices.LineInput("adjustment", "Training day", 1, 10_000),
            invoices.LineInput("adjustment", "Printed booklets", 1, 5_000),
        ],
        currency="EUR",
        gateway=gateway,
    )
    if rates:
        async with as_tenant(tenant.id):
            for position, rate in enumerate(rates):
                await execute(
                    """UPDATE invoice_line SET tax_rate = $4
                       WHERE tenant_id = $1 AND invoice_id = $2 AND position = $3""",
                    tenant.id,
                    draft.id,
                    position,
                    rate,
                )
    return await invoices.issue_invoice(ctx, draft.id)


async def test_a_trial_billed_by_a_payment_service_is_not_extended_here(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    plan = await per_seat_plan(1000, trial_days=14)
    now = datetime.now(UTC)
    await subscribe(
        tenant_a.owner_ctx,
        plan.code,
        at=now,
        quantity=5,
        trial=True,
        gateway="stripe",
        collection_method="automatic",
    )
    await subscribe(tenant_b.owner_ctx, plan.code, at=now, quantity=5, trial=True)
    before = await current_subscription(tenant_a.owner_ctx)
    assert before is not None
    with pytest.raises(Conflict) as refused:
        await extend_trial(system(tenant_a), 7, at=now)
    assert "extend the trial there" in refused.value.message
    after = await current_subscription(tenant_a.owner_ctx)
    assert after is not None
    assert after.trial_end == before.trial_end
    # on the manual gateway it works
    other = await current_subscription(tenant_b.owner_ctx)
    assert other is not None
    assert other.trial_end is not None
    extended = await extend_trial(system(tenant_b), 7, at=now)
    assert extended.trial_end == other.trial_end + timedelta(days=7)


async def test_an_invoice_billed_by_a_payment_service_is_not_credited_here(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    invoice = await _issued(tenant_a, gateway="stripe")
    for amount in (1_000, invoice.total):
        with pytest.raises(Conflict) as refused:
            await invoices.credit_invoice_amount(
                system(tenant_a), invoice.id, amount=amount, reason="Goodwill"
            )
        assert "issue the credit note there" in refused.value.message
    assert await _credit_notes(tenant_a) == 0


async def test_a_partial_credit_of_an_invoice_at_mixed_rates_is_refused(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    mixed = await _issued(tenant_a, rates=(2000, 550))
    assert len({line.tax_rate for line in mixed.lines}) == 2
    with pytest.raises(Conflict) as refused:
        await invoices.credit_invoice_amount(
            system(tenant_a), mixed.id, amount=1_000, reason="Goodwill"
        )
    assert "different VAT rates" in refused.value.message
    assert await _credit_notes(tenant_a) == 0
    # in full, it is voided by a credit note of every line
    await invoices.credit_invoice_amount(
        system(tenant_a), mixed.id, amount=mixed.total, reason="Cancelled order"
    )
    assert await _credit_notes(tenant_a) == 1
    # one rate: a partial credit is fine
    single = await _issued(tenant_b)
    note = await invoices.credit_invoice_amount(
        system(tenant_b), single.id, amount=1_000, reason="Goodwill"
    )
    assert abs(note.total) == 1_000
