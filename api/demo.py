"""Demo data: three organizations (a company, a city, a foreign agency) with their people, and
billing on the manual gateway (no Stripe keys): a catalogue, Atelier on a per-seat trial,
Belleval on a seat pack its residents' tests consume, Nordvik on an annual licence invoiced
for bank transfer.

Idempotent: people, organizations, plans and subscriptions that exist are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.dev_idp import DEMO_DOMAIN, PERSONAS, connection_fields
from billing import invoices, seats
from billing.catalogue import (
    PlanFields,
    PlanKind,
    create_plan,
    plan_by_code,
    set_price,
    system_staff,
)
from billing.profiles import ProfileFields, billing_profile, save_profile
from billing.subscriptions import current_subscription, subscribe
from campaigns.campaign_fields import CampaignFields
from campaigns.campaign_listing import CampaignSummary, all_campaigns
from campaigns.participation.landing import participant_context
from campaigns.participation.rules import refuse_unless_accepting
from campaigns.participation.start import start_or_resume
from campaigns.service import create_campaign
from core.errors import Conflict, Gone, NotFound
from core.settings import Settings, get_settings
from sso.connections import create_connection, list_connections, set_enabled
from sso.domains import add_domain, list_domains, verify_domain
from tenants.accounts import UserAccount, create_user, find_user_by_email
from tenants.context import Actor, TenantContext
from tenants.invitations import invite
from tenants.members import add_member
from tenants.organizations import (
    OrganizationFields,
    create_organization,
    member_context,
    system_context,
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
    #: the languages a participant may take it in (the demo bank has fr, en, nl and de)
    locales: tuple[str, ...] = ("fr", "en")


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
            # a city's residents speak more than one language: the test in all four
            locales=("fr", "nl", "de", "en"),
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
    #: how to sign in through the demo identity provider (empty when it is off)
    sso: list[str] = field(default_factory=list)


STAFF = DemoPerson("account.manager@jalon.example", "Camille Roux", "fr", "account_manager")
#: The back office's demo staff (with the demo password): their second factor is set up at
#: their first sign-in.
STAFF_PEOPLE = (
    STAFF,
    DemoPerson("content@jalon.example", "Théo Marchand", "fr", "content_editor"),
)
STAFF_SIGN_IN = "set up your authenticator app at first sign-in: the page shows a QR code"


async def _person(person: DemoPerson) -> UserAccount:
    existing = await find_user_by_email(person.email)
    if existing:
        return existing
    return await create_user(person.email, person.name, PASSWORD, person.locale, verified=True)


async def _organization(demo: DemoOrganization) -> str:
    """Create what is missing of one demo organization; the code of its open campaign."""
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
    return await _open_campaign(ctx, demo.campaign)


def _accepting(campaign: CampaignSummary, now: datetime) -> bool:
    """Whether a participant opening this campaign's link now can start (the landing page's
    own rule): not a draft, not closed or archived, open and not ended."""
    try:
        refuse_unless_accepting(campaign.status, campaign.opens_at, campaign.closes_at, now)
    except (NotFound, Gone, Conflict):
        return False
    return True


async def _open_campaign(
    ctx: TenantContext, campaign: DemoCampaign, *, sso_required: bool = False
) -> str:
    """The code of a campaign named as the demo's that participants can open now: the oldest
    one (the seeded original, so that runs print the same link), not a copy someone made and
    closed, nor a draft. When none is open any more, a new one is made, so the printed link
    always works."""
    now = datetime.now(UTC)
    named = [c for c in await all_campaigns(ctx) if c.name == campaign.name]
    for existing in reversed(named):  # newest first: the original is last
        if _accepting(existing, now):
            return existing.code
    created = await create_campaign(
        ctx,
        CampaignFields(
            name=campaign.name,
            profile_key=campaign.profile_key,
            landing_text=campaign.landing_text,
            external_id_label=campaign.external_id_label,
            sso_required=sso_required,
            locales=campaign.locales,
        ),
    )
    return created.code


# --- billing (manual gateway) -----------------------------------------------------------

#: The catalogue: each plan with its prices (currency, category, minor units).
PLANS: tuple[tuple[PlanFields, tuple[tuple[str, str, int], ...]], ...] = (
    (
        PlanFields(
            code="per-seat-monthly",
            kind=PlanKind.PER_SEAT,
            names={"en": "Per seat, monthly", "fr": "Au siège, mensuel"},
            descriptions={
                "en": "Pay for the people who take a test each month. 30 days free.",
                "fr": "Payez les personnes qui passent un test chaque mois. 30 jours offerts.",
            },
            interval="month",
            overage_policy="bill",
            trial_days=30,
        ),
        (("EUR", "standard", 500), ("NOK", "standard", 5_900)),
    ),
    (
        PlanFields(
            code="seat-pack-100",
            kind=PlanKind.SEAT_PACK,
            names={"en": "Pack of 100 seats", "fr": "Pack de 100 sièges"},
            descriptions={
                "en": "100 tests to use within 12 months.",
                "fr": "100 tests à utiliser sous 12 mois.",
            },
            interval="year",
            overage_policy="block",
            pack_seats=100,
            pack_validity_months=12,
        ),
        (("EUR", "public", 90_000), ("EUR", "reduced", 60_000), ("EUR", "full", 120_000)),
    ),
    (
        PlanFields(
            code="licence-500-annual",
            kind=PlanKind.LICENSE,
            names={"en": "Annual licence, 500 seats", "fr": "Licence annuelle, 500 sièges"},
            descriptions={
                "en": "Up to 500 people a year, invoiced once a year.",
                "fr": "Jusqu'à 500 personnes par an, facturé une fois par an.",
            },
            interval="year",
            overage_policy="warn",
            included_seats=500,
        ),
        (("EUR", "standard", 1_200_000), ("NOK", "standard", 13_500_000)),
    ),
)

#: Atelier's, Belleval's and Nordvik's billing details (numbers with valid check digits).
PROFILES = {
    "atelier-numerique": ProfileFields(
        legal_name="Atelier Numérique SARL",
        country="FR",
        billing_email="compta@atelier.example",
        address_line1="12 rue des Tanneurs",
        postal_code="69002",
        city="Lyon",
        vat_number="FR11123456782",
        siret="12345678200010",
    ),
    "ville-de-belleval": ProfileFields(
        legal_name="Commune de Belleval",
        country="FR",
        billing_email="finances@belleval.example",
        address_line1="Hôtel de ville, place de la République",
        postal_code="45000",
        city="Belleval",
        buyer_kind="public",
        siret="40412345700016",
        chorus_service_code="SERVICE-FINANCES",
    ),
    "nordvik-digital": ProfileFields(
        legal_name="Digital Agency of Nordvik",
        country="NO",
        billing_email="invoices@nordvik.example",
        address_line1="Storgata 1",
        postal_code="0155",
        city="Oslo",
        vat_number="NO123456789MVA",
    ),
}

#: Belleval's residents who took the city's test: each took one seat of its pack.
RESIDENTS = tuple(
    DemoPerson(f"habitant{n}@belleval.example", name, "fr", "participant")
    for n, name in enumerate(("Marie Garnier", "Paul Roussel", "Nadia Haddad"), start=1)
)


async def _catalogue() -> None:
    staff = system_staff("demo")
    for fields, prices in PLANS:
        try:
            await plan_by_code(fields.code)
        except NotFound:
            await create_plan(staff, fields)
            for currency, category, amount in prices:
                await set_price(staff, fields.code, currency, amount, category=category)


async def _context(demo: DemoOrganization) -> TenantContext:
    owner = await _person(demo.people[0])
    actor = Actor(kind="user", user_id=owner.id, label=owner.email)
    return await member_context(demo.fields.slug, owner, actor)


async def _billing(by_slug: dict[str, DemoOrganization], codes: dict[str, str]) -> None:
    """Each organization's subscription, details, invoice and seats, once; `codes` are the
    organizations' open campaigns, by slug."""
    await _catalogue()
    now = datetime.now(UTC)
    for slug, profile in PROFILES.items():
        ctx = await _context(by_slug[slug])
        if await billing_profile(ctx) is None:
            po = "BC-2026-0118" if slug == "ville-de-belleval" else None
            await _subscribe(ctx, slug, now)
            await save_profile(ctx, profile, po_number=po)
        # One invoice a period at most: a second run finds it issued.
        await invoices.bill_period(ctx, at=now, locale=by_slug[slug].fields.default_locale)
    belleval = by_slug["ville-de-belleval"]
    await _residents_take_the_test(await _context(belleval), codes[belleval.fields.slug])


async def _subscribe(ctx: TenantContext, slug: str, now: datetime) -> None:
    if await current_subscription(ctx) is not None:
        return
    if slug == "atelier-numerique":
        await subscribe(ctx, "per-seat-monthly", at=now, quantity=25)
    elif slug == "ville-de-belleval":
        await subscribe(ctx, "seat-pack-100", at=now, price_category="public", trial=False)
        await seats.add_seat_pack(
            ctx,
            system_staff("demo"),
            seats.SeatPackFields(
                seats=100, starts_on=now.date(), category="public", reference="BC-2026-0118"
            ),
        )
    else:
        await subscribe(ctx, "licence-500-annual", at=now, currency="NOK", trial=False)


async def _residents_take_the_test(ctx: TenantContext, code: str) -> None:
    """Belleval's residents start the city's open campaign (the one printed): each consumes a
    seat of the pack (a second run resumes their tests and consumes nothing)."""
    campaign = next(c for c in await all_campaigns(ctx) if c.code == code)
    for resident in RESIDENTS:
        account = await _person(resident)
        actor = Actor(kind="user", user_id=account.id, label=account.email)
        await start_or_resume(participant_context(ctx.tenant, actor), campaign.id)


# --- single sign-on through the development identity provider (JALON_DEV_IDP) ------------

SSO_ORGANIZATION = "atelier-numerique"
SSO_CONNECTION = "Annuaire de démonstration (OIDC)"
SSO_CAMPAIGN = DemoCampaign(
    "Bilan numérique des nouveaux arrivants",
    "digcomp",
    "Bienvenue dans l’atelier ! Connectez-vous avec votre compte d’entreprise, puis faites le "
    "point sur vos compétences numériques.",
    external_id_label="Matricule",
)


class _DemoSeedingResolver:
    """DNS as the demo seeding answers it: the TXT record each claim expects is "found", so
    the demo's domain is verified without a DNS zone. Only the seeding uses it, and the audit
    log names it (the acting system's label)."""

    def __init__(self, value: str) -> None:
        self.value = value

    async def txt(self, name: str) -> list[str]:
        return [self.value]


async def seed_sso(settings: Settings) -> list[str]:
    """Atelier signs its staff in through the development identity provider: its domain
    verified (by the seeding, which says so in the audit log), an enabled OIDC connection to
    the provider, and a campaign that requires it. What to print; nothing when the provider
    is off. Run after the organizations are seeded; safe to run again."""
    if not settings.dev_idp:
        return []
    tenant = await tenant_by_slug(SSO_ORGANIZATION)
    ctx = system_context(tenant, "demo seeding (DNS check bypassed)")
    claim = next((d for d in await list_domains(ctx) if d.domain == DEMO_DOMAIN), None)
    if claim is None:
        claim = await add_domain(ctx, DEMO_DOMAIN)
    if claim.verified_at is None:
        await verify_domain(ctx, claim.id, _DemoSeedingResolver(claim.record_value))
    if not any(c.name == SSO_CONNECTION for c in await list_connections(ctx)):
        connection_id = await create_connection(ctx, connection_fields(settings, SSO_CONNECTION))
        await set_enabled(ctx, connection_id, True)
    # Campaigns are made by a member of the organization: its owner.
    owner = await _context(next(d for d in ORGANIZATIONS if d.fields.slug == SSO_ORGANIZATION))
    code = await _open_campaign(owner, SSO_CAMPAIGN, sso_required=True)
    newcomer = PERSONAS[0]
    return [
        f"{settings.base_url}/c/{code}  {SSO_CAMPAIGN.name} (sign-in through the company's SSO)",
        f"Open it, continue with the company account, and pick {newcomer.given_name} "
        f"{newcomer.family_name} ({newcomer.email}), a new employee, on the demo identity "
        f"provider ({settings.base_url}/dev/idp): her account is made as she signs in.",
    ]


async def seed() -> DemoSignIns:
    """Create what is missing of the demo; return the sign-ins to print."""
    base_url = get_settings().base_url
    codes = {demo.fields.slug: await _organization(demo) for demo in ORGANIZATIONS}
    campaigns = [
        f"{base_url}/c/{codes[demo.fields.slug]}  {demo.campaign.name} ({demo.fields.name})"
        for demo in ORGANIZATIONS
    ]
    for person in STAFF_PEOPLE:
        account = await _person(person)
        if account.staff_role != person.role:  # run again: left as it is
            await make_staff(account.id, person.role)
    await _billing({demo.fields.slug: demo for demo in ORGANIZATIONS}, codes)
    accounts = [
        f"{p.email:<36} {p.role:<7} {demo.fields.name}"
        for demo in ORGANIZATIONS
        for p in demo.people
    ]
    accounts.extend(
        f"{p.email:<36} {p.role} (back office /admin; {STAFF_SIGN_IN})" for p in STAFF_PEOPLE
    )
    sso = await seed_sso(get_settings())
    return DemoSignIns(password=PASSWORD, accounts=accounts, campaigns=campaigns, sso=sso)
