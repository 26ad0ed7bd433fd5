"""An issued invoice as a PDF (an HTML template through WeasyPrint) and, for French public
buyers, as a Factur-X EN 16931 PDF/A-3 carrying its XML (`billing.facturx`).

Documents are made on demand from the invoice record, which never changes once issued: there
is no file to keep, lose or let drift from the record.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from billing import facturx
from billing.invoices import Invoice, get_invoice
from billing.money import Money
from core.errors import NotFound
from core.i18n import translate
from core.l10n import format_day
from tenants.context import TenantContext

TEMPLATES = Path(__file__).parent / "templates"
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), enable_async=False
)


@dataclass(frozen=True)
class InvoiceDocument:
    """A file to hand over: its name, media type and bytes."""

    file_name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class _Line:
    description: str
    quantity: int
    unit_price: str
    rate: str
    amount: str


def title_of(invoice: Invoice, locale: str) -> str:
    if invoice.is_credit_note:
        return translate(locale, "Credit note")
    return translate(locale, "Invoice")


def invoice_html(invoice: Invoice, locale: str, credited_number: str | None = None) -> str:
    """The invoice as printable HTML in `locale` (labels translated; amounts and dates as
    the locale writes them)."""

    def money(amount: int) -> str:
        return Money(amount, invoice.currency).format(locale)

    def day(value: Any) -> str:
        return format_day(value, locale, width="long")

    lines = [
        _Line(
            description=line.description,
            quantity=line.quantity,
            unit_price=money(line.unit_amount),
            rate=f"{line.tax_rate / 100:g} %",
            amount=money(line.amount),
        )
        for line in invoice.lines
    ]
    period = ""
    if invoice.period_start and invoice.period_end:
        period = f"{day(invoice.period_start.date())} – {day(invoice.period_end.date())}"
    template = _ENVIRONMENT.get_template("invoice.html")
    return template.render(
        _=lambda message, **params: translate(locale, message, **params),
        locale=locale,
        title=title_of(invoice, locale),
        invoice=invoice,
        lines=lines,
        issued_on=day(invoice.issued_at.date() if invoice.issued_at else None),
        due_on=day(invoice.due_on),
        period=period,
        credited_number=credited_number,
        subtotal=money(invoice.subtotal),
        tax_total=money(invoice.tax_total),
        total=money(invoice.total),
    )


def render_pdf(invoice: Invoice, locale: str, credited_number: str | None = None) -> bytes:
    """The invoice's PDF (PDF/A-3b, so that Factur-X may embed its XML in it); CPU-bound:
    call it in a thread."""
    from weasyprint import HTML

    html = invoice_html(invoice, locale, credited_number)
    with warnings.catch_warnings():
        # WeasyPrint opens its sRGB profile for PDF/A and never closes it (the file is read,
        # then dropped at once, here): a ResourceWarning about its own file, not ours.
        warnings.simplefilter("ignore", ResourceWarning)
        pdf: bytes = HTML(string=html, base_url=str(TEMPLATES)).write_pdf(pdf_variant="pdf/a-3b")
    return pdf


def render_facturx(
    invoice: Invoice,
    locale: str,
    credited: Invoice | None = None,
) -> bytes:
    """The invoice's Factur-X PDF/A-3 (EN 16931 XML embedded and checked against its schema)."""
    credited_number = credited.number if credited else None
    pdf = render_pdf(invoice, locale, credited_number)
    xml = facturx.cii_xml(
        invoice,
        credited_number=credited_number,
        credited_on=credited.issued_at.date() if credited and credited.issued_at else None,
    )
    return facturx.facturx_pdf(
        pdf, xml, title=f"{title_of(invoice, locale)} {invoice.number}", lang=locale
    )


async def _with_credited(ctx: TenantContext, invoice_id: str) -> tuple[Invoice, Invoice | None]:
    invoice = await get_invoice(ctx, invoice_id)
    if invoice.number is None:
        raise NotFound()  # a draft is nobody's document yet
    credited = None
    if invoice.credits_invoice_id is not None:
        credited = await get_invoice(ctx, invoice.credits_invoice_id)
    return invoice, credited


async def invoice_pdf(ctx: TenantContext, invoice_id: str, locale: str) -> InvoiceDocument:
    """The PDF of one of the tenant's issued invoices: a Factur-X PDF/A-3 for a French public
    buyer, a plain PDF otherwise. `NotFound` for drafts and other tenants' ids."""
    invoice, credited = await _with_credited(ctx, invoice_id)
    if invoice.for_chorus:
        content = await asyncio.to_thread(render_facturx, invoice, locale, credited)
    else:
        number = credited.number if credited else None
        content = await asyncio.to_thread(render_pdf, invoice, locale, number)
    return InvoiceDocument(f"{invoice.number}.pdf", "application/pdf", content)


async def invoice_xml(ctx: TenantContext, invoice_id: str) -> InvoiceDocument:
    """The EN 16931 XML of an issued invoice to a French public buyer (what Chorus Pro
    takes); `NotFound` for any other invoice."""
    invoice, credited = await _with_credited(ctx, invoice_id)
    if not invoice.for_chorus:
        raise NotFound()
    xml = facturx.cii_xml(
        invoice,
        credited_number=credited.number if credited else None,
        credited_on=credited.issued_at.date() if credited and credited.issued_at else None,
    )
    return InvoiceDocument(f"{invoice.number}.xml", "application/xml", xml)
