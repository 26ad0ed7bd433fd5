"""Onboarding a tenant from the back office: an account manager creates an organization, its
subscription, its billing details and its first owner's invitation, step by step.

The wizard's steps are checked one at a time (`check_step`), each on what the earlier ones
gave; nothing is written before the last one. `onboard` then checks everything again and
creates the organization, its subscription and billing profile in one transaction (the
tenant's audit log shows the service provider: `acting_in_tenant`), with the staff trail's
`tenant.onboarded`; the owner's invitation (its mail sent) and, without a trial, the first
invoice follow in their own transactions, as their services open them.

The organization's kind and country set the defaults of the later steps (`defaults_for`):
its language, time zone, currency (the country's when the catalogue has prices in it, else
the euro), the buyer kind and how it pays (companies by card through Stripe when the server
takes cards, public bodies by bank transfer at 30 days).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from babel.numbers import get_territory_currencies

from billing import subscriptions
from billing.catalogue import PlanKind, active_offers
from billing.money import Money
from billing.profiles import (
    EU_VAT_RATES,
    BuyerKind,
    ProfileFields,
    TaxKind,
    TaxTreatment,
    check_profile,
    clean_country,
    clean_po_number,
    save_profile,
    tax_treatment,
)
from billing.subscriptions import SubscriptionStatus, subscribe
from core.database import execute, global_transaction
from core.errors import Invalid, NotFound
from core.i18n import N_
from core.settings import Settings
from core.validation import (
    clean_choice,
    clean_email,
    clean_locale,
    clean_slug,
    clean_text,
    clean_timezone,
)
from tenants.audit import record
from tenants.context import StaffContext, TenantSummary
from tenants.invitations import invite
from tenants.organizations import KINDS, OrganizationFields, insert_organization, tenant_by_slug
from tenants.permissions import StaffPermission
from tenants.staff import acting_in_tenant, clean_reason, with_reason
from tenants.staff_trail import record_staff_action

log = logging.getLogger(__name__)

#: The wizard's steps, in order.
STEPS = ("kind", "organization", "plan", "billing", "admin", "confirm")
#: The form fields of each step (the confirm step's reason is never kept).
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "kind": ("kind", "country"),
    "organization": ("name", "slug", "locale", "timezone", "currency"),
    "plan": (
        "plan",
        "quantity",
        "collection_method",
        "net_terms_days",
        "po_number",
        "trial_days",
    ),
    "billing": (
        "legal_name",
        "billing_email",
        "address_line1",
        "address_line2",
        "postal_code",
        "city",
        "billing_country",
        "vat_number",
        "buyer_kind",
        "siret",
        "chorus_service_code",
    ),
    "admin": ("admin_email", "admin_name"),
    "confirm": ("reason",),
}
COLLECTION_METHODS = ("send_invoice", "automatic")
MAX_NET_TERMS = 120
MAX_TRIAL_DAYS = 366

#: Countries whose organizations are addressed in French by default (the others in English).
FRENCH_SPEAKING = frozenset(
    {
        "FR", "BE", "LU", "MC", "CH", "RE", "GP", "MQ", "GF", "YT", "PM", "NC", "PF", "WF",
        "BL", "MF", "SN", "CI", "ML", "BF", "NE", "BJ", "TG", "GN", "CM", "GA", "CG", "CD",
        "CF", "TD", "MG", "DJ", "KM", "HT", "MA", "DZ", "TN", "MU", "SC", "RW", "BI",
    }
)  # fmt: skip
#: A country's usual time zone where the tz database's first one is not the obvious choice
#: (or the country has many).
TIME_ZONES = {
    "FR": "Europe/Paris", "BE": "Europe/Brussels", "LU": "Europe/Luxembourg",
    "CH": "Europe/Zurich", "DE": "Europe/Berlin", "NO": "Europe/Oslo",
    "SE": "Europe/Stockholm", "DK": "Europe/Copenhagen", "FI": "Europe/Helsinki",
    "NL": "Europe/Amsterdam", "ES": "Europe/Madrid", "PT": "Europe/Lisbon",
    "IT": "Europe/Rome", "IE": "Europe/Dublin", "GB": "Europe/London", "AT": "Europe/Vienna",
    "PL": "Europe/Warsaw", "US": "America/New_York", "CA": "America/Toronto",
    "AU": "Australia/Sydney", "RU": "Europe/Moscow", "BR": "America/Sao_Paulo",
    "MX": "America/Mexico_City", "CN": "Asia/Shanghai", "IN": "Asia/Kolkata",
}  # fmt: skip
#: Who pays how, by kind: public buyers and agencies are invoiced (bank transfer).
PUBLIC_KINDS = frozenset({"local_authority", "foreign_agency", "school"})
INVOICE_NET_TERMS = 30

BAD_CURRENCY = N_("Choose a currency the catalogue has prices in.")
SLUG_TAKEN = N_("This identifier is already taken.")
BAD_PLAN = N_("Choose a plan offered in {currency}.")
BAD_QUANTITY = N_("The number of seats must be a whole number between {low} and {high}.")
BAD_METHOD = N_("Choose how the organization pays.")
NO_CARD = N_("Card payments are not set up on this server: invoice by bank transfer.")
CARD_NEEDS_TRIAL = N_(
    "The owner gives their card at the end of a trial: give trial days, or invoice by "
    "bank transfer."
)
BAD_NET_TERMS = N_("Payment terms are a whole number of days between 0 and {max}.")
BAD_TRIAL = N_("A trial lasts 1 to {max} days; leave the field empty for no trial.")
STEP_MISSING = N_("Fill in the earlier steps first.")


@dataclass(frozen=True)
class Defaults:
    """What the kind and country suggest for the next steps."""

    locale: str
    timezone: str
    currency: str
    collection_method: str
    net_terms_days: int
    buyer_kind: str
    #: the VAT treatment expected for such a buyer with a valid VAT number of its country
    tax: TaxKind


@cache
def _zone_table() -> dict[str, str]:
    """Each country's first time zone in the system's tz database (`zone.tab`)."""
    table: dict[str, str] = {}
    path = Path("/usr/share/zoneinfo/zone.tab")
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) >= 3:
                table.setdefault(parts[0], parts[2])
    return table


def timezone_for(country: str) -> str:
    return TIME_ZONES.get(country) or _zone_table().get(country) or "UTC"


def currency_for(country: str, offered: list[str]) -> str:
    """The country's currency when the catalogue has prices in it, else the euro (or the
    first currency offered)."""
    for code in get_territory_currencies(country):
        if code in offered:
            return str(code)
    if "EUR" in offered or not offered:
        return "EUR"
    return offered[0]


def expected_tax(country: str, buyer_kind: str, seller_country: str) -> TaxKind:
    """The VAT treatment of a buyer of `country` that gives a valid VAT number of its own."""
    seller = seller_country.upper()
    if seller not in EU_VAT_RATES or country not in EU_VAT_RATES:
        return TaxKind.OUT_OF_SCOPE
    if country != seller and buyer_kind != BuyerKind.INDIVIDUAL:
        return TaxKind.REVERSE_CHARGE
    return TaxKind.STANDARD


def defaults_for(
    kind: str, country: str, offered: list[str], settings: Settings, *, card_ok: bool
) -> Defaults:
    """The defaults of an organization of `kind` in `country`; card payments (`card_ok`)
    only where the server takes them."""
    public = kind in PUBLIC_KINDS
    buyer = BuyerKind.PUBLIC if public else BuyerKind.BUSINESS
    method = "automatic" if kind == "company" and card_ok else "send_invoice"
    return Defaults(
        locale="fr" if country in FRENCH_SPEAKING else "en",
        timezone=timezone_for(country),
        currency=currency_for(country, offered),
        collection_method=method,
        net_terms_days=INVOICE_NET_TERMS if method == "send_invoice" else 0,
        buyer_kind=buyer.value,
        tax=expected_tax(country, buyer, settings.billing_seller_country),
    )


# --- the catalogue as the wizard offers it ---------------------------------------------------


@dataclass(frozen=True)
class PlanChoice:
    """A plan at one price (a currency and a price category)."""

    code: str
    category: str
    kind: PlanKind
    names: dict[str, str]
    interval: str
    trial_days: int
    included_seats: int | None
    pack_seats: int | None
    price: Money

    @property
    def value(self) -> str:
        return f"{self.code}:{self.category}"

    def name(self, locale: str) -> str:
        return self.names.get(locale) or self.names.get("en") or self.code


async def offered_currencies() -> list[str]:
    """The currencies the catalogue's plans on offer have a price in."""
    return sorted({price.currency for offer in await active_offers() for price in offer.prices})


async def plan_choices(currency: str) -> list[PlanChoice]:
    """Every plan on offer (not retired) with a price in `currency`, one choice per price
    category."""
    return [
        PlanChoice(
            code=offer.plan.code,
            category=price.category,
            kind=offer.plan.kind,
            names=offer.plan.names,
            interval=offer.plan.interval,
            trial_days=offer.plan.trial_days,
            included_seats=offer.plan.included_seats,
            pack_seats=offer.plan.pack_seats,
            price=price.unit,
        )
        for offer in await active_offers()
        for price in offer.prices_in(currency)
    ]


# --- checking each step ----------------------------------------------------------------------


@dataclass(frozen=True)
class OnboardingFields:
    """Everything the wizard gathered, each value as typed (strings), checked by `onboard`."""

    kind: str
    country: str
    name: str
    slug: str
    locale: str
    timezone: str
    currency: str
    plan: str
    quantity: str
    collection_method: str
    net_terms_days: str
    po_number: str
    trial_days: str
    legal_name: str
    billing_email: str
    address_line1: str
    address_line2: str
    postal_code: str
    city: str
    billing_country: str
    vat_number: str
    buyer_kind: str
    siret: str
    chorus_service_code: str
    admin_email: str
    admin_name: str
    reason: str = ""

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> OnboardingFields:
        return cls(**{f.name: str(values.get(f.name, "") or "") for f in fields(cls)})


def _whole(value: str | None, field: str, message: str, low: int, high: int) -> int:
    text = (value or "").strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise Invalid(message, field=field, low=low, high=high, max=high)
    return int(text)


def trial_days_of(values: Mapping[str, str]) -> int:
    """The trial's length in days (0: none)."""
    text = (values.get("trial_days") or "").strip()
    if not text:
        return 0
    return _whole(text, "trial_days", BAD_TRIAL, 1, MAX_TRIAL_DAYS)


async def chosen_plan(values: Mapping[str, str]) -> PlanChoice:
    """The plan and price chosen, among those offered in the chosen currency."""
    currency = values.get("currency", "")
    for choice in await plan_choices(currency):
        if choice.value == values.get("plan"):
            return choice
    raise Invalid(BAD_PLAN, field="plan", currency=currency)


def profile_fields(values: Mapping[str, str]) -> ProfileFields:
    return ProfileFields(
        legal_name=values.get("legal_name", ""),
        country=values.get("billing_country", ""),
        billing_email=values.get("billing_email", ""),
        address_line1=values.get("address_line1", ""),
        address_line2=values.get("address_line2", ""),
        postal_code=values.get("postal_code", ""),
        city=values.get("city", ""),
        vat_number=values.get("vat_number", ""),
        buyer_kind=values.get("buyer_kind", ""),
        siret=values.get("siret", ""),
        chorus_service_code=values.get("chorus_service_code", ""),
    )


async def check_step(step: str, values: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The fields of `step` cleaned (as strings, for the next steps and the summary), checked
    with what the earlier steps gave in `values`; `Invalid` on the first wrong field."""
    get = values.get
    if step == "kind":
        return {
            "kind": clean_choice(get("kind"), KINDS, "kind"),
            "country": clean_country(get("country")),
        }
    if step == "organization":
        slug = clean_slug(get("slug"))
        try:
            await tenant_by_slug(slug)
        except NotFound:
            pass
        else:
            raise Invalid(SLUG_TAKEN, field="slug")
        timezone = clean_timezone(get("timezone"))
        currency = (get("currency") or "").strip().upper()
        if currency not in await offered_currencies():
            raise Invalid(BAD_CURRENCY, field="currency")
        return {
            "name": clean_text(get("name"), "name", max_length=200),
            "slug": slug,
            "locale": clean_locale(get("locale"), "locale"),
            "timezone": timezone,
            "currency": currency,
        }
    if step == "plan":
        choice = await chosen_plan(values)
        quantity = 1
        if choice.kind != PlanKind.LICENSE:
            quantity = _whole(get("quantity"), "quantity", BAD_QUANTITY, 1, subscriptions.MAX_SEATS)
        method = get("collection_method") or ""
        if method not in COLLECTION_METHODS:
            raise Invalid(BAD_METHOD, field="collection_method")
        terms = _whole(get("net_terms_days"), "net_terms_days", BAD_NET_TERMS, 0, MAX_NET_TERMS)
        trial = trial_days_of(values)
        if method == "automatic":
            if not settings.stripe_secret_key:
                raise Invalid(NO_CARD, field="collection_method")
            if not trial:
                raise Invalid(CARD_NEEDS_TRIAL, field="trial_days")
        return {
            "plan": choice.value,
            "quantity": str(quantity),
            "collection_method": method,
            "net_terms_days": str(terms),
            "po_number": clean_po_number(get("po_number")),
            "trial_days": str(trial) if trial else "",
        }
    if step == "billing":
        profile = check_profile(profile_fields(values))
        return {
            "legal_name": profile.legal_name,
            "billing_email": profile.billing_email,
            "address_line1": profile.address_line1,
            "address_line2": profile.address_line2,
            "postal_code": profile.postal_code,
            "city": profile.city,
            "billing_country": profile.country,
            "vat_number": profile.vat_number,
            "buyer_kind": str(profile.buyer_kind),
            "siret": profile.siret,
            "chorus_service_code": profile.chorus_service_code,
        }
    if step == "admin":
        return {
            "admin_email": clean_email(get("admin_email"), "admin_email"),
            "admin_name": clean_text(get("admin_name"), "admin_name", max_length=200),
        }
    if step == "confirm":
        return {"reason": clean_reason(get("reason"))}
    raise NotFound()


async def check_all(values: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """Every step checked in order, each on the cleaned values of the earlier ones."""
    cleaned: dict[str, str] = dict(values)
    for step in STEPS:
        cleaned.update(await check_step(step, cleaned, settings))
    return cleaned


def treatment_of(values: Mapping[str, str], settings: Settings) -> TaxTreatment:
    """The VAT treatment the billing details give (for the summary)."""
    return tax_treatment(check_profile(profile_fields(values)), settings.billing_seller_country)


# --- creating it ---------------------------------------------------------------------------


async def onboard(
    staff: StaffContext,
    fields_: OnboardingFields,
    settings: Settings,
    *,
    at: datetime | None = None,
) -> TenantSummary:
    """Create the organization, its subscription and billing details (one transaction, with
    the staff trail's `tenant.onboarded`), then invite its first owner (the mail sent) and,
    when it pays from the first day, issue its first invoice. Needs the tenant-managing and
    billing-managing permissions and a reason. `Invalid` (nothing written) for a wrong field,
    `Conflict` on `slug` when the identifier was taken meanwhile."""
    staff.require(StaffPermission.TENANTS_MANAGE)
    staff.require(StaffPermission.BILLING_MANAGE)
    values = await check_all(asdict(fields_), settings)
    acting = with_reason(staff, values["reason"])
    now = at or datetime.now(UTC)
    tenant = await dangerously_open_tenant(acting, values, now)
    ctx = acting_in_tenant(acting, tenant)
    await invite(ctx, values["admin_email"], "owner", settings)
    if not trial_days_of(values):
        from billing import invoices

        try:
            await invoices.bill_period(ctx, at=now, locale=values["locale"])
        except Exception:
            # The subscription is active: the hourly renewal sweep issues the missing invoice.
            log.exception("first invoice of %s failed; the renewal sweep retries", tenant.slug)
    return tenant


async def dangerously_open_tenant(
    acting: StaffContext, values: Mapping[str, str], now: datetime
) -> TenantSummary:
    """The new organization, its subscription and billing details, in one transaction opened
    without a tenant (there is none yet: `insert_organization` switches to the new one), with
    the staff trail's `tenant.onboarded`. `values` are `check_all`'s."""
    acting.require(StaffPermission.TENANTS_MANAGE)
    acting.require(StaffPermission.BILLING_MANAGE)
    choice = await chosen_plan(values)
    trial_days = trial_days_of(values)
    po_number = values["po_number"]
    async with global_transaction(acting.user_id):
        tenant = await insert_organization(
            OrganizationFields(
                name=values["name"],
                slug=values["slug"],
                kind=values["kind"],
                country=values["country"],
                default_locale=values["locale"],
                timezone=values["timezone"],
                currency=values["currency"],
                siret=values["siret"] or None,
                vat_number=_organization_vat(values["vat_number"]),
            ),
            None,
            acting.actor,
            status="trial" if trial_days else "active",
        )
        ctx = acting_in_tenant(acting, tenant)
        sub = await subscribe(
            ctx,
            choice.code,
            at=now,
            quantity=int(values["quantity"]),
            currency=values["currency"],
            price_category=choice.category,
            trial=bool(trial_days),
            collection_method=values["collection_method"],
            gateway="manual",
            net_terms_days=int(values["net_terms_days"]),
        )
        if trial_days:
            trial_end = now + timedelta(days=trial_days)
            if sub.status != SubscriptionStatus.TRIALING or sub.trial_end != trial_end:
                # The plan's own trial (or none) gives way to the length agreed.
                await execute(
                    """UPDATE subscription SET status = 'trialing', trial_end = $2,
                           current_period_end = $2, status_changed_at = $3, updated_at = $3
                       WHERE tenant_id = $1""",
                    ctx.tenant_id,
                    trial_end,
                    now,
                )
                await record(
                    ctx,
                    "billing.subscription.trial_set",
                    "subscription",
                    sub.id,
                    days=trial_days,
                    trial_end=trial_end,
                )
        await save_profile(ctx, profile_fields(values), po_number=po_number or None)
        await record_staff_action(
            acting,
            "tenant.onboarded",
            "organization",
            tenant.id,
            tenant_id=tenant.id,
            slug=tenant.slug,
            kind=values["kind"],
            country=values["country"],
            plan=choice.code,
            price_category=choice.category,
            currency=values["currency"],
            collection_method=values["collection_method"],
            trial_days=trial_days,
            admin_email=values["admin_email"],
            admin_name=values["admin_name"],
        )
    return tenant


def _organization_vat(number: str) -> str | None:
    """The VAT number the organization row keeps (one with its country prefix; the billing
    profile keeps any)."""
    if 4 <= len(number) <= 15 and number[:2].isalpha() and number.isalnum():
        return number
    return None


def wizard_values(state: Mapping[str, Any]) -> dict[str, str]:
    """The kept values of the wizard (strings only, the reason left out)."""
    keep = {name for step in STEPS[:-1] for name in STEP_FIELDS[step]}
    return {key: str(value) for key, value in state.items() if key in keep}
