"""Payments received against invoices: bank transfers recorded by our account managers (the
back office and `jalon billing record-payment`), and payments a gateway reports.

A tenant's own people never record payments: the function takes a staff member, or a context
whose actor is the system (a gateway's webhook job). A payment that settles what was overdue
makes a past-due or suspended subscription active again, in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal, DecimalException

from billing.dunning import settle
from billing.invoices import PaymentApplied, apply_payment
from billing.money import minor_digits
from core.database import fetch, tenant_transaction
from core.errors import Forbidden, Invalid, NotFound
from core.i18n import N_
from core.ids import uuid_or_404
from tenants.context import StaffContext, TenantContext
from tenants.permissions import StaffPermission

BAD_AMOUNT = N_("Give the amount received, such as 1200.50.")
AMBIGUOUS_AMOUNT = N_(
    "A comma followed by three digits is ambiguous (a thousands separator?): write 1200 or 1200.00."
)
AMBIGUOUS_POINT_AMOUNT = N_(
    "A point followed by three digits is ambiguous (a thousands separator?): "
    "write 1200 or 1 200,00."
)
TOO_LARGE_AMOUNT = N_("That amount is too large for one payment.")
#: The largest payment recorded at once, in minor units (ten billion euros).
MAX_AMOUNT = 10**12
#: Digits, then at most one decimal separator ('.' or ',') and decimals: no thousands
#: separators, no signs, no exponents, ASCII digits only.
_AMOUNT = re.compile(r"([0-9]{1,16})(?:([.,])([0-9]{1,16}))?", re.ASCII)


#: Thousands written with groups of three digits, the decimals after the other separator:
#: "1 200,50" (spaces, no-break spaces or thin spaces, then a comma or a point), "1,200.50"
#: (commas, then a point) and "1.200,50" (points, then a comma).
_SPACE_GROUPED = re.compile(r"[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+(?:[.,][0-9]+)?", re.ASCII)
_COMMA_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+\.[0-9]+", re.ASCII)
_POINT_GROUPED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]+", re.ASCII)


def ungrouped(text: str) -> str:
    """`text` without its thousands separators when it is grouped unambiguously (see the
    patterns above): "1 200,50" -> "1200,50", "1,200.50" -> "1200.50", "1.200,50" ->
    "1200,50"; anything else as it was typed (stripped), for `parse_amount` to judge. A
    lone "1,200" keeps its comma (it may be a decimal one) and `parse_amount` refuses it."""
    stripped = text.strip()
    if _SPACE_GROUPED.fullmatch(stripped):
        return re.sub("[ \u00a0\u202f]", "", stripped)
    if _COMMA_GROUPED.fullmatch(stripped):
        return stripped.replace(",", "")
    if _POINT_GROUPED.fullmatch(stripped):
        return stripped.replace(".", "")
    return stripped


def parse_amount(text: str, currency: str) -> int:
    """`"1200.50"` (or `"1200,50"`, `"1 200,50"`, `"1,200.50"`, `"1.200,50"`) in `currency`
    as minor units (120050 for EUR); `Invalid` for anything that is not a positive amount
    with at most the currency's decimals and at most `MAX_AMOUNT` minor units. A comma
    followed by exactly three digits and nothing else ("1,200") is refused: it may be a
    thousands separator or a decimal one; so is a point followed by exactly three digits
    ("1.200": 1 200 in French or German, 1.20 in English)."""
    match = _AMOUNT.fullmatch(ungrouped(text))
    if match is None:
        raise Invalid(BAD_AMOUNT, field="amount")
    whole, separator, decimals = match.groups()
    if separator == "," and len(decimals) == 3:
        raise Invalid(AMBIGUOUS_AMOUNT, field="amount")
    if separator == "." and len(decimals) == 3:
        raise Invalid(AMBIGUOUS_POINT_AMOUNT, field="amount")
    try:
        value = Decimal(f"{whole}.{decimals or '0'}")
        minor = value.scaleb(minor_digits(currency))
        exact = minor == minor.to_integral_value()
    except DecimalException:
        raise Invalid(BAD_AMOUNT, field="amount") from None
    if value <= 0 or not exact:
        raise Invalid(BAD_AMOUNT, field="amount")
    if minor > MAX_AMOUNT:
        raise Invalid(TOO_LARGE_AMOUNT, field="amount")
    return int(minor)


async def record_payment(
    ctx: TenantContext,
    staff: StaffContext | None,
    invoice_id: str,
    *,
    amount: int,
    method: str = "bank_transfer",
    reference: str = "",
    received_on: date | None = None,
    at: datetime | None = None,
) -> PaymentApplied:
    """Record `amount` (minor units of the invoice's currency) received for one of the
    tenant's invoices, by `staff` (who needs `staff:billing:manage`; the audit log names
    them) or, without staff, by the system. Once per non-empty bank `reference`."""
    if staff is not None:
        staff.require(StaffPermission.BILLING_MANAGE)
        ctx = replace(ctx, actor=staff.actor)
    elif ctx.actor.kind != "system":
        raise Forbidden()
    moment = at or datetime.now(UTC)
    async with tenant_transaction(ctx):
        # The subscription first, then the invoice: the order the webhook job takes them in
        # (and `settle` below), so that the two never wait for each other.
        await fetch("SELECT id FROM subscription WHERE tenant_id = $1 FOR UPDATE", ctx.tenant_id)
        applied = await apply_payment(
            ctx,
            uuid_or_404(invoice_id),
            amount=amount,
            method=method,
            reference=reference,
            received_on=received_on or moment.date(),
            at=moment,
        )
        if applied.payment is not None and applied.invoice.status == "paid":
            await settle(ctx, at=moment)
    return applied


async def invoice_id_by_number(ctx: TenantContext, number: str) -> str:
    """The id of the tenant's invoice numbered `number`; `NotFound` otherwise."""
    async with tenant_transaction(ctx):
        rows = await fetch(
            "SELECT id FROM invoice WHERE tenant_id = $1 AND number = $2",
            ctx.tenant_id,
            number.strip(),
        )
    if not rows:
        raise NotFound()
    return str(rows[0]["id"])
