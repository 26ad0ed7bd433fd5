"""Invoices: a period billed once, VAT that adds up, gapless numbers across tenants, issued
invoices that never change, credit notes, and the EU reverse charge."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from uuid import uuid4

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing import invoices
from billing.catalogue import PlanFields, PlanKind, create_plan, set_price
from billing.invoices import LineInput, Party, price_lines, taxation_for, totals
from billing.seats import SeatPackFields, add_seat_pack
from billing.subscriptions import subscribe
from core.database import execute, fetch
from core.errors import Conflict, Forbidden, NotFound
from tenants.context import TenantContext
from tenants.organizations import system_context
from tests.billing.plans import STAFF, licence_plan, per_seat_plan
from tests.conftest import TenantFixture
from tests.db import as_tenant

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def system(tenant: TenantFixture) -> TenantContext:
    """The system acting in `tenant` (renewals, gateways): who writes invoices."""
    return system_context(tenant.owner_ctx.tenant, "tests")


line_inputs = st.builds(
    LineInput,
    kind=st.sampled_from(invoices.LINE_KINDS),
    description=st.just("a line"),
    quantity=st.integers(0, 1_000_000),
    unit_amount=st.integers(-(10**7), 10**7),
    amount=st.one_of(st.none(), st.integers(-(10**9), 10**9)),
)


@given(lines=st.lists(line_inputs, min_size=1, max_size=30), rate=st.integers(0, 10_000))
def test_an_invoice_total_is_the_sum_of_its_lines_and_taxes(
    lines: list[LineInput], rate: int
) -> None:
    priced = price_lines(lines, rate)
    sums = totals(priced)
    assert sums.subtotal == sum(line.amount for line in priced)
    assert sums.tax_total == sum(line.tax_amount for line in priced)
    assert sums.total == sums.subtotal + sums.tax_total
    # the VAT of the whole is the rounded VAT of the net total (EN 16931), within half a cent
    assert abs(Fraction(sums.subtotal * rate, 10_000) - sums.tax_total) <= Fraction(1, 2)
    for given_line, line in zip(lines, priced, strict=True):
        expected = given_line.quantity * given_line.unit_amount
        assert line.amount == (expected if given_line.amount is None else given_line.amount)
        # each line's share is its exact VAT, to the cent
        assert abs(Fraction(line.amount * rate, 10_000) - line.tax_amount) < 1


def test_vat_is_rounded_half_away_from_zero() -> None:
    # 3 lines of 0.05 at 10 %: 0.015 in all, 0.02 on the invoice
    priced = price_lines([LineInput("adjustment", "x", 1, 5)] * 3, 1000)
    assert totals(priced).tax_total == 2
    assert sorted(line.tax_amount for line in priced) == [0, 1, 1]


def test_reverse_charge_for_an_eu_business_names_both_vat_numbers() -> None:
    seller = Party(name="Jalon", country="FR", vat_number="FR40303265045")
    buyer = Party(name="GmbH", country="DE", vat_number="DE136695976", kind="business")
    tax = taxation_for(buyer, seller)
    assert (tax.treatment, tax.rate) == ("reverse_charge", 0)
    assert "Autoliquidation / Reverse charge" in tax.note
    assert "FR40303265045" in tax.note
    assert "DE136695976" in tax.note
    assert taxation_for(Party(name="x", country="FR"), seller).rate == 2000
    assert taxation_for(Party(name="no billing details yet"), seller).rate == 2000
    # an individual elsewhere in the EU pays the seller's VAT; a buyer outside the EU none
    assert taxation_for(Party(name="x", country="DE", kind="individual"), seller).rate == 2000
    outside = taxation_for(Party(name="x", country="NO"), seller)
    assert (outside.treatment, outside.rate) == ("out_of_scope", 0)


async def subscribed(tenant: TenantFixture, seats: int = 3, amount: int = 500) -> None:
    plan = await per_seat_plan(amount, trial_days=0)
    await subscribe(tenant.owner_ctx, plan.code, at=NOW, quantity=seats, trial=False)


async def set_profile(tenant: TenantFixture, **fields: str) -> None:
    values = {
        "legal_name": "Alpha SAS",
        "address_line1": "1 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
        "billing_email": "billing@alpha.example.org",
        "vat_number": "",
        "buyer_kind": "business",
        "siret": "",
        "chorus_service_code": "",
        **fields,
    }
    columns = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(3, len(values) + 3))
    async with as_tenant(tenant.id):
        await execute(
            f"INSERT INTO billing_profile (tenant_id, id, {columns}) VALUES ($1, $2, {marks}) "  # noqa: S608
            f"ON CONFLICT (tenant_id) DO UPDATE SET "
            + ", ".join(f"{column} = EXCLUDED.{column}" for column in values),
            tenant.id,
            uuid4(),
            *values.values(),
        )


async def test_a_period_is_invoiced_once_with_its_seats_and_vat(
    tenant_a: TenantFixture,
) -> None:
    await subscribed(tenant_a, seats=3, amount=500)
    await set_profile(tenant_a)
    first = await invoices.bill_period(tenant_a.owner_ctx, at=NOW, locale="en")
    again = await invoices.bill_period(tenant_a.owner_ctx, at=NOW + timedelta(hours=1))
    assert first is not None
    assert again is not None
    assert again.id == first.id
    assert again.number == first.number
    assert first.status == "open"
    assert first.number is not None
    assert first.number.startswith(f"JALON-{NOW.year}-")
    assert (first.subtotal, first.tax_total, first.total) == (1500, 300, 1800)
    assert first.due_on == NOW.date() + timedelta(days=30)
    [line] = first.lines
    assert (line.kind, line.quantity, line.unit_amount, line.tax_rate) == (
        "subscription",
        3,
        500,
        2000,
    )
    assert "Per seat" in line.description
    assert first.buyer.name == "Alpha SAS"
    assert first.seller.name


async def add_charge(tenant: TenantFixture, description: str, amount: int) -> None:
    """A charge waiting for the tenant's next invoice, as a mid-period change leaves one."""
    async with as_tenant(tenant.id):
        [sub] = await fetch("SELECT id FROM subscription WHERE tenant_id = $1", tenant.id)
        await execute(
            """INSERT INTO pending_charge (tenant_id, id, subscription_id, kind, description,
                   quantity, amount, currency, period_start, period_end)
               VALUES ($1, $2, $3, 'proration', $4, 2, $5, 'EUR', $6, $7)""",
            tenant.id,
            uuid4(),
            sub["id"],
            description,
            amount,
            NOW - timedelta(days=15),
            NOW,
        )


async def test_waiting_charges_go_on_the_next_invoice_once(tenant_a: TenantFixture) -> None:
    await subscribed(tenant_a, seats=2, amount=1000)
    await add_charge(tenant_a, "Two seats more, half a month", 1000)
    invoice = await invoices.bill_period(tenant_a.owner_ctx, at=NOW)
    assert invoice is not None
    assert [line.kind for line in invoice.lines] == ["subscription", "proration"]
    assert invoice.subtotal == 2 * 1000 + 1000
    async with as_tenant(tenant_a.id):
        [charge] = await fetch(
            "SELECT invoice_id FROM pending_charge WHERE tenant_id = $1", tenant_a.id
        )
    assert charge["invoice_id"] == invoice.id


async def test_a_credit_larger_than_the_invoice_waits_for_the_next_one(
    tenant_a: TenantFixture,
) -> None:
    await subscribed(tenant_a, seats=1, amount=1000)
    await add_charge(tenant_a, "Downgrade: unused time refunded", -1500)
    await add_charge(tenant_a, "Downgrade: a smaller refund", -400)
    invoice = await invoices.bill_period(tenant_a.owner_ctx, at=NOW)
    assert invoice is not None
    # the 15.00 credit would take the invoice below zero: it waits; the 4.00 one fits
    assert [line.amount for line in invoice.lines] == [1000, -400]
    assert invoice.subtotal == 600
    async with as_tenant(tenant_a.id):
        waiting = await fetch(
            "SELECT amount FROM pending_charge WHERE tenant_id = $1 AND invoice_id IS NULL",
            tenant_a.id,
        )
    assert [row["amount"] for row in waiting] == [-1500]


async def test_numbers_are_gapless_across_tenants_and_rolled_back_issues(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    at = datetime(2031, 1, 5, tzinfo=UTC)  # a year of its own in this test database
    lines = [LineInput("adjustment", "Consulting", 1, 10_000)]

    async def drafted(tenant: TenantFixture) -> invoices.Invoice:
        return await invoices.draft_invoice(system(tenant), lines, currency="EUR")

    first = await invoices.issue_invoice(system(tenant_a), (await drafted(tenant_a)).id, at=at)
    doomed = await drafted(tenant_b)

    async def issue_then_fail() -> None:
        async with as_tenant(tenant_b.id):
            await invoices.issue_draft(system(tenant_b), doomed.id, at=at)
            raise RuntimeError("the issuing transaction fails after the number was taken")

    with pytest.raises(RuntimeError):
        await issue_then_fail()
    second = await invoices.issue_invoice(system(tenant_b), doomed.id, at=at)
    third = await invoices.issue_invoice(system(tenant_a), (await drafted(tenant_a)).id, at=at)
    assert [first.number, second.number, third.number] == [
        "JALON-2031-000001",
        "JALON-2031-000002",
        "JALON-2031-000003",
    ]


async def test_an_issued_invoice_cannot_be_edited_or_deleted(tenant_a: TenantFixture) -> None:
    await subscribed(tenant_a)
    invoice = await invoices.bill_period(tenant_a.owner_ctx, at=NOW)
    assert invoice is not None
    for sql in (
        "UPDATE invoice SET total = total + 1, tax_total = tax_total + 1"
        " WHERE tenant_id = $1 AND id = $2",
        "UPDATE invoice SET number = 'X' WHERE tenant_id = $1 AND id = $2",
        "DELETE FROM invoice WHERE tenant_id = $1 AND id = $2",
        "UPDATE invoice_line SET amount = 1 WHERE tenant_id = $1 AND invoice_id = $2",
        "DELETE FROM invoice_line WHERE tenant_id = $1 AND invoice_id = $2",
    ):
        with pytest.raises(asyncpg.RaiseError):
            async with as_tenant(tenant_a.id):
                await execute(sql, tenant_a.id, invoice.id)
    assert (await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)).total == invoice.total


async def test_a_credit_note_voids_an_open_invoice(tenant_a: TenantFixture) -> None:
    await subscribed(tenant_a)
    invoice = await invoices.bill_period(tenant_a.owner_ctx, at=NOW)
    assert invoice is not None
    with pytest.raises(Forbidden):  # a tenant never voids its own invoice
        await invoices.credit_invoice(tenant_a.owner_ctx, invoice.id, reason="mine")
    note = await invoices.credit_invoice(system(tenant_a), invoice.id, reason="wrong seats")
    again = await invoices.credit_invoice(system(tenant_a), invoice.id, reason="twice")
    assert again.id == note.id
    assert note.kind == "credit_note"
    assert note.credits_invoice_id == invoice.id
    assert note.number is not None
    assert note.number != invoice.number
    assert (note.total, len(note.lines)) == (invoice.total, len(invoice.lines))
    assert (await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)).status == "void"
    with pytest.raises(Conflict):
        await invoices.credit_invoice(system(tenant_a), note.id, reason="no")
    listed = await invoices.list_invoices(tenant_a.owner_ctx)
    assert {item.id for item in listed} == {invoice.id, note.id}


async def test_reverse_charge_invoice_has_no_vat_and_the_legal_mention(
    tenant_a: TenantFixture,
) -> None:
    licence = await licence_plan(1_200_000, seats=100)
    await subscribe(tenant_a.owner_ctx, licence.code, at=NOW, trial=False)
    await set_profile(tenant_a, country="DE", vat_number="DE136695976", legal_name="Alpha GmbH")
    invoice = await invoices.bill_period(tenant_a.owner_ctx, at=NOW)
    assert invoice is not None
    assert (invoice.tax_treatment, invoice.tax_total, invoice.total) == (
        "reverse_charge",
        0,
        1_200_000,
    )
    assert "Autoliquidation / Reverse charge" in invoice.tax_note
    assert "DE136695976" in invoice.tax_note
    assert [line.kind for line in invoice.lines] == ["license"]


async def test_another_tenants_invoice_is_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await subscribed(tenant_b)
    theirs = await invoices.bill_period(tenant_b.owner_ctx, at=NOW)
    assert theirs is not None
    for wanted in (theirs.id, uuid4(), "not-a-uuid"):
        with pytest.raises(NotFound):
            await invoices.get_invoice(tenant_a.owner_ctx, wanted)
    assert await invoices.list_invoices(tenant_a.owner_ctx) == []
    with pytest.raises(Forbidden):
        await invoices.list_invoices(tenant_b.member_ctx)


async def test_no_subscription_no_invoice(tenant_a: TenantFixture) -> None:
    assert await invoices.bill_period(tenant_a.owner_ctx, at=NOW) is None


def test_invoice_numbers_read_well() -> None:
    assert invoices.invoice_number("JALON", 2026, 42) == "JALON-2026-000042"


async def test_an_added_seat_pack_is_invoiced_once_at_its_category_price(
    tenant_a: TenantFixture,
) -> None:
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"pack-{uuid4().hex[:10]}",
            kind=PlanKind.SEAT_PACK,
            names={"en": "Pack of 100", "fr": "Pack de 100"},
            interval="year",
            overage_policy="block",
            pack_seats=100,
            pack_validity_months=12,
        ),
    )
    for category, amount in (("public", 90_000), ("full", 120_000)):
        await set_price(STAFF, plan.code, "EUR", amount, category=category)
    await subscribe(tenant_a.owner_ctx, plan.code, at=NOW, trial=False, price_category="public")
    # the pack bought with the subscription is billed with its period
    period = await invoices.bill_period(tenant_a.owner_ctx, at=NOW)
    assert period is not None
    assert [(line.kind, line.quantity, line.unit_amount) for line in period.lines] == [
        ("seat_pack", 1, 90_000)
    ]
    # packs added later by an account manager are billed each on their own
    pack = await add_seat_pack(
        tenant_a.owner_ctx,
        STAFF,
        SeatPackFields(seats=150, starts_on=NOW.date(), category="public", reference="BC-77"),
    )
    invoice = await invoices.bill_seat_pack(system(tenant_a), pack, at=NOW, locale="en")
    again = await invoices.bill_seat_pack(system(tenant_a), pack, at=NOW, locale="en")
    assert invoice is not None
    assert again is not None
    assert again.number == invoice.number
    [line] = invoice.lines
    assert (line.kind, line.quantity, line.unit_amount) == ("seat_pack", 2, 90_000)
    assert "150" in line.description
    assert (invoice.subtotal, invoice.po_number) == (180_000, "BC-77")


async def test_concurrent_issues_across_tenants_take_every_number_once(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    at = datetime(2032, 3, 1, tzinfo=UTC)  # a year of its own in this test database
    lines = [LineInput("adjustment", "Training day", 1, 50_000)]
    tenants = [tenant_a, tenant_b] * 4
    drafts = [
        await invoices.draft_invoice(system(tenant), lines, currency="EUR") for tenant in tenants
    ]
    issued = await asyncio.gather(
        *(
            invoices.issue_invoice(system(tenant), draft.id, at=at)
            for tenant, draft in zip(tenants, drafts, strict=True)
        )
    )
    numbers = sorted(str(invoice.number) for invoice in issued)
    assert numbers == [f"JALON-2032-{n:06d}" for n in range(1, len(tenants) + 1)]
