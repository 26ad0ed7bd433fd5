"""A tenant's billing details (who is invoiced, where, with which tax identifiers) and the
VAT treatment of its invoices.

VAT numbers are checked for format with python-stdnum (`stdnum.eu.vat`), not against VIES:
a number that looks right is trusted, as the invoice states it. SIRET numbers (French
organizations, required for public buyers invoiced through Chorus Pro) are checked with
`stdnum.fr.siret`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4

from babel import Locale
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.fr import siret as fr_siret

from billing.subscriptions import joined
from core.database import execute, fetch
from core.errors import Invalid
from core.i18n import N_
from core.validation import clean_choice, clean_email, clean_text
from tenants.audit import record
from tenants.context import TenantContext
from tenants.permissions import Permission

#: Standard VAT rates of the EU member states, in basis points (2000 = 20 %).
EU_VAT_RATES: dict[str, int] = {
    "AT": 2000, "BE": 2100, "BG": 2000, "CY": 1900, "CZ": 2100, "DE": 1900, "DK": 2500,
    "EE": 2400, "ES": 2100, "FI": 2550, "FR": 2000, "GR": 2400, "HR": 2500, "HU": 2700,
    "IE": 2300, "IT": 2200, "LT": 2100, "LU": 1700, "LV": 2100, "MT": 1800, "NL": 2100,
    "PL": 2300, "PT": 2300, "RO": 2100, "SE": 2500, "SI": 2200, "SK": 2300,
}  # fmt: skip
#: Greece's VAT numbers begin with EL, not GR.
VAT_PREFIX = {"GR": "EL"}
#: Regions CLDR names with two letters that are not countries one can be invoiced in.
NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "ZZ", "QO", "XA", "XB"})
COUNTRIES = frozenset(
    code
    for code in map(str, Locale("en").territories)
    if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
)
MAX_PO_NUMBER = 64
MAX_CHORUS_CODE = 100

BAD_COUNTRY = N_("Choose a country (a two-letter ISO 3166 code such as FR).")
BAD_VAT = N_("This VAT number is not valid for {country}.")
BAD_SIRET = N_("This SIRET number is not valid: 14 digits with a correct check digit.")
SIRET_REQUIRED = N_("A French public buyer is invoiced through Chorus Pro: give its SIRET.")
LONG_CHORUS = N_("A Chorus Pro service code has at most {max} characters.")
LONG_PO = N_("A purchase order number has at most {max} characters.")
PO_WITHOUT_SUBSCRIPTION = N_(
    "A purchase order number is printed on the invoices of a subscription: subscribe first."
)


class BuyerKind(StrEnum):
    BUSINESS = "business"
    PUBLIC = "public"
    INDIVIDUAL = "individual"


@dataclass(frozen=True)
class ProfileFields:
    """What the billing-details form sends."""

    legal_name: str
    country: str
    billing_email: str
    address_line1: str = ""
    address_line2: str = ""
    postal_code: str = ""
    city: str = ""
    vat_number: str = ""
    buyer_kind: str = "business"
    siret: str = ""
    chorus_service_code: str = ""


@dataclass(frozen=True)
class BillingProfile:
    """Who the tenant's invoices are addressed to."""

    legal_name: str
    address_line1: str
    address_line2: str
    postal_code: str
    city: str
    country: str
    billing_email: str
    vat_number: str
    buyer_kind: BuyerKind
    siret: str
    chorus_service_code: str
    updated_at: datetime


def clean_country(value: str | None, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 country code, upper case."""
    code = (value or "").strip().upper()
    if code not in COUNTRIES:
        raise Invalid(BAD_COUNTRY, field=field)
    return code


def clean_vat_number(value: str | None, country: str) -> str:
    """A VAT number in its compact form ("FR40303265045"), or "" when none is given. For a
    buyer in the EU it must be a valid number of that member state."""
    raw = (value or "").strip()
    if not raw:
        return ""
    if country in EU_VAT_RATES:
        try:
            number = str(eu_vat.validate(raw))
        except ValidationError:
            raise Invalid(BAD_VAT, field="vat_number", country=country) from None
        if not number.startswith(VAT_PREFIX.get(country, country)):
            raise Invalid(BAD_VAT, field="vat_number", country=country)
        return number
    number = "".join(raw.split()).upper()
    if not number.isalnum() or len(number) > 20:
        raise Invalid(BAD_VAT, field="vat_number", country=country)
    return number


def clean_siret(value: str | None) -> str:
    raw = (value or "").strip()
    if not raw:
        return ""
    try:
        return str(fr_siret.validate(raw))
    except ValidationError:
        raise Invalid(BAD_SIRET, field="siret") from None


def clean_po_number(value: str | None) -> str:
    """A purchase order number as the buyer gave it, at most 64 characters."""
    text = clean_text(value, "po_number", max_length=10_000, required=False)
    if len(text) > MAX_PO_NUMBER:
        raise Invalid(LONG_PO, field="po_number", max=MAX_PO_NUMBER)
    return text


def check_profile(fields: ProfileFields) -> ProfileFields:
    """`fields` cleaned, or `Invalid` naming the first wrong field."""
    country = clean_country(fields.country)
    buyer = clean_choice(fields.buyer_kind, tuple(BuyerKind), "buyer_kind")
    siret = clean_siret(fields.siret)
    if buyer == BuyerKind.PUBLIC and country == "FR" and not siret:
        raise Invalid(SIRET_REQUIRED, field="siret")
    chorus = clean_text(
        fields.chorus_service_code, "chorus_service_code", max_length=10_000, required=False
    )
    if len(chorus) > MAX_CHORUS_CODE:
        raise Invalid(LONG_CHORUS, field="chorus_service_code", max=MAX_CHORUS_CODE)
    return ProfileFields(
        legal_name=clean_text(fields.legal_name, "legal_name", max_length=200),
        country=country,
        billing_email=clean_email(fields.billing_email, "billing_email"),
        address_line1=clean_text(fields.address_line1, "address_line1", max_length=200),
        address_line2=clean_text(
            fields.address_line2, "address_line2", max_length=200, required=False
        ),
        postal_code=clean_text(fields.postal_code, "postal_code", max_length=20, required=False),
        city=clean_text(fields.city, "city", max_length=100),
        vat_number=clean_vat_number(fields.vat_number, country),
        buyer_kind=buyer,
        siret=siret,
        chorus_service_code=chorus,
    )


def _profile(row: dict[str, Any]) -> BillingProfile:
    return BillingProfile(
        legal_name=row["legal_name"],
        address_line1=row["address_line1"],
        address_line2=row["address_line2"],
        postal_code=row["postal_code"],
        city=row["city"],
        country=row["country"],
        billing_email=row["billing_email"],
        vat_number=row["vat_number"],
        buyer_kind=BuyerKind(row["buyer_kind"]),
        siret=row["siret"],
        chorus_service_code=row["chorus_service_code"],
        updated_at=row["updated_at"],
    )


async def billing_profile(ctx: TenantContext) -> BillingProfile | None:
    """The tenant's billing details, None until someone gives them. Joins an open
    transaction."""
    ctx.require(Permission.BILLING_READ)
    async with joined(ctx):
        rows = await fetch("SELECT * FROM billing_profile WHERE tenant_id = $1", ctx.tenant_id)
    return _profile(rows[0]) if rows else None


async def save_profile(
    ctx: TenantContext, fields: ProfileFields, *, po_number: str | None = None
) -> BillingProfile:
    """Write the tenant's billing details (all checked first: nothing is written when one
    is wrong), and the purchase order number of its subscription when given (`Invalid`
    without a subscription to print it on, and nothing written). Audited as
    `billing.profile.updated`."""
    ctx.require(Permission.BILLING_MANAGE)
    fields = check_profile(fields)
    po = None if po_number is None else clean_po_number(po_number)
    now = datetime.now(UTC)
    async with joined(ctx):
        await execute(
            """
            INSERT INTO billing_profile (tenant_id, id, legal_name, address_line1,
                address_line2, postal_code, city, country, billing_email, vat_number,
                buyer_kind, siret, chorus_service_code, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            ON CONFLICT (tenant_id) DO UPDATE SET legal_name = EXCLUDED.legal_name,
                address_line1 = EXCLUDED.address_line1,
                address_line2 = EXCLUDED.address_line2, postal_code = EXCLUDED.postal_code,
                city = EXCLUDED.city, country = EXCLUDED.country,
                billing_email = EXCLUDED.billing_email, vat_number = EXCLUDED.vat_number,
                buyer_kind = EXCLUDED.buyer_kind, siret = EXCLUDED.siret,
                chorus_service_code = EXCLUDED.chorus_service_code,
                updated_at = EXCLUDED.updated_at
            """,
            ctx.tenant_id,
            uuid4(),
            fields.legal_name,
            fields.address_line1,
            fields.address_line2,
            fields.postal_code,
            fields.city,
            fields.country,
            fields.billing_email,
            fields.vat_number,
            fields.buyer_kind,
            fields.siret,
            fields.chorus_service_code,
            now,
        )
        if po is not None:
            kept = await fetch(
                "UPDATE subscription SET po_number = $2, updated_at = $3 WHERE tenant_id = $1 "
                "RETURNING id",
                ctx.tenant_id,
                po,
                now,
            )
            if po and not kept:
                # the number belongs to a subscription: never silently dropped
                raise Invalid(PO_WITHOUT_SUBSCRIPTION, field="po_number")
        await record(
            ctx,
            "billing.profile.updated",
            "billing_profile",
            ctx.tenant_id,
            country=fields.country,
            buyer_kind=fields.buyer_kind,
            vat_number=fields.vat_number,
            po_number=po,
        )
        rows = await fetch("SELECT * FROM billing_profile WHERE tenant_id = $1", ctx.tenant_id)
    return _profile(rows[0])


# --- VAT ----------------------------------------------------------------------------------


class TaxKind(StrEnum):
    #: the seller's country's standard rate
    STANDARD = "standard"
    #: an EU business in another member state accounts for the VAT itself (0 % here)
    REVERSE_CHARGE = "reverse_charge"
    #: a buyer outside the EU: no EU VAT
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class TaxTreatment:
    """How an invoice to a buyer is taxed: the kind, the rate in basis points (2000 = 20 %)
    and the legal mention the invoice prints (a msgid; empty for the standard rate)."""

    kind: TaxKind
    rate_basis_points: int
    mention: str

    def tax_on(self, amount: int) -> int:
        """The VAT on `amount` minor units, rounded half-even to the minor unit."""
        quotient, remainder = divmod(amount * self.rate_basis_points, 10_000)
        if remainder * 2 > 10_000 or (remainder * 2 == 10_000 and quotient % 2 == 1):
            quotient += 1
        return quotient


REVERSE_CHARGE_MENTION = N_(
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)."
)
OUT_OF_SCOPE_MENTION = N_(
    "VAT not applicable: services supplied outside the European Union (Article 44, "
    "Directive 2006/112/EC)."
)


def has_valid_eu_vat(profile: BillingProfile | ProfileFields) -> bool:
    """True when the buyer holds a well-formed VAT number of its own EU member state."""
    if profile.country not in EU_VAT_RATES or not profile.vat_number:
        return False
    if not profile.vat_number.startswith(VAT_PREFIX.get(profile.country, profile.country)):
        return False
    return bool(eu_vat.is_valid(profile.vat_number))


def tax_treatment(
    profile: BillingProfile | ProfileFields | None, seller_country: str
) -> TaxTreatment:
    """The VAT treatment of an invoice from a seller in `seller_country` to `profile`:
    - outside the EU: out of scope, 0 %;
    - an EU business (or public body) with a valid VAT number of another member state:
      reverse charge, 0 %;
    - otherwise (same country, an individual, no VAT number, no profile yet): the seller's
      standard rate. A seller outside the EU charges no EU VAT.
    Sales of e-services to individuals in other member states (the OSS scheme, taxed at
    the buyer's rate) are not distinguished here."""
    seller = seller_country.upper()
    standard = EU_VAT_RATES.get(seller)
    if standard is None:
        return TaxTreatment(TaxKind.OUT_OF_SCOPE, 0, OUT_OF_SCOPE_MENTION)
    if profile is None:
        return TaxTreatment(TaxKind.STANDARD, standard, "")
    if profile.country not in EU_VAT_RATES:
        return TaxTreatment(TaxKind.OUT_OF_SCOPE, 0, OUT_OF_SCOPE_MENTION)
    if (
        profile.country != seller
        and profile.buyer_kind != BuyerKind.INDIVIDUAL
        and has_valid_eu_vat(profile)
    ):
        return TaxTreatment(TaxKind.REVERSE_CHARGE, 0, REVERSE_CHARGE_MENTION)
    return TaxTreatment(TaxKind.STANDARD, standard, "")
