"""Demo data: three organizations (a company, a city, a foreign agency) with their people.

Idempotent: people and organizations that exist are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.campaign_fields import CampaignFields
from campaigns.campaign_listing import all_campaigns
from campaigns.service import create_campaign
from core.errors import NotFound
from core.settings import get_settings
from tenants.accounts import UserAccount, create_user, find_user_by_email
from tenants.context import Actor
from tenants.invitations import invite
from tenants.members import add_member
from tenants.organizations import (
    OrganizationFields,
    create_organization,
    member_context,
    tenant_by_slug,
)
from tenants.staff import make_staff

PASSWORD = "jalon-demo-2026"  # noqa: S105 - published demo credential


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    locale: str
    role: str


@dataclass(frozen=True)
class DemoCampaign:
    name: str
    profile_key: str
    landing_text: str
    external_id_label: str | None = None


@dataclass(frozen=True)
class DemoOrganization:
    fields: OrganizationFields
    status: str
    people: tuple[DemoPerson, ...]
    invitee: str
    campaign: DemoCampaign


ORGANIZATIONS = (
    DemoOrganization(
        OrganizationFields(
            name="Atelier Numérique SARL",
            slug="atelier-numerique",
            kind="company",
            country="FR",
            default_locale="fr",
            siret="12345678900011",
            vat_number="FR12123456789",
        ),
        "active",
        (
            DemoPerson("claire.martin@atelier.example", "Claire Martin", "fr", "owner"),
            DemoPerson("karim.benali@atelier.example", "Karim Benali", "fr", "admin"),
            DemoPerson("sophie.leroy@atelier.example", "Sophie Leroy", "fr", "member"),
        ),
        "nouvelle.recrue@atelier.example",
        DemoCampaign(
            "Bilan bureautique avant formation",
            "office-essentials",
            "Avant la formation bureautique de janvier, faites le point sur vos compétences : "
            "une vingtaine de questions, sans préparation. Vos résultats ne sont partagés avec "
            "l’atelier que si vous le décidez.",
            external_id_label="Matricule",
        ),
    ),
    DemoOrganization(
        OrganizationFields(
            name="Ville de Belleval",
            slug="ville-de-belleval",
            kind="local_authority",
            country="FR",
            default_locale="fr",
        ),
        "active",
        (
            DemoPerson("maire@belleval.example", "Anne Dubois", "fr", "owner"),
            DemoPerson("mediation@belleval.example", "Lucas Petit", "fr", "member"),
        ),
        "conseiller.numerique@belleval.example",
        DemoCampaign(
            "Pass numérique des habitants",
            "digcomp",
            "La Ville de Belleval vous offre un bilan de vos compétences numériques, puis des "
            "ateliers gratuits adaptés à votre niveau à la médiathèque.",
        ),
    ),
    DemoOrganization(
        OrganizationFields(
            name="Digital Agency of Nordvik",
            slug="nordvik-digital",
            kind="foreign_agency",
            country="NO",
            default_locale="en",
            timezone="Europe/Oslo",
            currency="NOK",
        ),
        "trial",
        (
            DemoPerson("ingrid.hansen@nordvik.example", "Ingrid Hansen", "en", "owner"),
            DemoPerson("ola.berg@nordvik.example", "Ola Berg", "en", "admin"),
        ),
        "trainer@nordvik.example",
        DemoCampaign(
            "Staff online safety check",
            "online-safety",
            "A short adaptive check of how safely you work online, before the security "
            "awareness programme. Answer as you would at your desk.",
        ),
    ),
)


@dataclass(frozen=True)
class DemoSignIns:
    """What `jalon demo` prints: the shared password, one line per account and per campaign."""

    password: str
    accounts: list[str]
    campaigns: list[str]


STAFF = DemoPerson("account.manager@jalon.example", "Camille Roux", "fr", "account_manager")


async def _person(person: DemoPerson) -> UserAccount:
    existing = await find_user_by_email(person.email)
    if existing:
        return existing
    return await create_user(person.email, person.name, PASSWORD, person.locale, verified=True)


async def _organization(demo: DemoOrganization) -> str:
    """Create what is missing of one demo organization; the code of its campaign."""
    people = [await _person(p) for p in demo.people]
    owner = people[0]
    actor = Actor(kind="user", user_id=owner.id, label=owner.email)
    try:
        await tenant_by_slug(demo.fields.slug)
    except NotFound:
        await create_organization(demo.fields, owner, actor, status=demo.status)
        ctx = await member_context(demo.fields.slug, owner, actor)
        for person, account in zip(demo.people[1:], people[1:], strict=True):
            await add_member(ctx, account, person.role)
        await invite(ctx, demo.invitee, "member", get_settings())
    ctx = await member_context(demo.fields.slug, owner, actor)
    for existing in await all_campaigns(ctx):
        if existing.name == demo.campaign.name:
            return existing.code
    created = await create_campaign(
        ctx,
        CampaignFields(
            name=demo.campaign.name,
            profile_key=demo.campaign.profile_key,
            landing_text=demo.campaign.landing_text,
            external_id_label=demo.campaign.external_id_label,
        ),
    )
    return created.code


async def seed() -> DemoSignIns:
    """Create what is missing of the demo; return the sign-ins to print."""
    base_url = get_settings().base_url
    campaigns = [
        f"{base_url}/c/{await _organization(demo)}  {demo.campaign.name} ({demo.fields.name})"
        for demo in ORGANIZATIONS
    ]
    staff = await _person(STAFF)
    await make_staff(staff.id, STAFF.role)
    accounts = [
        f"{p.email:<36} {p.role:<7} {demo.fields.name}"
        for demo in ORGANIZATIONS
        for p in demo.people
    ]
    accounts.append(f"{STAFF.email:<36} staff   (back office)")
    return DemoSignIns(password=PASSWORD, accounts=accounts, campaigns=campaigns)
