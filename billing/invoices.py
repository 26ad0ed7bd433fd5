"""Invoices: Jalon's own record of what a tenant owes, whichever gateway collects it.

An invoice is a *draft* until it is issued; issuing gives it its number, from a counter that
is gapless per issuer (the selling entity, `JALON_BILLING_ISSUER`) and year across every
tenant, incremented in the issuing transaction (so a rolled-back issue takes no number).
From then on it is never edited (a trigger refuses it): it is paid, or voided by a credit
note that repeats its lines. VAT is computed per invoice (one rate per invoice, from the
buyer's tax treatment): the VAT total is the rounded VAT of the net total, spread over the
lines, so that lines, taxes and totals always add up to the cent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any
from uuid import UUID, uuid4

from billing import notices
from billing.dunning import settle
from billing.money import Money, currency_code
from billing.profiles import ProfileFields, TaxKind, tax_treatment
from billing.seats import SeatOverage, SeatPack, mark_overage_billed, unbilled_overage
from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.i18n import N_, translate
from core.ids import uuid_or_404
from core.l10n import format_day
from core.mail import queue_mail
from core.settings import Settings, get_settings
from tenants import audit
from tenants.context import TenantContext
from tenants.permissions import Permission

LINE_KINDS = ("subscription", "seat_pack", "license", "proration", "overage", "adjustment")
STATUSES = ("draft", "open", "paid", "void", "uncollectible")
#: The legal mention of an EU reverse charge, in the two languages of our invoices; both
#: VAT numbers follow it.
REVERSE_CHARGE_NOTE = "Autoliquidation / Reverse charge"


# --- pure computation --------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    """A line to invoice: `amount` defaults to `quantity × unit_amount` (minor units); a
    proration may say its own (negative for a credit)."""

    kind: str
    description: str
    quantity: int
    unit_amount: int
    amount: int | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass(frozen=True)
class InvoiceLine:
    """One line of an invoice, its VAT included: amounts in minor units, `tax_rate` in basis
    points (2000 is 20 %)."""

    position: int
    kind: str
    description: str
    quantity: int
    unit_amount: int
    amount: int
    tax_rate: int
    tax_amount: int
    period_start: datetime | None = None
    period_end: datetime | None = None


def _round_half_away(value: Fraction) -> int:
    magnitude = abs(value)
    rounded = int(magnitude + Fraction(1, 2))  # floor of |x| + 1/2
    return rounded if value >= 0 else -rounded


def price_lines(lines: Sequence[LineInput], tax_rate: int) -> list[InvoiceLine]:
    """The lines with their amounts and VAT at `tax_rate` basis points.

    The VAT of the invoice is the net total's VAT rounded half away from zero (EN 16931
    computes VAT per rate, not per line); each line gets its share, rounded down, and the
    cents left over go to the lines with the largest remainders. So the lines' VAT always
    adds up to the invoice's."""
    if not 0 <= tax_rate <= 10_000:
        raise ValueError("a tax rate is between 0 and 10,000 basis points")
    amounts = [
        line.quantity * line.unit_amount if line.amount is None else line.amount for line in lines
    ]
    exact = [Fraction(amount * tax_rate, 10_000) for amount in amounts]
    taxes = [int(share // 1) for share in exact]
    left = _round_half_away(sum(exact, Fraction(0))) - sum(taxes)
    by_remainder = sorted(range(len(lines)), key=lambda i: (-(exact[i] - taxes[i]), i))
    for index in by_remainder[:left]:
        taxes[index] += 1
    return [
        InvoiceLine(
            position=position,
            kind=line.kind,
            description=line.description,
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            amount=amounts[position],
            tax_rate=tax_rate,
            tax_amount=taxes[position],
            period_start=line.period_start,
            period_end=line.period_end,
        )
        for position, line in enumerate(lines)
    ]


@dataclass(frozen=True)
class Totals:
    subtotal: int
    tax_total: int
    total: int


def totals(lines: Sequence[InvoiceLine]) -> Totals:
    """Net, VAT and gross totals of `lines` (minor units)."""
    subtotal = sum(line.amount for line in lines)
    tax_total = sum(line.tax_amount for line in lines)
    return Totals(subtotal, tax_total, subtotal + tax_total)


@dataclass(frozen=True)
class Party:
    """The seller or the buyer as the invoice prints them (a snapshot taken at issue)."""

    name: str
    address_line1: str = ""
    address_line2: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""
    vat_number: str = ""
    siret: str = ""
    email: str = ""
    #: business, public or individual (a buyer); the seller is a business
    kind: str = "business"
    #: Chorus Pro service code of a French public buyer
    service_code: str = ""
    iban: str = ""
    bic: str = ""

    @classmethod
    def from_json(cls, value: Any) -> Party:
        data = json.loads(value) if isinstance(value, str) else dict(value or {})
        known = set(cls.__dataclass_fields__)
        return cls(**{key: str(val) for key, val in data.items() if key in known})


@dataclass(frozen=True)
class Taxation:
    """How VAT applies to one buyer: `treatment` (standard, reverse_charge, out_of_scope),
    the rate in basis points, and the legal mention printed on the invoice."""

    treatment: str
    rate: int
    note: str


def taxation_for(buyer: Party, seller: Party) -> Taxation:
    """The VAT of a sale from `seller` to `buyer`, as `billing.profiles.tax_treatment` rules
    (the seller's standard rate; the reverse charge for a business of another EU member
    state with a valid VAT number; none outside the EU), with the mention the invoice
    prints: for a reverse charge, "Autoliquidation / Reverse charge" and both VAT numbers."""
    # no billing details yet: no country to tell, the seller's standard rate
    fields = None
    if buyer.country:
        fields = ProfileFields(
            legal_name=buyer.name,
            country=buyer.country.upper(),
            billing_email=buyer.email,
            vat_number=buyer.vat_number,
            buyer_kind=buyer.kind or "business",
        )
    treatment = tax_treatment(fields, seller.country or "FR")
    note = treatment.mention
    if treatment.kind == TaxKind.REVERSE_CHARGE:
        note = (
            f"{REVERSE_CHARGE_NOTE}. {treatment.mention} "
            f"TVA vendeur / Seller VAT: {seller.vat_number or '—'}; "
            f"TVA acheteur / Buyer VAT: {buyer.vat_number}"
        )
    return Taxation(treatment.kind.value, treatment.rate_basis_points, note)


def seller_of(settings: Settings) -> Party:
    """The selling entity, from the settings."""
    return Party(
        name=settings.billing_seller_name,
        address_line1=settings.billing_seller_address,
        postal_code=settings.billing_seller_postal_code,
        city=settings.billing_seller_city,
        country=settings.billing_seller_country.upper(),
        vat_number=settings.billing_seller_vat_number,
        siret=settings.billing_seller_siret,
        email=settings.billing_seller_email,
        kind="business",
        iban=settings.billing_seller_iban,
        bic=settings.billing_seller_bic,
    )


def invoice_number(issuer: str, year: int, sequence: int) -> str:
    """`JALON-2026-000042`: the issuer's series, the year, the gapless sequence."""
    return f"{issuer}-{year}-{sequence:06d}"


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    """An invoice or a credit note, with its lines; amounts in minor units of `currency`."""

    id: UUID
    tenant_id: UUID
    subscription_id: UUID | None
    kind: str
    credits_invoice_id: UUID | None
    status: str
    number: str | None
    issuer: str
    year: int | None
    currency: str
    subtotal: int
    tax_total: int
    total: int
    amount_paid: int
    collection_method: str
    period_start: datetime | None
    period_end: datetime | None
    issued_at: datetime | None
    due_on: date | None
    paid_at: datetime | None
    voided_at: datetime | None
    po_number: str
    buyer: Party
    seller: Party
    tax_treatment: str
    tax_note: str
    gateway: str
    gateway_invoice_id: str | None
    created_at: datetime
    lines: tuple[InvoiceLine, ...] = ()

    @property
    def amount_due(self) -> int:
        return max(self.total - self.amount_paid, 0) if self.status == "open" else 0

    def money(self, amount: int) -> Money:
        return Money(amount, self.currency)

    def overdue_on(self, day: date) -> bool:
        """Open and past its due date on `day`."""
        return self.status == "open" and self.due_on is not None and self.due_on < day

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "credit_note"

    @property
    def for_chorus(self) -> bool:
        """A French public buyer with a SIRET: it gets a Factur-X e-invoice (Chorus Pro)."""
        return (
            self.number is not None
            and self.buyer.kind == "public"
            and self.buyer.country == "FR"
            and bool(self.buyer.siret)
        )


_COLUMNS = """id, tenant_id, subscription_id, kind, credits_invoice_id, status, number, issuer,
    year, currency, subtotal, tax_total, total, amount_paid, collection_method, period_start,
    period_end, issued_at, due_on, paid_at, voided_at, po_number, buyer, seller,
    tax_treatment, tax_note, gateway, gateway_invoice_id, created_at"""


def _invoice(row: dict[str, Any], lines: Sequence[dict[str, Any]] = ()) -> Invoice:
    data = dict(row)
    data["buyer"] = Party.from_json(data["buyer"])
    data["seller"] = Party.from_json(data["seller"])
    data["currency"] = data["currency"].strip()
    return Invoice(**data, lines=tuple(_line(line) for line in lines))


def _line(row: dict[str, Any]) -> InvoiceLine:
    return InvoiceLine(
        position=row["position"],
        kind=row["kind"],
        description=row["description"],
        quantity=row["quantity"],
        unit_amount=row["unit_amount"],
        amount=row["amount"],
        tax_rate=row["tax_rate"],
        tax_amount=row["tax_amount"],
        period_start=row["period_start"],
        period_end=row["period_end"],
    )


async def _load(tenant_id: UUID, invoice_id: UUID, *, lock: bool = False) -> Invoice | None:
    """One invoice of the tenant with its lines, in the open transaction (FOR UPDATE with
    `lock`: a row of this tenant's shard only)."""
    rows = await fetch(
        f"SELECT {_COLUMNS} FROM invoice WHERE tenant_id = $1 AND id = $2"  # noqa: S608
        + (" FOR UPDATE" if lock else ""),
        tenant_id,
        invoice_id,
    )
    if not rows:
        return None
    lines = await fetch(
        """SELECT position, kind, description, quantity, unit_amount, amount, tax_rate,
                  tax_amount, period_start, period_end
           FROM invoice_line WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY position""",
        tenant_id,
        invoice_id,
    )
    return _invoice(rows[0], lines)


async def load_invoice(tenant_id: UUID, invoice_id: UUID, *, lock: bool = False) -> Invoice:
    """`_load` for the other billing modules, inside their open tenant transaction;
    `NotFound` when the tenant has no such invoice."""
    invoice = await _load(tenant_id, invoice_id, lock=lock)
    if invoice is None:
        raise NotFound()
    return invoice


async def get_invoice(ctx: TenantContext, invoice_id: UUID | str) -> Invoice:
    """The accessor: one invoice of the tenant, for those who read billing; another tenant's
    id and a made-up one are the same `NotFound`."""
    ctx.require(Permission.BILLING_READ)
    wanted = uuid_or_404(invoice_id)
    async with tenant_transaction(ctx):
        invoice = await _load(ctx.tenant_id, wanted)
    if invoice is None:
        raise NotFound()
    return invoice


async def list_invoices(ctx: TenantContext, limit: int = 200) -> list[Invoice]:
    """The tenant's issued invoices and credit notes, newest first (drafts are not shown:
    nothing is owed before an invoice is issued). Lines are not loaded."""
    ctx.require(Permission.BILLING_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            f"""SELECT {_COLUMNS} FROM invoice
                WHERE tenant_id = $1 AND status <> 'draft'
                ORDER BY issued_at DESC, id DESC LIMIT $2""",  # noqa: S608
            ctx.tenant_id,
            limit,
        )
    return [_invoice(row) for row in rows]


# --- drafting ----------------------------------------------------------------------------


def require_operator(ctx: TenantContext) -> None:
    """Invoices are written by our staff and by the system (renewals, gateways, sweeps), never
    by a tenant's own people: an admin cannot invent an invoice, issue one, nor void their
    own by a credit note. `Forbidden` otherwise."""
    ctx.require(Permission.BILLING_MANAGE)
    if ctx.actor.kind not in ("staff", "system"):
        raise Forbidden()


async def _buyer(tenant_id: UUID, fallback_name: str) -> Party:
    rows = await fetch(
        """SELECT legal_name, address_line1, address_line2, postal_code, city, country,
                  billing_email, vat_number, buyer_kind, siret, chorus_service_code
           FROM billing_profile WHERE tenant_id = $1""",
        tenant_id,
    )
    if not rows:
        return Party(name=fallback_name)
    row = rows[0]
    return Party(
        name=row["legal_name"] or fallback_name,
        address_line1=row["address_line1"],
        address_line2=row["address_line2"],
        postal_code=row["postal_code"],
        city=row["city"],
        country=(row["country"] or "").strip(),
        vat_number=row["vat_number"],
        siret=row["siret"],
        email=row["billing_email"],
        kind=row["buyer_kind"],
        service_code=row["chorus_service_code"],
    )


def _clean_lines(lines: Sequence[LineInput]) -> list[LineInput]:
    if not lines:
        raise Invalid("An invoice needs at least one line.", field="lines")
    cleaned = []
    for line in lines:
        if line.kind not in LINE_KINDS:
            raise ValueError(f"unknown invoice line kind {line.kind!r}")
        description = line.description.strip()[:500]
        if not description:
            raise Invalid("Each invoice line needs a description.", field="lines")
        if not 0 <= line.quantity <= 1_000_000:
            raise Invalid("A quantity is between 0 and 1,000,000.", field="quantity")
        cleaned.append(replace(line, description=description))
    return cleaned


async def draft_invoice(
    ctx: TenantContext,
    lines: Sequence[LineInput],
    *,
    currency: str,
    subscription_id: UUID | None = None,
    billing_key: str | None = None,
    period: tuple[datetime, datetime] | None = None,
    collection_method: str = "send_invoice",
    po_number: str = "",
    gateway: str = "manual",
    settings: Settings | None = None,
) -> Invoice:
    """A draft invoice of `lines`, priced for the tenant's billing profile as it is now (the
    buyer, the seller and the VAT are snapshotted). With `billing_key`, once only: a second
    call with the same key returns the first draft (or the invoice it became)."""
    require_operator(ctx)
    async with tenant_transaction(ctx):
        return await insert_draft(
            ctx,
            lines,
            currency=currency,
            subscription_id=subscription_id,
            billing_key=billing_key,
            period=period,
            collection_method=collection_method,
            po_number=po_number,
            gateway=gateway,
            settings=settings,
        )


async def insert_draft(
    ctx: TenantContext,
    lines: Sequence[LineInput],
    *,
    currency: str,
    subscription_id: UUID | None = None,
    billing_key: str | None = None,
    period: tuple[datetime, datetime] | None = None,
    collection_method: str = "send_invoice",
    po_number: str = "",
    gateway: str = "manual",
    settings: Settings | None = None,
) -> Invoice:
    """`draft_invoice` inside the caller's open tenant transaction."""
    settings = settings or get_settings()
    code = currency_code(currency)
    cleaned = _clean_lines(lines)
    if len(po_number) > 64:
        raise Invalid("A purchase order number has at most 64 characters.", field="po_number")
    if billing_key is not None:
        existing = await fetch(
            "SELECT id FROM invoice WHERE tenant_id = $1 AND billing_key = $2",
            ctx.tenant_id,
            billing_key,
        )
        if existing:
            return await load_invoice(ctx.tenant_id, existing[0]["id"])
    seller = seller_of(settings)
    buyer = await _buyer(ctx.tenant_id, ctx.tenant.name)
    tax = taxation_for(buyer, seller)
    priced = price_lines(cleaned, tax.rate)
    sums = totals(priced)
    invoice_id = uuid4()
    inserted = await _insert_invoice(
        ctx.tenant_id,
        invoice_id,
        kind="invoice",
        credits_invoice_id=None,
        billing_key=billing_key,
        subscription_id=subscription_id,
        issuer=settings.billing_issuer,
        currency=code,
        sums=sums,
        collection_method=collection_method,
        period=period,
        po_number=po_number,
        buyer=buyer,
        seller=seller,
        tax_treatment=tax.treatment,
        tax_note=tax.note,
        gateway=gateway,
    )
    if not inserted:  # a concurrent call with the same key won
        rows = await fetch(
            "SELECT id FROM invoice WHERE tenant_id = $1 AND billing_key = $2",
            ctx.tenant_id,
            billing_key,
        )
        return await load_invoice(ctx.tenant_id, rows[0]["id"])
    await _insert_lines(ctx.tenant_id, invoice_id, priced)
    await audit.record(
        ctx, "billing.invoice.drafted", "invoice", invoice_id, total=sums.total, currency=code
    )
    return await load_invoice(ctx.tenant_id, invoice_id)


async def _insert_invoice(
    tenant_id: UUID,
    invoice_id: UUID,
    *,
    kind: str,
    credits_invoice_id: UUID | None,
    billing_key: str | None,
    subscription_id: UUID | None,
    issuer: str,
    currency: str,
    sums: Totals,
    collection_method: str,
    period: tuple[datetime | None, datetime | None] | None,
    po_number: str,
    buyer: Party,
    seller: Party,
    tax_treatment: str,
    tax_note: str,
    gateway: str,
) -> bool:
    """Insert a draft invoice or credit note (without its lines); False when another with the
    same `billing_key` is there already."""
    inserted = await fetch(
        """INSERT INTO invoice (tenant_id, id, subscription_id, kind, credits_invoice_id,
               status, billing_key, issuer, currency, subtotal, tax_total, total,
               collection_method, period_start, period_end, po_number, buyer, seller,
               tax_treatment, tax_note, gateway)
           VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $10, $11, $12, $13, $14,
               $15, $16::jsonb, $17::jsonb, $18, $19, $20)
           ON CONFLICT (tenant_id, billing_key) DO NOTHING RETURNING id""",
        tenant_id,
        invoice_id,
        subscription_id,
        kind,
        credits_invoice_id,
        billing_key,
        issuer,
        currency,
        sums.subtotal,
        sums.tax_total,
        sums.total,
        collection_method,
        period[0] if period else None,
        period[1] if period else None,
        po_number,
        json.dumps(asdict(buyer)),
        json.dumps(asdict(seller)),
        tax_treatment,
        tax_note,
        gateway,
    )
    return bool(inserted)


async def _insert_lines(
    tenant_id: UUID, invoice_id: UUID, lines: Sequence[InvoiceLine], *, locked: bool = False
) -> None:
    # One multi-row VALUES statement (Citus and row-level security refuse COPY).
    values: list[str] = []
    args: list[Any] = []
    for line in lines:
        base = len(args)
        values.append("(" + ", ".join(f"${base + i}" for i in range(1, 15)) + ")")
        args.extend(
            [
                tenant_id,
                uuid4(),
                invoice_id,
                line.position,
                line.kind,
                line.description,
                line.quantity,
                line.unit_amount,
                line.amount,
                line.tax_rate,
                line.tax_amount,
                line.period_start,
                line.period_end,
                locked,
            ]
        )
    # The placeholders are numbered here; every value is a bound parameter.
    sql = (
        "INSERT INTO invoice_line (tenant_id, id, invoice_id, position, kind, description, "  # noqa: S608
        "quantity, unit_amount, amount, tax_rate, tax_amount, period_start, period_end, "
        "locked) VALUES " + ", ".join(values)
    )
    await execute(sql, *args)


# --- issuing -----------------------------------------------------------------------------


async def _next_number(issuer: str, year: int) -> int:
    """The next number of `issuer`'s series for `year`. The counter's row stays locked until
    the issuing transaction ends, so numbers are given in commit order and a rolled-back
    issue gives its number back: gapless."""
    rows = await fetch(
        """INSERT INTO invoice_number (issuer, year, last) VALUES ($1, $2, 1)
           ON CONFLICT (issuer, year) DO UPDATE SET last = invoice_number.last + 1
           RETURNING last""",
        issuer,
        year,
    )
    return int(rows[0]["last"])


async def issue_draft(
    ctx: TenantContext, invoice_id: UUID, *, at: datetime, net_terms_days: int = 30
) -> Invoice:
    """Issue a draft inside the caller's open tenant transaction: its number, its date, its
    due date (`net_terms_days` later), its lines locked. Issuing an issued invoice returns it
    as it is."""
    invoice = await load_invoice(ctx.tenant_id, invoice_id, lock=True)
    if invoice.status != "draft":
        return invoice
    if not invoice.lines:
        raise Conflict("An invoice without lines cannot be issued.")
    sums = totals(invoice.lines)
    if (sums.subtotal, sums.tax_total, sums.total) != (
        invoice.subtotal,
        invoice.tax_total,
        invoice.total,
    ):
        raise RuntimeError(f"invoice {invoice.id}: its totals are not the sum of its lines")
    year = at.astimezone(UTC).year
    sequence = await _next_number(invoice.issuer, year)
    number = invoice_number(invoice.issuer, year, sequence)
    due_on = at.astimezone(UTC).date() + timedelta(days=net_terms_days)
    # a credit note settles what it credits the moment it is issued; an invoice of nothing
    # (a 100 % discount, a free plan, Stripe's €0 invoices) owes nothing: paid as issued
    status = "paid" if invoice.is_credit_note or invoice.total <= 0 else "open"
    await execute(
        """UPDATE invoice SET status = $3, number = $4, year = $5, issued_at = $6, due_on = $7,
               paid_at = CASE WHEN $3 = 'paid' THEN $6::timestamptz END, updated_at = $6
           WHERE tenant_id = $1 AND id = $2""",
        ctx.tenant_id,
        invoice.id,
        status,
        number,
        year,
        at,
        due_on,
    )
    await execute(
        "UPDATE invoice_line SET locked = true WHERE tenant_id = $1 AND invoice_id = $2",
        ctx.tenant_id,
        invoice.id,
    )
    action = "billing.credit_note.issued" if invoice.is_credit_note else "billing.invoice.issued"
    await audit.record(
        ctx, action, "invoice", invoice.id, number=number, total=invoice.total, due_on=due_on
    )
    return await load_invoice(ctx.tenant_id, invoice.id)


async def issue_invoice(
    ctx: TenantContext, invoice_id: UUID | str, *, at: datetime | None = None
) -> Invoice:
    """Issue a draft: it gets the next number of its issuer's series and its due date (the
    subscription's net terms, 30 days without one). Idempotent."""
    require_operator(ctx)
    wanted = uuid_or_404(invoice_id)
    moment = at or datetime.now(UTC)
    async with tenant_transaction(ctx):
        terms = await fetch(
            """SELECT s.net_terms_days FROM invoice i
               JOIN subscription s ON s.tenant_id = i.tenant_id AND s.id = i.subscription_id
               WHERE i.tenant_id = $1 AND s.tenant_id = $1 AND i.id = $2""",
            ctx.tenant_id,
            wanted,
        )
        days = terms[0]["net_terms_days"] if terms else 30
        return await issue_draft(ctx, wanted, at=moment, net_terms_days=days)


# --- a subscription's period -------------------------------------------------------------


@dataclass(frozen=True)
class BillableSubscription:
    """What invoicing a period reads of the subscription and its plan and price."""

    id: UUID
    status: str
    plan_kind: str
    plan_code: str
    plan_names: dict[str, str]
    quantity: int
    currency: str
    unit_amount: int
    period_start: datetime
    period_end: datetime
    collection_method: str
    net_terms_days: int
    po_number: str
    gateway: str
    interval: str = "month"
    overage_policy: str = "block"
    overage_unit_amount: int | None = None
    pack_seats: int | None = None
    included_seats: int | None = None


def overage_seat_price(sub: BillableSubscription) -> int:
    """What one overage seat costs (minor units of the subscription's currency): the plan
    price's `overage_unit_amount` when the catalogue sets one (0: overage is free); else the
    price of one seat of the plan: a per-seat plan's price, a seat pack's price (of the
    subscription's category) over its `pack_seats`, a licence's over its `included_seats`,
    rounded half-even to the minor unit (ADR 0020, amendment of 2026-12-04)."""
    if sub.overage_unit_amount is not None:
        return sub.overage_unit_amount
    seats = {"seat_pack": sub.pack_seats, "license": sub.included_seats}.get(sub.plan_kind, 1)
    return round(Fraction(sub.unit_amount, max(seats or 1, 1)))


async def _billable(tenant_id: UUID) -> BillableSubscription | None:
    rows = await fetch(
        """SELECT s.id, s.status, p.kind, p.code, p.names, s.quantity, s.currency,
                  pp.unit_amount, s.current_period_start, s.current_period_end,
                  s.collection_method, s.net_terms_days, s.po_number, s.gateway, p.interval,
                  p.overage_policy, pp.overage_unit_amount, p.pack_seats, p.included_seats
           FROM subscription s
           JOIN plan p ON p.id = s.plan_id
           JOIN plan_price pp ON pp.plan_id = s.plan_id AND pp.currency = s.currency
                AND pp.category = s.price_category
           WHERE s.tenant_id = $1""",
        tenant_id,
    )
    if not rows:
        return None
    row = rows[0]
    names = json.loads(row["names"]) if isinstance(row["names"], str) else row["names"]
    return BillableSubscription(
        id=row["id"],
        status=row["status"],
        plan_kind=row["kind"],
        plan_code=row["code"],
        plan_names=dict(names or {}),
        quantity=row["quantity"],
        currency=row["currency"].strip(),
        unit_amount=row["unit_amount"],
        period_start=row["current_period_start"],
        period_end=row["current_period_end"],
        collection_method=row["collection_method"],
        net_terms_days=row["net_terms_days"],
        po_number=row["po_number"],
        gateway=row["gateway"],
        interval=row["interval"],
        overage_policy=row["overage_policy"],
        overage_unit_amount=row["overage_unit_amount"],
        pack_seats=row["pack_seats"],
        included_seats=row["included_seats"],
    )


def _plan_line(sub: BillableSubscription, locale: str) -> LineInput:
    name = sub.plan_names.get(locale) or sub.plan_names.get("en") or sub.plan_code
    period = f"{sub.period_start:%Y-%m-%d} – {sub.period_end:%Y-%m-%d}"
    if sub.plan_kind == "per_seat":
        kind, quantity = "subscription", sub.quantity
    elif sub.plan_kind == "seat_pack":
        kind, quantity = "seat_pack", sub.quantity
    else:
        kind, quantity = "license", 1
    return LineInput(
        kind=kind,
        description=f"{name} ({period})",
        quantity=quantity,
        unit_amount=sub.unit_amount,
        period_start=sub.period_start,
        period_end=sub.period_end,
    )


async def _pending_charges(tenant_id: UUID, subscription_id: UUID) -> list[dict[str, Any]]:
    return await fetch(
        """SELECT id, kind, description, quantity, amount, currency, period_start, period_end
           FROM pending_charge
           WHERE tenant_id = $1 AND subscription_id = $2 AND invoiced_at IS NULL
           ORDER BY created_at, id FOR UPDATE""",
        tenant_id,
        subscription_id,
    )


def _charge_line(row: dict[str, Any]) -> LineInput:
    kind = {"proration": "proration", "overage": "overage"}.get(row["kind"], "adjustment")
    quantity = max(int(row["quantity"]), 0)
    amount = int(row["amount"])
    # the unit price printed is the amount's share when it divides evenly, else the amount
    unit = amount // quantity if quantity and amount % quantity == 0 else amount
    return LineInput(
        kind=kind,
        description=row["description"],
        quantity=quantity if unit * quantity == amount else 1,
        unit_amount=unit,
        amount=amount,
        period_start=row["period_start"],
        period_end=row["period_end"],
    )


def _billable_charges(
    lines: Sequence[LineInput], charges: Sequence[dict[str, Any]], currency: str
) -> list[dict[str, Any]]:
    """The waiting charges this invoice takes: every charge in its currency, but a credit
    (a downgrade's refund of unused time) only while the invoice stays at zero or more; the
    rest waits for the next invoice, since an invoice below zero would be a credit note."""
    net = sum(
        line.quantity * line.unit_amount if line.amount is None else line.amount for line in lines
    )
    ours = [row for row in charges if row["currency"].strip() == currency]
    taken = [row for row in ours if row["amount"] >= 0]
    net += sum(int(row["amount"]) for row in taken)
    for row in ours:
        if row["amount"] < 0 and net + row["amount"] >= 0:
            taken.append(row)
            net += int(row["amount"])
    chosen = {row["id"] for row in taken}
    return [row for row in ours if row["id"] in chosen]  # in the order they were made


def overage_charges(
    owed: list[SeatOverage], unit_amount: int, until: datetime
) -> list[tuple[SeatOverage, LineInput | None]]:
    """Each period of `owed` (oldest first, from `billing.seats.unbilled_overage`) with the
    line that charges it at `unit_amount`: from its start to the next owed period's, the last
    one to `until`. None for free overage (a zero price): nothing to charge, recorded as
    billed all the same. What Jalon's invoices carry and what Stripe's invoice items copy."""
    charges: list[tuple[SeatOverage, LineInput | None]] = []
    for index, overage in enumerate(owed):
        end = owed[index + 1].period_start if index + 1 < len(owed) else until
        line = (
            LineInput(
                kind="overage",
                description=(
                    f"Sièges au-delà de l'allocation / Seats beyond the allowance "
                    f"({overage.period_start:%Y-%m-%d} – {end:%Y-%m-%d})"
                ),
                quantity=overage.seats,
                unit_amount=unit_amount,
                period_start=overage.period_start,
                period_end=end,
            )
            if unit_amount > 0
            else None
        )
        charges.append((overage, line))
    return charges


async def overage_lines(
    ctx: TenantContext, sub: BillableSubscription, *, before: datetime
) -> tuple[list[LineInput], list[SeatOverage]]:
    """The overage lines Jalon's next invoice carries: the seats used beyond the allowance,
    not billed yet, of every period that began before `before` under the `bill` policy
    (billed in arrears: the period that just ended goes on the next period's invoice, or on
    the final invoice at cancellation), at `overage_seat_price`; and what the caller marks
    billed (`billing.seats.mark_overage_billed`) once its invoice is drafted. The ledger's
    rows stay locked until the caller's transaction ends."""
    owed = await unbilled_overage(ctx, before, lock=True)
    charges = overage_charges(owed, overage_seat_price(sub), before)
    return [line for _, line in charges if line is not None], owed


async def bill_period(
    ctx: TenantContext, *, at: datetime | None = None, locale: str = "fr"
) -> Invoice | None:
    """Issue the invoice of the subscription's current period: the plan's line and every
    charge waiting (prorations, overage), each billed once. Once only per period (a second
    call returns the same invoice); None without a subscription to bill (none, trialing or
    canceled). The number, due date and lines are final when it returns."""
    ctx.require(Permission.BILLING_MANAGE)
    moment = at or datetime.now(UTC)
    async with tenant_transaction(ctx):
        sub = await _billable(ctx.tenant_id)
        if sub is None or sub.status in ("trialing", "canceled"):
            return None
        key = f"period:{sub.id}:{sub.period_start.isoformat()}"
        plan_line = _plan_line(sub, locale)
        lines = [plan_line] if plan_line.quantity else []
        # Stripe bills a Stripe subscription's overage itself (`billing.inbox`)
        overage, owed = (
            await overage_lines(ctx, sub, before=sub.period_start)
            if sub.gateway == "manual"
            else ([], [])
        )
        lines += overage
        charges = _billable_charges(
            lines, await _pending_charges(ctx.tenant_id, sub.id), sub.currency
        )
        lines += [_charge_line(row) for row in charges]
        if not lines:
            return None
        draft = await insert_draft(
            ctx,
            lines,
            currency=sub.currency,
            subscription_id=sub.id,
            billing_key=key,
            period=(sub.period_start, sub.period_end),
            collection_method=sub.collection_method,
            po_number=sub.po_number,
            gateway=sub.gateway,
        )
        if draft.status == "draft" and charges:
            await execute(
                """UPDATE pending_charge SET invoice_id = $3, invoiced_at = $4
                   WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND invoiced_at IS NULL""",
                ctx.tenant_id,
                [row["id"] for row in charges],
                draft.id,
                moment,
            )
        if draft.status == "draft" and owed:
            await mark_overage_billed(ctx, owed)
        issued = await issue_draft(ctx, draft.id, at=moment, net_terms_days=sub.net_terms_days)
        if draft.status == "draft" and issued.gateway == "manual":
            await mail_issued(ctx, issued)
        return issued


async def bill_seat_pack(
    ctx: TenantContext, pack: SeatPack, *, at: datetime | None = None, locale: str = "fr"
) -> Invoice | None:
    """Issue the invoice of a seat pack an account manager added during a period
    (`billing.seats.add_seat_pack`), beyond the packs the subscription's period bills: as
    many packs of the plan's size as its seats need, at the plan's price for the pack's
    category (public, reduced, full…), its reference as the purchase order. Once only per
    pack; None when the tenant is not on a seat-pack plan or the plan has no price for the
    category."""
    require_operator(ctx)
    moment = at or datetime.now(UTC)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT s.id, s.currency, s.collection_method, s.net_terms_days, s.po_number,
                      s.gateway, p.kind, p.code, p.names, p.pack_seats, pp.unit_amount
               FROM subscription s
               JOIN plan p ON p.id = s.plan_id
               JOIN plan_price pp ON pp.plan_id = s.plan_id AND pp.currency = s.currency
                    AND pp.category = $2
               WHERE s.tenant_id = $1""",
            ctx.tenant_id,
            pack.category,
        )
        if not rows or rows[0]["kind"] != "seat_pack" or not rows[0]["pack_seats"]:
            return None
        row = rows[0]
        names = json.loads(row["names"]) if isinstance(row["names"], str) else row["names"]
        name = (names or {}).get(locale) or (names or {}).get("en") or row["code"]
        packs = -(-pack.seats // row["pack_seats"])  # a pack started is a pack bought
        line = LineInput(
            kind="seat_pack",
            description=(
                f"{name}: {pack.seats} sièges / seats, "
                f"{pack.starts_on:%Y-%m-%d} – {pack.ends_on:%Y-%m-%d}"
            ),
            quantity=packs,
            unit_amount=row["unit_amount"],
        )
        draft = await insert_draft(
            ctx,
            [line],
            currency=row["currency"].strip(),
            subscription_id=row["id"],
            billing_key=f"seat_pack:{pack.id}",
            collection_method=row["collection_method"],
            po_number=(pack.reference or row["po_number"])[:64],
            gateway="manual",
        )
        issued = await issue_draft(ctx, draft.id, at=moment, net_terms_days=row["net_terms_days"])
        if draft.status == "draft":
            await mail_issued(ctx, issued)
        return issued


# --- credit notes ------------------------------------------------------------------------


async def credit_invoice(
    ctx: TenantContext, invoice_id: UUID | str, *, reason: str, at: datetime | None = None
) -> Invoice:
    """Void an open invoice the only lawful way: a credit note that repeats its lines, issued
    with its own number; the invoice becomes `void`. The credit note is returned. An invoice
    already voided returns its credit note; a paid one is a `Conflict` (refund it first)."""
    require_operator(ctx)
    wanted = uuid_or_404(invoice_id)
    moment = at or datetime.now(UTC)
    reason = reason.strip()[:500]
    async with tenant_transaction(ctx):
        invoice = await load_invoice(ctx.tenant_id, wanted, lock=True)
        if invoice.is_credit_note:
            raise Conflict("A credit note cannot itself be credited.")
        if invoice.status == "void":
            rows = await fetch(
                """SELECT id FROM invoice WHERE tenant_id = $1 AND credits_invoice_id = $2
                   ORDER BY created_at LIMIT 1""",
                ctx.tenant_id,
                invoice.id,
            )
            return await load_invoice(ctx.tenant_id, rows[0]["id"])
        if invoice.status not in ("open", "uncollectible"):
            raise Conflict("Only an issued, unpaid invoice can be voided by a credit note.")
        if invoice.amount_paid > 0:
            # the money received would vanish with the voided invoice: refund it first
            raise Conflict("Part of this invoice was paid: record a refund first, then credit it.")
        note_id = uuid4()
        mention = f"Avoir sur la facture / Credit note for invoice {invoice.number}."
        await _insert_invoice(
            ctx.tenant_id,
            note_id,
            kind="credit_note",
            credits_invoice_id=invoice.id,
            billing_key=None,
            subscription_id=invoice.subscription_id,
            issuer=invoice.issuer,
            currency=invoice.currency,
            sums=Totals(invoice.subtotal, invoice.tax_total, invoice.total),
            collection_method=invoice.collection_method,
            period=(invoice.period_start, invoice.period_end),
            po_number=invoice.po_number,
            buyer=invoice.buyer,
            seller=invoice.seller,
            tax_treatment=invoice.tax_treatment,
            tax_note=f"{invoice.tax_note} {mention}".strip(),
            gateway=invoice.gateway,
        )
        await _insert_lines(ctx.tenant_id, note_id, invoice.lines)
        note = await issue_draft(ctx, note_id, at=moment)
        await execute(
            """UPDATE invoice SET status = 'void', voided_at = $3, updated_at = $3
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            invoice.id,
            moment,
        )
        await audit.record(
            ctx,
            "billing.invoice.voided",
            "invoice",
            invoice.id,
            number=invoice.number,
            credit_note=note.number,
            reason=reason,
        )
        return note


BAD_CREDIT_AMOUNT = N_("Credit an amount between 0.01 and what is still due ({due}).")
NOT_CREDITABLE = N_("Only an issued invoice with something still due can be credited.")
CREDIT_ON_GATEWAY = N_(
    "This invoice is billed by the payment service: issue the credit note there."
)
MIXED_RATES_PARTIAL_CREDIT = N_(
    "This invoice has lines at different VAT rates: credit it in full, or issue an invoice "
    "adjustment line by line."
)


async def credit_invoice_amount(
    ctx: TenantContext,
    invoice_id: UUID | str,
    *,
    amount: int,
    reason: str,
    at: datetime | None = None,
) -> Invoice:
    """A credit note of `amount` (minor units, tax included) against an open invoice, up to
    what is still due on it: the whole amount due of an invoice nothing was paid on voids it
    (`credit_invoice`); any other amount is a partial credit note of one adjustment line whose
    VAT is the VAT the amount contains at the invoice's rate (rounded half away from zero),
    issued with its own number and set against the invoice like a payment (its
    `amount_paid`, so the invoice is `paid` once credits and payments cover it, and a
    subscription past due for it is settled like after a payment). `Conflict` for an invoice
    a payment service bills (credit it there) and for a partial credit of an invoice whose
    lines have different VAT rates. Audited as `billing.invoice.credited` with the reason.
    The credit note is returned."""
    require_operator(ctx)
    wanted = uuid_or_404(invoice_id)
    moment = at or datetime.now(UTC)
    reason = reason.strip()[:500]
    async with tenant_transaction(ctx):
        invoice = await load_invoice(ctx.tenant_id, wanted, lock=True)
        if invoice.is_credit_note or invoice.status not in ("open", "uncollectible"):
            raise Conflict(NOT_CREDITABLE)
        if invoice.gateway != "manual":
            # the payment service would go on collecting the whole invoice
            raise Conflict(CREDIT_ON_GATEWAY)
        due = invoice.total - invoice.amount_paid
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= due:
            raise Invalid(BAD_CREDIT_AMOUNT, field="amount", due=str(invoice.money(due)))
        full = amount == due and invoice.amount_paid == 0
        if not full and len({line.tax_rate for line in invoice.lines}) > 1:
            # a partial credit has one line at one rate: which one would be a guess
            raise Conflict(MIXED_RATES_PARTIAL_CREDIT)
    if full:
        return await credit_invoice(ctx, wanted, reason=reason, at=moment)
    async with tenant_transaction(ctx):
        # the subscription first, then the invoice: the order payments take them in
        await fetch("SELECT id FROM subscription WHERE tenant_id = $1 FOR UPDATE", ctx.tenant_id)
        invoice = await load_invoice(ctx.tenant_id, wanted, lock=True)
        due = invoice.total - invoice.amount_paid
        if invoice.status not in ("open", "uncollectible") or not 0 < amount <= due:
            raise Conflict(NOT_CREDITABLE)  # it changed in between
        rate = invoice.lines[0].tax_rate if invoice.lines else 0
        tax = _round_half_away(Fraction(amount * rate, 10_000 + rate))
        line = InvoiceLine(
            position=0,
            kind="adjustment",
            description=(
                f"Avoir partiel sur la facture / Partial credit for invoice {invoice.number}: "
                f"{reason}"
            )[:500],
            quantity=1,
            unit_amount=amount - tax,
            amount=amount - tax,
            tax_rate=rate,
            tax_amount=tax,
        )
        note_id = uuid4()
        mention = f"Avoir sur la facture / Credit note for invoice {invoice.number}."
        await _insert_invoice(
            ctx.tenant_id,
            note_id,
            kind="credit_note",
            credits_invoice_id=invoice.id,
            billing_key=None,
            subscription_id=invoice.subscription_id,
            issuer=invoice.issuer,
            currency=invoice.currency,
            sums=totals([line]),
            collection_method=invoice.collection_method,
            period=(invoice.period_start, invoice.period_end),
            po_number=invoice.po_number,
            buyer=invoice.buyer,
            seller=invoice.seller,
            tax_treatment=invoice.tax_treatment,
            tax_note=f"{invoice.tax_note} {mention}".strip(),
            gateway=invoice.gateway,
        )
        await _insert_lines(ctx.tenant_id, note_id, [line])
        note = await issue_draft(ctx, note_id, at=moment)
        settled = invoice.amount_paid + amount
        await execute(
            """UPDATE invoice SET amount_paid = $3,
                   status = CASE WHEN $3 >= total THEN 'paid' ELSE status END,
                   paid_at = CASE WHEN $3 >= total THEN $4::timestamptz ELSE paid_at END,
                   updated_at = $4
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            invoice.id,
            settled,
            moment,
        )
        await audit.record(
            ctx,
            "billing.invoice.credited",
            "invoice",
            invoice.id,
            number=invoice.number,
            credit_note=note.number,
            amount=amount,
            currency=invoice.currency,
            reason=reason,
        )
        if settled >= invoice.total:
            # what was overdue may be settled now: a past-due subscription is active again
            await settle(ctx, at=moment)
        return note


# --- payments ----------------------------------------------------------------------------

PAYMENT_METHODS = ("bank_transfer", "card", "sepa_debit")


@dataclass(frozen=True)
class Payment:
    """Money received against an invoice."""

    id: UUID
    invoice_id: UUID
    amount: int
    currency: str
    method: str
    reference: str
    received_on: date


@dataclass(frozen=True)
class PaymentApplied:
    """What recording a payment did: the payment (None when this reference was already
    recorded) and the invoice after it."""

    payment: Payment | None
    invoice: Invoice


async def apply_payment(
    ctx: TenantContext,
    invoice_id: UUID,
    *,
    amount: int,
    method: str,
    reference: str,
    received_on: date,
    at: datetime,
) -> PaymentApplied:
    """Record a payment inside the caller's open tenant transaction; the invoice is `paid`
    once what was received covers its total. The same non-empty reference for the same
    invoice and method is recorded once (a bank statement imported twice)."""
    if method not in PAYMENT_METHODS:
        raise Invalid("Unknown payment method.", field="method")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise Invalid("A payment is a positive amount.", field="amount")
    reference = reference.strip()
    if len(reference) > 140:
        raise Invalid("A payment reference has at most 140 characters.", field="reference")
    if method == "bank_transfer" and not reference:
        # the bank's reference is what makes a statement imported twice count once
        raise Invalid("A bank transfer needs the bank's reference.", field="reference")
    invoice = await load_invoice(ctx.tenant_id, invoice_id, lock=True)
    if invoice.is_credit_note or invoice.status not in ("open", "uncollectible", "paid"):
        raise Conflict("Only an issued invoice can be paid.")
    if reference and await fetch(
        """SELECT 1 FROM payment WHERE tenant_id = $1 AND invoice_id = $2 AND method = $3
               AND reference = $4""",
        ctx.tenant_id,
        invoice.id,
        method,
        reference,
    ):
        return PaymentApplied(None, invoice)  # recorded already: a statement imported twice
    if invoice.status == "paid":
        raise Conflict("This invoice is paid already: the payment was not recorded.")
    due = invoice.total - invoice.amount_paid
    if amount > due:
        # Overpayments are refused, not kept as a credit: Jalon has no customer balance yet.
        raise Conflict(
            "This payment is more than the {due} still due: it was not recorded.",
            due=str(invoice.money(due)),
        )
    payment_id = uuid4()
    inserted = await fetch(
        """INSERT INTO payment (tenant_id, id, invoice_id, amount, currency, method, reference,
               received_on, recorded_by, recorded_by_label)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (tenant_id, invoice_id, method, reference) WHERE reference <> ''
           DO NOTHING RETURNING id""",
        ctx.tenant_id,
        payment_id,
        invoice.id,
        amount,
        invoice.currency,
        method,
        reference,
        received_on,
        ctx.actor.user_id,
        ctx.actor.label,
    )
    if not inserted:
        return PaymentApplied(None, invoice)
    paid = invoice.amount_paid + amount
    await execute(
        """UPDATE invoice SET amount_paid = $3,
               status = CASE WHEN $3 >= total THEN 'paid' ELSE status END,
               paid_at = CASE WHEN $3 >= total THEN $4::timestamptz ELSE paid_at END,
               updated_at = $4
           WHERE tenant_id = $1 AND id = $2""",
        ctx.tenant_id,
        invoice.id,
        paid,
        at,
    )
    await audit.record(
        ctx,
        "billing.payment.recorded",
        "invoice",
        invoice.id,
        number=invoice.number,
        amount=amount,
        method=method,
        reference=reference,
    )
    payment = Payment(
        payment_id, invoice.id, amount, invoice.currency, method, reference, received_on
    )
    return PaymentApplied(payment, await load_invoice(ctx.tenant_id, invoice.id))


# --- mail ----------------------------------------------------------------------------------

INVOICE_ISSUED = (
    N_("Invoice {number} from {seller}"),
    N_(
        "Hello,\n\nInvoice {number} for {organization} is available: {amount}, due on "
        "{due_on}.\n{payment}\nDownload it: {link}\n"
    ),
)
PAY_BY_TRANSFER = N_("Please pay by bank transfer to {iban}, quoting {number}.")


async def mail_issued(ctx: TenantContext, invoice: Invoice) -> int:
    """Tell the tenant an invoice was issued, with its link and how to pay it."""
    link = f"{notices.invoices_link(ctx)}/{invoice.id}.pdf"
    people = await notices.recipients(ctx)
    for email, locale in people:
        payment = ""
        if invoice.collection_method == "send_invoice" and invoice.seller.iban:
            payment = translate(
                locale, PAY_BY_TRANSFER, iban=invoice.seller.iban, number=invoice.number
            )
        values = {
            "number": invoice.number,
            "seller": invoice.seller.name,
            "organization": ctx.tenant.name,
            "amount": invoice.money(invoice.total).format(locale),
            "due_on": format_day(invoice.due_on, locale, width="long"),
            "payment": payment,
            "link": link,
        }
        await queue_mail(
            email,
            translate(locale, INVOICE_ISSUED[0], **values),
            translate(locale, INVOICE_ISSUED[1], **values),
            zone=ctx.tenant.timezone,
        )
    return len(people)
