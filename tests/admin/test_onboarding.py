"""The onboarding wizard, `/admin/tenants/new`: an account manager creates a tenant step by
step; nothing is written before the confirm step; wrong input re-renders its step (422) with
what was typed; only staff who manage tenants and billing reach it."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from billing.catalogue import Plan, PlanFields, PlanKind, create_plan, set_price, system_staff
from core import database
from tests.admin.conftest import StaffFixture
from tests.api.conftest import Browser, audit_actions
from tests.conftest import TenantFixture

PATH = "/admin/tenants/new"
STAFF = system_staff("tests")


async def nok_licence() -> Plan:
    """An annual licence of 500 seats with a price in Norwegian crowns (and in euros)."""
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"licence-{uuid4().hex[:10]}",
            kind=PlanKind.LICENSE,
            names={"en": "Annual licence, 500 seats", "fr": "Licence annuelle"},
            interval="year",
            overage_policy="warn",
            included_seats=500,
        ),
    )
    await set_price(STAFF, plan.code, "NOK", 13_500_000)
    await set_price(STAFF, plan.code, "EUR", 1_200_000)
    return plan


@pytest.fixture
async def licence(db: str) -> Plan:
    return await nok_licence()


def agency_steps(plan: Plan, slug: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("kind", {"kind": "foreign_agency", "country": "NO"}),
        (
            "organization",
            {
                "name": "Digital Agency of Fjordby",
                "slug": slug,
                "locale": "en",
                "timezone": "Europe/Oslo",
                "currency": "NOK",
            },
        ),
        (
            "plan",
            {
                "plan": f"{plan.code}:standard",
                "quantity": "1",
                "collection_method": "send_invoice",
                "net_terms_days": "30",
                "po_number": "PO-2026-77",
                "trial_days": "",
            },
        ),
        (
            "billing",
            {
                "legal_name": "Digital Agency of Fjordby",
                "buyer_kind": "public",
                "billing_email": "invoices@fjordby.example",
                "address_line1": "Storgata 1",
                "address_line2": "",
                "postal_code": "0155",
                "city": "Oslo",
                "billing_country": "NO",
                "vat_number": "NO123456789MVA",
                "siret": "",
                "chorus_service_code": "",
            },
        ),
        ("admin", {"admin_email": "ingrid@fjordby.example", "admin_name": "Ingrid Berg"}),
    ]


async def submit(web: Browser, step: str, data: dict[str, str]) -> httpx.Response:
    return await web.post(PATH, {"step": step, **data}, page=f"{PATH}?step={step}")


async def walk(web: Browser, steps: list[tuple[str, dict[str, str]]]) -> None:
    for step, data in steps:
        response = await submit(web, step, data)
        assert response.status_code == 303, (step, response.text)


async def organization_of(slug: str) -> dict[str, Any] | None:
    async with database.global_transaction():
        rows = await database.fetch("SELECT * FROM organization WHERE slug = $1", slug)
    return dict(rows[0]) if rows else None


async def staff_trail(action: str, tenant_id: UUID | None = None) -> list[dict[str, Any]]:
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT * FROM staff_audit WHERE action = $1"
            " AND ($2::uuid IS NULL OR organization_id = $2)",
            action,
            tenant_id,
        )
    return [dict(row) for row in rows]


def errors_of(html: str) -> list[tuple[str, str]]:
    return re.findall(r'class="field-error" id="f-(\w+)-error">([^<]*)<', html)


async def test_an_account_manager_onboards_a_foreign_agency_on_a_licence_paid_by_transfer(
    am_browser: Browser, account_manager: StaffFixture, licence: Plan
) -> None:
    slug = f"fjordby-{uuid4().hex[:6]}"
    await walk(am_browser, agency_steps(licence, slug))
    # nothing exists before the confirm step
    assert await organization_of(slug) is None
    confirm = await am_browser.get(f"{PATH}?step=confirm")
    assert confirm.status_code == 200
    assert "Digital Agency of Fjordby" in confirm.text
    assert "ingrid@fjordby.example" in confirm.text
    assert "Out of the scope of EU VAT" in confirm.text  # Norway: no EU VAT
    response = await submit(am_browser, "confirm", {"reason": "Signed order 2026-77"})
    assert response.status_code == 303, response.text
    org = await organization_of(slug)
    assert org is not None
    assert response.headers["location"] == f"/admin/tenants/{org['id']}"
    assert (org["kind"], org["country"], org["currency"], org["status"]) == (
        "foreign_agency",
        "NO",
        "NOK",
        "active",
    )
    assert (org["default_locale"], org["timezone"]) == ("en", "Europe/Oslo")
    async with _as(org["id"]):
        sub = (await database.fetch("SELECT * FROM subscription WHERE tenant_id = $1", org["id"]))[
            0
        ]
        profile = (
            await database.fetch("SELECT * FROM billing_profile WHERE tenant_id = $1", org["id"])
        )[0]
        invitations = await database.fetch(
            "SELECT email, role FROM invitation WHERE tenant_id = $1", org["id"]
        )
        invoices = await database.fetch(
            "SELECT status, collection_method, po_number, currency FROM invoice"
            " WHERE tenant_id = $1",
            org["id"],
        )
    assert (sub["status"], sub["collection_method"], sub["gateway"]) == (
        "active",
        "send_invoice",
        "manual",
    )
    assert (sub["net_terms_days"], sub["po_number"], sub["currency"].strip()) == (
        30,
        "PO-2026-77",
        "NOK",
    )
    assert sub["quantity"] == 500
    assert (profile["legal_name"], profile["buyer_kind"], profile["vat_number"]) == (
        "Digital Agency of Fjordby",
        "public",
        "NO123456789MVA",
    )
    assert [(i["email"], i["role"]) for i in invitations] == [("ingrid@fjordby.example", "owner")]
    # paid from the first day by bank transfer: its first invoice is issued
    assert [(i["status"], i["collection_method"]) for i in invoices] == [("open", "send_invoice")]
    async with database.global_transaction():
        mails = await database.fetch(
            "SELECT subject FROM mail_message WHERE to_address = $1", "ingrid@fjordby.example"
        )
    assert any("Digital Agency of Fjordby" in m["subject"] for m in mails)
    # audited: the tenant's log shows the service provider; the staff trail the onboarding
    actions = await audit_actions(org["id"])
    assert actions[0] == "organization.created"
    assert "billing.subscription.active" in actions
    assert "member.invited" in actions
    onboarded = await staff_trail("tenant.onboarded", org["id"])
    assert len(onboarded) == 1
    assert onboarded[0]["reason"] == "Signed order 2026-77"
    assert onboarded[0]["staff_user_id"] == account_manager.user.id
    async with _as(org["id"]):
        kinds = await database.fetch(
            "SELECT DISTINCT actor_kind FROM audit_event WHERE tenant_id = $1", org["id"]
        )
    assert [k["actor_kind"] for k in kinds] == ["staff"]
    # the wizard starts afresh
    fresh = await am_browser.get(PATH)
    assert "was created" in fresh.text  # the notice, shown once
    assert 'aria-current="step">Kind and country' in fresh.text


def _as(tenant_id: UUID) -> Any:
    from core.database import SystemScope, tenant_transaction

    return tenant_transaction(SystemScope(tenant_id))


async def test_the_kind_and_country_set_the_defaults(am_browser: Browser, licence: Plan) -> None:
    await submit(am_browser, "kind", {"kind": "foreign_agency", "country": "no"})
    page = await am_browser.get(f"{PATH}?step=organization")
    assert re.search(r'<option value="NOK" selected>', page.text)
    assert re.search(r'<option value="en" selected>', page.text)
    assert 'value="Europe/Oslo"' in page.text
    await submit(
        am_browser,
        "organization",
        {
            "name": "Fjordby",
            "slug": "",
            "locale": "en",
            "timezone": "Europe/Oslo",
            "currency": "NOK",
        },
    )
    plan_page = await am_browser.get(f"{PATH}?step=plan")
    assert re.search(r'<option value="send_invoice" selected>', plan_page.text)
    assert re.search(r'id="f-net_terms_days"[^>]*value="30"', plan_page.text)
    # a French local authority: French, Paris, euros; the kind step again resets them
    await submit(am_browser, "kind", {"kind": "local_authority", "country": "FR"})
    again = await am_browser.get(f"{PATH}?step=organization")
    assert re.search(r'<option value="fr" selected>', again.text)
    assert re.search(r'<option value="EUR" selected>', again.text)
    assert 'value="Europe/Paris"' in again.text
    assert 'value="Fjordby"' in again.text  # what was typed is kept


async def test_the_back_link_keeps_what_was_typed(am_browser: Browser, licence: Plan) -> None:
    steps = agency_steps(licence, f"back-{uuid4().hex[:6]}")
    await walk(am_browser, steps[:3])
    page = await am_browser.get(f"{PATH}?step=plan")
    assert f'href="{PATH}?step=organization"' in page.text
    back = await am_browser.get(f"{PATH}?step=organization")
    assert 'value="Digital Agency of Fjordby"' in back.text
    plan = await am_browser.get(f"{PATH}?step=plan")
    assert 'value="PO-2026-77"' in plan.text
    # a later step than the first missing one sends back to it
    ahead = await am_browser.get(f"{PATH}?step=confirm")
    assert ahead.status_code == 303
    assert ahead.headers["location"] == f"{PATH}?step=billing"


@pytest.mark.parametrize(
    ("step", "data", "field"),
    [
        ("kind", {"kind": "company", "country": "XX1"}, "country"),
        ("kind", {"kind": "pirate", "country": "FR"}, "kind"),
    ],
)
async def test_a_wrong_first_step_is_shown_again_with_its_message(
    am_browser: Browser, step: str, data: dict[str, str], field: str
) -> None:
    response = await submit(am_browser, step, data)
    assert response.status_code == 422
    assert [name for name, _ in errors_of(response.text)] == [field]
    assert f'value="{data["country"]}"' in response.text  # what was typed is kept
    follow = await am_browser.get(PATH)
    assert 'aria-current="step">Kind and country' in follow.text


async def test_wrong_input_at_each_step_keeps_the_values_and_writes_nothing(
    am_browser: Browser, tenant_a: TenantFixture, licence: Plan
) -> None:
    slug = f"wrong-{uuid4().hex[:6]}"
    steps = dict(agency_steps(licence, slug))
    await walk(am_browser, [("kind", steps["kind"])])
    # a slug already taken: the message is on the slug field
    taken = await submit(
        am_browser, "organization", {**steps["organization"], "slug": tenant_a.slug}
    )
    assert taken.status_code == 422
    assert errors_of(taken.text) == [("slug", "This identifier is already taken.")]
    assert 'value="Digital Agency of Fjordby"' in taken.text
    bad_currency = await submit(
        am_browser, "organization", {**steps["organization"], "currency": "XYZ"}
    )
    assert bad_currency.status_code == 422
    assert errors_of(bad_currency.text)[0][0] == "currency"
    await walk(am_browser, [("organization", steps["organization"])])
    for data, field in [
        ({"plan": "nope:standard"}, "plan"),
        ({"net_terms_days": "-3"}, "net_terms_days"),
        ({"trial_days": "999"}, "trial_days"),
        ({"collection_method": "automatic"}, "collection_method"),  # no Stripe here
        ({"po_number": "x" * 65}, "po_number"),
    ]:
        response = await submit(am_browser, "plan", {**steps["plan"], **data})
        assert response.status_code == 422, data
        assert errors_of(response.text)[0][0] == field, data
    await walk(am_browser, [("plan", steps["plan"])])
    bad_vat = await submit(
        am_browser, "billing", {**steps["billing"], "billing_country": "DE", "vat_number": "DE1"}
    )
    assert bad_vat.status_code == 422
    assert errors_of(bad_vat.text)[0][0] == "vat_number"
    await walk(am_browser, [("billing", steps["billing"])])
    bad_email = await submit(am_browser, "admin", {"admin_email": "nobody", "admin_name": "X"})
    assert bad_email.status_code == 422
    assert errors_of(bad_email.text)[0][0] == "admin_email"
    await walk(am_browser, [("admin", steps["admin"])])
    no_reason = await submit(am_browser, "confirm", {"reason": ""})
    assert no_reason.status_code == 422
    assert errors_of(no_reason.text)[0][0] == "reason"
    assert await organization_of(slug) is None


async def test_a_slug_taken_meanwhile_shows_the_organization_step(
    am_browser: Browser, licence: Plan
) -> None:
    slug = f"race-{uuid4().hex[:6]}"
    await walk(am_browser, agency_steps(licence, slug))
    from tenants.context import Actor
    from tenants.organizations import OrganizationFields, create_organization
    from tests.conftest import make_user

    owner = await make_user("Racer Owner")
    await create_organization(
        OrganizationFields(name="Racer", slug=slug, kind="company", country="FR"),
        owner,
        Actor(kind="user", user_id=owner.id, label=owner.email),
    )
    response = await submit(am_browser, "confirm", {"reason": "Signed order"})
    assert response.status_code == 422
    assert errors_of(response.text) == [("slug", "This identifier is already taken.")]
    # the organization step, where the identifier is typed, with its message
    assert 'aria-current="step">Organization' in response.text
    trail = await staff_trail("tenant.onboarded")
    assert [row for row in trail if slug in str(row["details"])] == []


async def test_a_trial_of_the_agreed_length(am_browser: Browser, licence: Plan) -> None:
    slug = f"trial-{uuid4().hex[:6]}"
    steps = agency_steps(licence, slug)
    steps[2] = ("plan", {**steps[2][1], "trial_days": "45"})
    await walk(am_browser, steps)
    response = await submit(am_browser, "confirm", {"reason": "Pilot agreed"})
    assert response.status_code == 303
    org = await organization_of(slug)
    assert org is not None
    assert org["status"] == "trial"
    async with _as(org["id"]):
        sub = (await database.fetch("SELECT * FROM subscription WHERE tenant_id = $1", org["id"]))[
            0
        ]
        invoices = await database.fetch("SELECT id FROM invoice WHERE tenant_id = $1", org["id"])
    assert sub["status"] == "trialing"
    assert (sub["trial_end"] - sub["current_period_start"]).days == 45
    assert invoices == []
    assert "billing.subscription.trial_set" in await audit_actions(org["id"])


async def test_support_and_content_editors_are_refused(
    browser: Browser, support: StaffFixture, content_editor: StaffFixture
) -> None:
    from tests.admin.conftest import staff_login

    for staff in (support, content_editor):
        await staff_login(browser, staff)
        assert (await browser.get(PATH)).status_code == 403
        response = await browser.post(
            PATH, {"step": "kind", "kind": "company", "country": "FR"}, page="/admin/second-factor"
        )
        assert response.status_code == 403
        await browser.post("/logout", {}, page="/admin/second-factor")


async def test_a_tenant_owner_is_told_it_does_not_exist(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    assert (await browser.get(PATH)).status_code == 404
    response = await browser.post(PATH, {"step": "kind", "kind": "company", "country": "FR"})
    assert response.status_code == 404


def test_the_defaults_table() -> None:
    from billing.onboarding import defaults_for
    from billing.profiles import TaxKind
    from core.settings import Settings

    settings = Settings(billing_seller_country="FR")
    offered = ["EUR", "NOK"]
    company = defaults_for("company", "FR", offered, settings, card_ok=True)
    assert (company.locale, company.timezone, company.currency) == ("fr", "Europe/Paris", "EUR")
    assert (company.collection_method, company.buyer_kind, company.tax) == (
        "automatic",
        "business",
        TaxKind.STANDARD,
    )
    # without card payments on the server, a company is invoiced too
    assert defaults_for("company", "FR", offered, settings, card_ok=False).collection_method == (
        "send_invoice"
    )
    german = defaults_for("company", "DE", offered, settings, card_ok=True)
    assert (german.locale, german.timezone, german.tax) == (
        "en",
        "Europe/Berlin",
        TaxKind.REVERSE_CHARGE,
    )
    city = defaults_for("local_authority", "BE", offered, settings, card_ok=True)
    assert (city.locale, city.collection_method, city.net_terms_days, city.buyer_kind) == (
        "fr",
        "send_invoice",
        30,
        "public",
    )
    agency = defaults_for("foreign_agency", "NO", offered, settings, card_ok=True)
    assert (agency.currency, agency.tax, agency.collection_method) == (
        "NOK",
        TaxKind.OUT_OF_SCOPE,
        "send_invoice",
    )
    # no price in Swedish crowns: the euro
    assert defaults_for("foreign_agency", "SE", offered, settings, card_ok=True).currency == "EUR"
    assert defaults_for("other", "JP", offered, settings, card_ok=True).timezone == "Asia/Tokyo"


async def test_a_company_paying_by_card_starts_with_a_trial(
    account_manager: StaffFixture, licence: Plan
) -> None:
    from dataclasses import replace

    from billing.onboarding import OnboardingFields, check_step, onboard
    from core.errors import Invalid
    from core.settings import get_settings

    cards = replace(get_settings(), stripe_secret_key="sk_test_onboarding")
    slug = f"cards-{uuid4().hex[:6]}"
    values = {k: v for _, data in agency_steps(licence, slug) for k, v in data.items()}
    values.update(kind="company", collection_method="automatic", net_terms_days="0")
    with pytest.raises(Invalid) as refused:
        await check_step("plan", values, cards)
    assert refused.value.field == "trial_days"
    with pytest.raises(Invalid) as no_stripe:
        await check_step("plan", {**values, "trial_days": "14"}, get_settings())
    assert no_stripe.value.field == "collection_method"
    fields = OnboardingFields.from_values({**values, "trial_days": "14", "reason": "Web deal"})
    tenant = await onboard(account_manager.ctx, fields, cards)
    async with _as(tenant.id):
        sub = (await database.fetch("SELECT * FROM subscription WHERE tenant_id = $1", tenant.id))[
            0
        ]
    assert (sub["status"], sub["collection_method"], sub["gateway"]) == (
        "trialing",
        "automatic",
        "manual",  # until the owner's Stripe checkout completes (billing.inbox)
    )
    # and support staff cannot onboard, whatever they send
    from tests.admin.conftest import make_staff_member

    support = await make_staff_member("support", "Sue Support")
    from core.errors import Forbidden

    with pytest.raises(Forbidden):
        await onboard(support.ctx, fields, cards)
