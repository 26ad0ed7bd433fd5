"""Invoice documents: a PDF that pdftotext reads back, and for a French public buyer a
Factur-X EN 16931 PDF/A-3 whose XML the `factur-x` library validates against its schema,
with what Chorus Pro routes on (SIRET, service code, purchase order)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import facturx as facturx_lib
import pytest

from billing import invoices, pdf
from billing.facturx import RAM, cii_xml
from billing.subscriptions import subscribe
from core.database import execute
from core.errors import NotFound
from tests.billing.plans import licence_plan, per_seat_plan
from tests.billing.test_invoices import NOW, set_profile, system
from tests.conftest import TenantFixture
from tests.db import as_tenant

CITY_SIRET = "21750001600019"


def pdf_text(content: bytes, tmp_path: Path) -> str:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(content)
    result = subprocess.run(
        ["/usr/bin/pdftotext", "-layout", str(path), "-"],
        capture_output=True,
        check=True,
        text=True,
    )
    return " ".join(result.stdout.split())


async def public_buyer_invoice(tenant: TenantFixture) -> invoices.Invoice:
    plan = await licence_plan(1_200_000, seats=200)
    await subscribe(tenant.owner_ctx, plan.code, at=NOW, trial=False)
    async with as_tenant(tenant.id):
        await execute(
            "UPDATE subscription SET po_number = 'BC-2026-0042' WHERE tenant_id = $1", tenant.id
        )
    await set_profile(
        tenant,
        legal_name="Ville de Belleval",
        buyer_kind="public",
        siret=CITY_SIRET,
        chorus_service_code="SERVICE-FIN",
    )
    invoice = await invoices.bill_period(tenant.owner_ctx, at=NOW, locale="fr")
    assert invoice is not None
    return invoice


async def test_a_public_buyer_gets_a_facturx_pdf_with_valid_xml(
    tenant_a: TenantFixture, tmp_path: Path
) -> None:
    invoice = await public_buyer_invoice(tenant_a)
    assert invoice.for_chorus
    document = await pdf.invoice_pdf(tenant_a.owner_ctx, str(invoice.id), "fr")
    assert document.content.startswith(b"%PDF")
    assert document.file_name == f"{invoice.number}.pdf"
    name, xml = facturx_lib.get_xml_from_pdf(document.content, check_xsd=False)
    assert name == "factur-x.xml"
    assert facturx_lib.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    tree = ET.fromstring(xml)  # noqa: S314
    ns = {"ram": RAM}
    assert tree.findtext(".//ram:BuyerReference", namespaces=ns) == "SERVICE-FIN"
    buyer = tree.find(".//ram:BuyerTradeParty", ns)
    assert buyer is not None
    assert buyer.findtext("ram:SpecifiedLegalOrganization/ram:ID", namespaces=ns) == CITY_SIRET
    order = ".//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID"
    assert tree.findtext(order, namespaces=ns) == "BC-2026-0042"
    assert tree.findtext(".//ram:GrandTotalAmount", namespaces=ns) == "14400.00"
    text = pdf_text(document.content, tmp_path)
    assert invoice.number is not None
    assert invoice.number in text
    assert "Ville de Belleval" in text
    assert "14 400,00" in text  # the total in French, VAT included
    xml_document = await pdf.invoice_xml(tenant_a.owner_ctx, str(invoice.id))
    assert xml_document.content == xml


async def test_a_credit_note_refers_to_the_invoice_it_credits(tenant_a: TenantFixture) -> None:
    invoice = await public_buyer_invoice(tenant_a)
    note = await invoices.credit_invoice(system(tenant_a), invoice.id, reason="error")
    xml = (await pdf.invoice_xml(tenant_a.owner_ctx, str(note.id))).content
    assert facturx_lib.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    tree = ET.fromstring(xml)  # noqa: S314
    ns = {"ram": RAM}
    assert tree.findtext(".//ram:TypeCode", namespaces=ns) == "381"
    referenced = ".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID"
    assert tree.findtext(referenced, namespaces=ns) == invoice.number


async def test_a_business_gets_a_plain_pdf_that_reads_back(
    tenant_a: TenantFixture, tmp_path: Path
) -> None:
    plan = await per_seat_plan(1250, trial_days=0)
    await subscribe(tenant_a.owner_ctx, plan.code, at=NOW, quantity=4, trial=False)
    await set_profile(tenant_a, legal_name="Atelier SARL")
    invoice = await invoices.bill_period(tenant_a.owner_ctx, at=NOW, locale="en")
    assert invoice is not None
    assert not invoice.for_chorus
    document = await pdf.invoice_pdf(tenant_a.owner_ctx, str(invoice.id), "en")
    assert b"factur-x.xml" not in document.content
    text = pdf_text(document.content, tmp_path)
    assert invoice.number is not None
    assert invoice.number in text
    assert "Atelier SARL" in text
    assert "€60.00" in text  # 4 × 12.50 + 20 % VAT
    with pytest.raises(NotFound):
        await pdf.invoice_xml(tenant_a.owner_ctx, str(invoice.id))


async def test_reverse_charge_xml_says_ae_with_no_vat(tenant_a: TenantFixture) -> None:
    invoice = await public_buyer_invoice(tenant_a)
    issued = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    foreign = invoices.Invoice(
        **{
            **issued.__dict__,
            "tax_treatment": "reverse_charge",
            "tax_total": 0,
            "total": issued.subtotal,
            "lines": tuple(
                invoices.InvoiceLine(**{**line.__dict__, "tax_rate": 0, "tax_amount": 0})
                for line in issued.lines
            ),
        }
    )
    xml = cii_xml(foreign)
    assert facturx_lib.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert b"<ram:CategoryCode>AE</ram:CategoryCode>" in xml
    assert b"VATEX-EU-AE" in xml
    outside = invoices.Invoice(**{**foreign.__dict__, "tax_treatment": "out_of_scope"})
    xml = cii_xml(outside)
    assert facturx_lib.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert b"<ram:CategoryCode>O</ram:CategoryCode>" in xml
    assert b"RateApplicablePercent" not in xml


async def test_a_credit_line_has_a_negative_quantity_never_a_negative_price(
    tenant_a: TenantFixture,
) -> None:
    invoice = await public_buyer_invoice(tenant_a)
    issued = await invoices.get_invoice(tenant_a.owner_ctx, invoice.id)
    credits = (
        invoices.LineInput("proration", "Unused time", 1, 0, amount=-120_000),
        invoices.LineInput("adjustment", "Goodwill", 2, -5_000),
    )
    lines = invoices.price_lines([*(_input(line) for line in issued.lines), *credits], 2000)
    sums = invoices.totals(lines)
    with_credits = invoices.Invoice(
        **{
            **issued.__dict__,
            "subtotal": sums.subtotal,
            "tax_total": sums.tax_total,
            "total": sums.total,
            "lines": tuple(lines),
        }
    )
    xml = cii_xml(with_credits)
    assert facturx_lib.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    tree = ET.fromstring(xml)  # noqa: S314
    ns = {"ram": RAM}
    prices = tree.findall(".//ram:NetPriceProductTradePrice/ram:ChargeAmount", ns)
    assert len(prices) == 3
    assert all(not (price.text or "").startswith("-") for price in prices)
    quantities = [q.text for q in tree.findall(".//ram:BilledQuantity", ns)]
    assert quantities[1:] == ["-1", "-2"]
    totals = [t.text for t in tree.findall(".//ram:LineTotalAmount", ns)][1:3]
    assert totals == ["-1200.00", "-100.00"]


def _input(line: invoices.InvoiceLine) -> invoices.LineInput:
    return invoices.LineInput(
        line.kind, line.description, line.quantity, line.unit_amount, amount=line.amount
    )
