"""Billing details: checked before anything is written, per tenant, and the VAT treatment
of invoices that follows from them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from billing.profiles import (
    ProfileFields,
    TaxKind,
    billing_profile,
    save_profile,
    tax_treatment,
)
from billing.subscriptions import current_subscription, subscribe
from core.errors import Forbidden, Invalid
from tests.billing.plans import per_seat_plan
from tests.conftest import TenantFixture

ATELIER = ProfileFields(
    legal_name="Atelier Numérique SAS",
    country="FR",
    billing_email="compta@atelier.example",
    address_line1="12 rue des Lilas",
    postal_code="69001",
    city="Lyon",
    vat_number="FR 40 303 265 045",
    siret="732 829 320 00074",
)
#: Valid format: a German business.
BERLIN = replace(ATELIER, country="DE", vat_number="DE136695976", siret="", city="Berlin")


async def test_details_are_saved_cleaned_and_audited(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    saved = await save_profile(tenant_a.owner_ctx, ATELIER)
    assert saved.vat_number == "FR40303265045"
    assert saved.siret == "73282932000074"
    assert await billing_profile(tenant_a.owner_ctx) == saved
    assert await billing_profile(tenant_b.owner_ctx) is None
    again = await save_profile(tenant_a.owner_ctx, replace(ATELIER, city="Villeurbanne"))
    assert again.city == "Villeurbanne"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"vat_number": "FR00000000000"}, "vat_number"),
        ({"vat_number": "DE136695976"}, "vat_number"),  # a German number for a French buyer
        ({"siret": "73282932000075"}, "siret"),
        ({"country": "XX"}, "country"),
        ({"country": "France"}, "country"),
        ({"billing_email": "not an email"}, "billing_email"),
        ({"legal_name": ""}, "legal_name"),
        ({"chorus_service_code": "S" * 101}, "chorus_service_code"),
        ({"buyer_kind": "pirate"}, "buyer_kind"),
        ({"buyer_kind": "public", "siret": ""}, "siret"),
    ],
)
async def test_wrong_details_are_refused_and_nothing_is_written(
    tenant_a: TenantFixture, change: dict[str, str], field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        await save_profile(tenant_a.owner_ctx, replace(ATELIER, **change))
    assert refused.value.field == field
    assert await billing_profile(tenant_a.owner_ctx) is None


async def test_a_po_number_goes_to_the_subscription_within_64_characters(
    tenant_a: TenantFixture,
) -> None:
    plan = await per_seat_plan()
    await subscribe(tenant_a.owner_ctx, plan.code, at=datetime(2026, 12, 3, tzinfo=UTC))
    with pytest.raises(Invalid) as refused:
        await save_profile(tenant_a.owner_ctx, ATELIER, po_number="P" * 65)
    assert refused.value.field == "po_number"
    assert await billing_profile(tenant_a.owner_ctx) is None
    await save_profile(tenant_a.owner_ctx, ATELIER, po_number="PO-2026-0042")
    sub = await current_subscription(tenant_a.owner_ctx)
    assert sub is not None
    assert sub.po_number == "PO-2026-0042"


async def test_only_billing_managers_write_details(tenant_a: TenantFixture) -> None:
    with pytest.raises(Forbidden):
        await save_profile(tenant_a.member_ctx, ATELIER)
    with pytest.raises(Forbidden):
        await billing_profile(tenant_a.member_ctx)


def test_a_buyer_in_the_sellers_country_pays_its_standard_rate() -> None:
    treatment = tax_treatment(ATELIER, "FR")
    assert (treatment.kind, treatment.rate_basis_points) == (TaxKind.STANDARD, 2000)
    assert treatment.tax_on(10_000) == 2_000


def test_an_eu_business_elsewhere_with_a_valid_number_is_reverse_charged() -> None:
    treatment = tax_treatment(BERLIN, "FR")
    assert (treatment.kind, treatment.rate_basis_points) == (TaxKind.REVERSE_CHARGE, 0)
    assert "Reverse charge" in treatment.mention


def test_without_a_valid_vat_number_or_as_an_individual_the_seller_charges_vat() -> None:
    assert tax_treatment(replace(BERLIN, vat_number=""), "FR").kind == TaxKind.STANDARD
    assert tax_treatment(replace(BERLIN, vat_number="DE000"), "FR").kind == TaxKind.STANDARD
    individual = replace(BERLIN, buyer_kind="individual")
    assert tax_treatment(individual, "FR").rate_basis_points == 2000
    assert tax_treatment(None, "DE").rate_basis_points == 1900


def test_a_buyer_outside_the_eu_is_out_of_scope() -> None:
    swiss = replace(ATELIER, country="CH", vat_number="CHE123456789")
    treatment = tax_treatment(swiss, "FR")
    assert (treatment.kind, treatment.rate_basis_points) == (TaxKind.OUT_OF_SCOPE, 0)


def test_vat_is_rounded_half_even_to_the_cent() -> None:
    treatment = tax_treatment(ATELIER, "FR")
    assert treatment.tax_on(1) == 0  # 0.2 cent
    assert treatment.tax_on(3) == 1  # 0.6 cent
    finland = tax_treatment(replace(ATELIER, country="FI", vat_number=""), "FI")
    assert finland.tax_on(100) == 26  # 25.5 cents
    assert finland.tax_on(300) == 76  # 76.5 cents: to the even one


async def test_a_po_number_without_a_subscription_is_refused_not_dropped(
    tenant_a: TenantFixture,
) -> None:
    with pytest.raises(Invalid) as refused:
        await save_profile(tenant_a.owner_ctx, ATELIER, po_number="PO-2026-0042")
    assert refused.value.field == "po_number"
    assert await billing_profile(tenant_a.owner_ctx) is None  # nothing written
    # without a number, the details alone are saved
    await save_profile(tenant_a.owner_ctx, ATELIER, po_number="")
    assert await billing_profile(tenant_a.owner_ctx) is not None
