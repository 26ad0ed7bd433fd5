"""Factur-X (EN 16931) e-invoices for Chorus Pro: the Cross Industry Invoice XML of an issued
invoice or credit note, and the PDF/A-3 that carries it (PyPI `factur-x`).

French public buyers must receive their invoices through Chorus Pro, which reads the XML:
the buyer's SIRET (scheme 0009), its service code (`BuyerReference`) and the purchase-order
number (`BuyerOrderReferencedDocument`) are what it routes on. The XML is written from the
invoice record alone, so the same invoice always gives the same XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # we write XML, we never parse input here
from datetime import date, datetime
from decimal import Decimal

from billing.invoices import Invoice, InvoiceLine, Party
from billing.money import Money

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
for _prefix, _uri in (("rsm", RSM), ("ram", RAM), ("udt", UDT), ("qdt", QDT)):
    ET.register_namespace(_prefix, _uri)

#: EN 16931's VAT category of each tax treatment.
VAT_CATEGORY = {"standard": "S", "reverse_charge": "AE", "out_of_scope": "O"}
#: The exemption reason codes (VATEX) of the categories without VAT.
VATEX = {"reverse_charge": "VATEX-EU-AE", "out_of_scope": "VATEX-EU-O"}
INVOICE_TYPE = "380"
CREDIT_NOTE_TYPE = "381"
#: UNTDID 4461: 58 is a SEPA credit transfer, 30 any other credit transfer.
SEPA_CREDIT_TRANSFER = "58"
CREDIT_TRANSFER = "30"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    prefix, name = tag.split(":")
    uri = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}[prefix]
    element = ET.SubElement(parent, f"{{{uri}}}{name}", attributes)
    if text is not None:
        element.text = text
    return element


def _amount(invoice: Invoice, minor: int) -> str:
    return str(Money(minor, invoice.currency).decimal)


def _percent(basis_points: int) -> str:
    return str((Decimal(basis_points) / 100).quantize(Decimal("0.01")))


def _day(parent: ET.Element, tag: str, day: date, *, qualified: bool = False) -> None:
    holder = _el(parent, tag)
    _el(
        holder,
        "qdt:DateTimeString" if qualified else "udt:DateTimeString",
        f"{day:%Y%m%d}",
        format="102",
    )


def _period(parent: ET.Element, start: datetime | None, end: datetime | None) -> None:
    if start is None or end is None:
        return
    period = _el(parent, "ram:BillingSpecifiedPeriod")
    _day(period, "ram:StartDateTime", start.date())
    _day(period, "ram:EndDateTime", end.date())


def _party(parent: ET.Element, tag: str, party: Party, *, legal_scheme: str) -> None:
    element = _el(parent, tag)
    _el(element, "ram:Name", party.name)
    if party.siret:
        legal = _el(element, "ram:SpecifiedLegalOrganization")
        _el(legal, "ram:ID", party.siret, schemeID=legal_scheme)
    address = _el(element, "ram:PostalTradeAddress")
    if party.postal_code:
        _el(address, "ram:PostcodeCode", party.postal_code)
    if party.address_line1:
        _el(address, "ram:LineOne", party.address_line1)
    if party.address_line2:
        _el(address, "ram:LineTwo", party.address_line2)
    if party.city:
        _el(address, "ram:CityName", party.city)
    _el(address, "ram:CountryID", (party.country or "FR").upper())
    if party.email:
        contact = _el(element, "ram:URIUniversalCommunication")
        _el(contact, "ram:URIID", party.email, schemeID="EM")
    if party.vat_number:
        tax = _el(element, "ram:SpecifiedTaxRegistration")
        _el(tax, "ram:ID", party.vat_number, schemeID="VA")


def _line(parent: ET.Element, invoice: Invoice, line: InvoiceLine, category: str) -> None:
    item = _el(parent, "ram:IncludedSupplyChainTradeLineItem")
    _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(line.position + 1))
    _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)
    # A line whose amount is not quantity × price (a proration) is billed as one unit of it.
    even = line.quantity * line.unit_amount == line.amount
    quantity, price = (line.quantity, line.unit_amount) if even else (1, line.amount)
    if price < 0:  # a credit line: a price is never negative (BR-27), the quantity may be
        quantity, price = -quantity, -price
    agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    _el(
        _el(agreement, "ram:NetPriceProductTradePrice"), "ram:ChargeAmount", _amount(invoice, price)
    )
    delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
    _el(delivery, "ram:BilledQuantity", str(quantity), unitCode="C62")
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", category)
    if category != "O":  # outside the scope of VAT: no rate at all (EN 16931, BR-O-05)
        _el(tax, "ram:RateApplicablePercent", _percent(line.tax_rate))
    _period(settlement, line.period_start, line.period_end)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(invoice, line.amount))


def cii_xml(
    invoice: Invoice, *, credited_number: str | None = None, credited_on: date | None = None
) -> bytes:
    """The EN 16931 Cross Industry Invoice of an issued invoice (or credit note, with the
    number and date of the invoice it credits)."""
    if invoice.number is None or invoice.issued_at is None:
        raise ValueError("only an issued invoice has an e-invoice")
    category = VAT_CATEGORY[invoice.tax_treatment]
    root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
    context = _el(root, "rsm:ExchangedDocumentContext")
    # Chorus Pro's billing frame A1: a supplier's invoice, filed by the supplier.
    _el(_el(context, "ram:BusinessProcessSpecifiedDocumentContextParameter"), "ram:ID", "A1")
    _el(
        _el(context, "ram:GuidelineSpecifiedDocumentContextParameter"),
        "ram:ID",
        "urn:cen.eu:en16931:2017",
    )
    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", invoice.number)
    _el(document, "ram:TypeCode", CREDIT_NOTE_TYPE if invoice.is_credit_note else INVOICE_TYPE)
    _day(document, "ram:IssueDateTime", invoice.issued_at.date())
    if invoice.tax_note:
        _el(_el(document, "ram:IncludedNote"), "ram:Content", invoice.tax_note)

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for line in invoice.lines:
        _line(transaction, invoice, line, category)

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    if invoice.buyer.service_code:
        _el(agreement, "ram:BuyerReference", invoice.buyer.service_code)
    # SIRET: scheme 0002 is a SIREN, 0009 a SIRET (ISO 6523)
    _party(agreement, "ram:SellerTradeParty", invoice.seller, legal_scheme="0009")
    _party(agreement, "ram:BuyerTradeParty", invoice.buyer, legal_scheme="0009")
    if invoice.po_number:
        order = _el(agreement, "ram:BuyerOrderReferencedDocument")
        _el(order, "ram:IssuerAssignedID", invoice.po_number)
    _el(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:PaymentReference", invoice.number)
    _el(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    iban = invoice.seller.iban.replace(" ", "")
    _el(means, "ram:TypeCode", SEPA_CREDIT_TRANSFER if iban else CREDIT_TRANSFER)
    if iban:
        _el(_el(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", iban)
        if invoice.seller.bic:
            institution = _el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
            _el(institution, "ram:BICID", invoice.seller.bic)
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:CalculatedAmount", _amount(invoice, invoice.tax_total))
    _el(tax, "ram:TypeCode", "VAT")
    if category != "S":
        _el(tax, "ram:ExemptionReason", invoice.tax_note or "Exempt")
    _el(tax, "ram:BasisAmount", _amount(invoice, invoice.subtotal))
    _el(tax, "ram:CategoryCode", category)
    if invoice.tax_treatment in VATEX:
        _el(tax, "ram:ExemptionReasonCode", VATEX[invoice.tax_treatment])
    if category != "O":
        rate = invoice.lines[0].tax_rate if invoice.lines else 0
        _el(tax, "ram:RateApplicablePercent", _percent(rate))
    _period(settlement, invoice.period_start, invoice.period_end)
    if invoice.due_on is not None and not invoice.is_credit_note:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        _day(terms, "ram:DueDateDateTime", invoice.due_on)
    sums = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(sums, "ram:LineTotalAmount", _amount(invoice, invoice.subtotal))
    _el(sums, "ram:TaxBasisTotalAmount", _amount(invoice, invoice.subtotal))
    _el(
        sums, "ram:TaxTotalAmount", _amount(invoice, invoice.tax_total), currencyID=invoice.currency
    )
    _el(sums, "ram:GrandTotalAmount", _amount(invoice, invoice.total))
    # what the invoice said when issued: payments received later do not change it
    _el(sums, "ram:DuePayableAmount", _amount(invoice, invoice.total))
    if credited_number:
        referenced = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(referenced, "ram:IssuerAssignedID", credited_number)
        if credited_on is not None:
            _day(referenced, "ram:FormattedIssueDateTime", credited_on, qualified=True)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def facturx_pdf(pdf: bytes, xml: bytes, *, title: str, lang: str = "fr") -> bytes:
    """`pdf` (a PDF/A-3 from WeasyPrint) with `xml` embedded as `factur-x.xml`, its XMP
    metadata saying Factur-X EN 16931; the XML is checked against the schema first."""
    from facturx import generate_from_binary

    result: bytes = generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata={"author": "Jalon", "keywords": "Factur-X", "title": title, "subject": title},
        lang=lang,
    )
    return result
