"""Organizations: self-serve signup, the tenant context of a request, settings."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from core.database import (
    SystemScope,
    dangerously_switch_tenant,
    execute,
    fetch,
    global_transaction,
    hinted_transaction,
    tenant_transaction,
)
from core.errors import Conflict, Invalid, NotFound
from core.validation import (
    check_readable,
    clean_choice,
    clean_colour,
    clean_locale,
    clean_slug,
    clean_text,
    clean_timezone,
)
from tenants import audit
from tenants.accounts import NewAccount, UserAccount, account_of, insert_account
from tenants.context import Actor, TenantContext, TenantSummary
from tenants.permissions import Permission, Role, permissions_of

KINDS = ("company", "local_authority", "foreign_agency", "school", "other")
STATUSES = ("trial", "active", "suspended", "closed")
LOGO_TYPES = {"image/png", "image/jpeg", "image/svg+xml", "image/webp"}
LOGO_MAX_BYTES = 100_000


#: `TenantSummary`'s fields that are columns of `organization` (`has_logo` is derived).
_SUMMARY_FIELDS = ("id", "slug", "name", "status", "default_locale", "timezone", "brand_colour")


def summary_columns(alias: str, prefix: str = "") -> str:
    """What requests need of an organization (`TenantSummary`, read by `summary` with the
    same `prefix`): the columns of the `organization` row named `alias` in a query, each
    named `prefix` + its field when a prefix is given (a row that holds other things too)."""
    named = (f"{alias}.{f} AS {prefix}{f}" if prefix else f"{alias}.{f}" for f in _SUMMARY_FIELDS)
    return f"{', '.join(named)}, {alias}.logo_data_url IS NOT NULL AS {prefix}has_logo"


#: An organization's summary, for any module to narrow down (`WHERE …`).
SUMMARY_SQL = f"SELECT {summary_columns('o')} FROM organization o"  # noqa: S608 - constant


@dataclass(frozen=True)
class OrganizationFields:
    """What a person types to create or describe an organization."""

    name: str
    slug: str
    kind: str
    country: str
    default_locale: str = "fr"
    timezone: str = "Europe/Paris"
    currency: str = "EUR"
    siret: str | None = None
    vat_number: str | None = None
    parent_slug: str | None = None


def _clean_fields(fields: OrganizationFields) -> dict[str, Any]:
    country = (fields.country or "").strip().upper()
    if len(country) != 2 or not country.isalpha() or not country.isascii():
        raise Invalid("Enter a two-letter country code (e.g. FR).", field="country")
    currency = (fields.currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        raise Invalid("Enter a three-letter currency code (e.g. EUR).", field="currency")
    siret = (fields.siret or "").replace(" ", "") or None
    if siret is not None and (len(siret) != 14 or not siret.isdigit()):
        raise Invalid("A SIRET has 14 digits.", field="siret")
    vat = (fields.vat_number or "").replace(" ", "").upper() or None
    if vat is not None and not (
        4 <= len(vat) <= 15 and vat[:2].isalpha() and vat.isalnum() and vat.isascii()
    ):
        raise Invalid(
            "Enter a VAT number with its country prefix (e.g. FR12345678901).", field="vat_number"
        )
    timezone = clean_timezone(fields.timezone)
    return {
        "name": clean_text(fields.name, "name", max_length=200),
        "slug": clean_slug(fields.slug),
        "kind": clean_choice(fields.kind, KINDS, "kind"),
        "country": country,
        "default_locale": clean_locale(fields.default_locale, "default_locale"),
        "timezone": timezone,
        "currency": currency,
        "siret": siret,
        "vat_number": vat,
    }


def _slug_or_none(text: str) -> str | None:
    """`text` as a slug to look up, or None when no organization can have it (a slug from a
    URL may hold anything, NUL included, which the database would refuse with an error)."""
    try:
        return clean_slug(text)
    except Invalid:
        return None


def summary(row: dict[str, Any], prefix: str = "") -> TenantSummary:
    """The summary of an organization from a row of `summary_columns` (`SUMMARY_SQL`'s), read
    with the same `prefix`."""
    return TenantSummary(
        id=row[prefix + "id"],
        slug=row[prefix + "slug"],
        name=row[prefix + "name"],
        status=row[prefix + "status"],
        default_locale=row[prefix + "default_locale"],
        timezone=row[prefix + "timezone"],
        brand_colour=row[prefix + "brand_colour"],
        has_logo=row[prefix + "has_logo"],
    )


async def insert_organization(
    fields: OrganizationFields, owner: UserAccount | None, actor: Actor, status: str = "trial"
) -> TenantSummary:
    """Create an organization (and its owner's membership) in the caller's transaction.

    The tenant is set on the transaction right after the organization row exists, so the
    membership and the audit event pass row-level security.
    """
    values = _clean_fields(fields)
    parent_id = None
    if fields.parent_slug:
        parents = await fetch("SELECT id FROM organization WHERE slug = $1", fields.parent_slug)
        if not parents:
            raise Invalid("No organization has this identifier.", field="parent_slug")
        parent_id = parents[0]["id"]
    org_id = uuid4()
    try:
        await execute(
            """INSERT INTO organization (id, name, slug, kind, country, default_locale, timezone,
                   currency, status, siret, vat_number, parent_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
            org_id,
            values["name"],
            values["slug"],
            values["kind"],
            values["country"],
            values["default_locale"],
            values["timezone"],
            values["currency"],
            clean_choice(status, STATUSES, "status"),
            values["siret"],
            values["vat_number"],
            parent_id,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("This identifier is already taken.", field="slug") from None
    await dangerously_switch_tenant(org_id)
    ctx = TenantContext(
        tenant=summary((await fetch(SUMMARY_SQL + " WHERE id = $1", org_id))[0]), actor=actor
    )
    await audit.record(
        ctx,
        "organization.created",
        "organization",
        org_id,
        name=values["name"],
        slug=values["slug"],
        kind=values["kind"],
    )
    if owner is not None:
        membership_id = uuid4()
        await execute(
            "INSERT INTO membership (tenant_id, id, user_id, role) VALUES ($1, $2, $3, 'owner')",
            org_id,
            membership_id,
            owner.id,
        )
        await audit.record(
            ctx, "member.added", "membership", membership_id, email=owner.email, role="owner"
        )
    return ctx.tenant


async def create_organization(
    fields: OrganizationFields, owner: UserAccount | None, actor: Actor, status: str = "trial"
) -> TenantSummary:
    """Self-serve signup or operator creation: a new organization, starting in `trial`."""
    async with global_transaction(user_id=actor.user_id):
        return await insert_organization(fields, owner, actor, status)


async def signup(
    fields: OrganizationFields,
    owner: UserAccount | None,
    new_owner: NewAccount | None,
    actor: Actor,
) -> tuple[UserAccount, TenantSummary]:
    """Self-serve signup: the organization (in `trial`) and, when needed, its owner's account,
    in one transaction, so a refused organization leaves no orphan account behind."""
    async with global_transaction(user_id=actor.user_id):
        if owner is None:
            if new_owner is None:
                raise Invalid("Create your account to continue.")
            owner = await insert_account(
                new_owner.email, new_owner.name, new_owner.password, new_owner.locale
            )
            actor = Actor(
                kind="user",
                user_id=owner.id,
                label=owner.email,
                ip=actor.ip,
                user_agent=actor.user_agent,
            )
        tenant = await insert_organization(fields, owner, actor)
    return owner, tenant


async def member_context(slug: str, user: UserAccount, actor: Actor) -> TenantContext:
    """The context of `user` acting in the organization `slug`.

    Unknown organization and "not a member" answer the same `NotFound`.
    """
    if _slug_or_none(slug) is None:
        raise NotFound()
    async with global_transaction(user_id=user.id):
        orgs = await fetch(SUMMARY_SQL + " WHERE slug = $1", slug.lower())
        if not orgs or orgs[0]["status"] == "closed":
            raise NotFound()
        tenant = summary(orgs[0])
        await dangerously_switch_tenant(tenant.id)
        rows = await fetch(
            # A suspended member (a directory deactivated them) acts nowhere, like a stranger.
            """SELECT role FROM membership
               WHERE tenant_id = $1 AND user_id = $2 AND suspended_at IS NULL""",
            tenant.id,
            user.id,
        )
    if not rows:
        raise NotFound()
    role = rows[0]["role"]
    return TenantContext(tenant=tenant, actor=actor, permissions=permissions_of(role), role=role)


@dataclass(frozen=True)
class MyOrganization:
    """An organization a person belongs to, and their role in it."""

    id: UUID
    slug: str
    name: str
    kind: str
    status: str
    role: str


async def my_organizations(user_id: UUID) -> list[MyOrganization]:
    """The organizations a person belongs to (closed ones and suspended memberships aside) by
    name, with their role (read through `own_rows`)."""
    async with global_transaction(user_id=user_id):
        rows = await fetch(
            """SELECT o.id, o.slug, o.name, o.kind, o.status, m.role
               FROM membership m JOIN organization o ON o.id = m.tenant_id
               WHERE m.user_id = $1 AND m.suspended_at IS NULL AND o.status <> 'closed'
               ORDER BY o.name""",
            user_id,
        )
    return [
        MyOrganization(
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            kind=row["kind"],
            status=row["status"],
            role=row["role"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Organization:
    """An organization as its members see it: identity, settings and status."""

    id: UUID
    slug: str
    name: str
    kind: str
    #: ISO 3166 two-letter code, upper case
    country: str
    default_locale: str
    timezone: str
    #: ISO 4217 three-letter code
    currency: str
    status: str
    siret: str | None
    vat_number: str | None
    #: the slug of the organization this one belongs to, if any
    parent_slug: str | None
    brand_colour: str | None
    has_logo: bool
    created_at: datetime
    updated_at: datetime


async def get_organization(ctx: TenantContext) -> Organization:
    """The context's organization (its logo aside: `logo` serves it)."""
    ctx.require(Permission.ORGANIZATION_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT o.id, o.slug, o.name, o.kind, o.country, o.default_locale, o.timezone,
                      o.currency, o.status, o.siret, o.vat_number, p.slug AS parent_slug,
                      o.brand_colour, o.logo_data_url IS NOT NULL AS has_logo, o.created_at,
                      o.updated_at
               FROM organization o
               LEFT JOIN organization p ON p.id = o.parent_id WHERE o.id = $1""",
            ctx.tenant_id,
        )
    return Organization(**rows[0])


async def logo(slug: str) -> tuple[str, bytes] | None:
    """The organization's logo as (content type, bytes), public like its landing pages."""
    if _slug_or_none(slug) is None:
        return None
    async with global_transaction():
        rows = await fetch("SELECT logo_data_url FROM organization WHERE slug = $1", slug)
    if not rows or not rows[0]["logo_data_url"]:
        return None
    header, _, payload = rows[0]["logo_data_url"].partition(",")
    return header.removeprefix("data:").removesuffix(";base64"), base64.b64decode(payload)


def _logo_data_url(content_type: str, data: bytes) -> str:
    if content_type not in LOGO_TYPES:
        raise Invalid("The logo must be a PNG, JPEG, WebP or SVG image.", field="logo")
    if len(data) > LOGO_MAX_BYTES:
        raise Invalid("The logo must weigh 100 KB at most.", field="logo")
    signatures = {
        "image/png": data.startswith(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg": data.startswith(b"\xff\xd8\xff"),
        "image/webp": data[:4] == b"RIFF" and data[8:12] == b"WEBP",
        "image/svg+xml": b"<svg" in data[:1024] and b"<script" not in data.lower(),
    }
    if not signatures[content_type]:
        raise Invalid("The logo file is not a valid image.", field="logo")
    try:
        encoded = base64.b64encode(data).decode()
    except binascii.Error:  # pragma: no cover - bytes always encode
        raise Invalid("The logo file is not a valid image.", field="logo") from None
    return f"data:{content_type};base64,{encoded}"


@dataclass(frozen=True)
class SettingsChange:
    name: str
    default_locale: str
    brand_colour: str | None
    logo: tuple[str, bytes] | None = None
    remove_logo: bool = False


async def update_settings(ctx: TenantContext, change: SettingsChange) -> TenantSummary:
    """Change the name, default language, brand colour and logo; audited with the diff."""
    ctx.require(Permission.ORGANIZATION_UPDATE)
    name = clean_text(change.name, "name", max_length=200)
    locale = clean_locale(change.default_locale, "default_locale")
    colour = clean_colour(change.brand_colour, readable=False)
    logo_url = _logo_data_url(*change.logo) if change.logo else None
    async with tenant_transaction(ctx):
        before = (await fetch(SUMMARY_SQL + " WHERE id = $1 FOR UPDATE", ctx.tenant_id))[0]
        if colour is not None and colour != before["brand_colour"]:
            # A colour saved before the contrast rule stays until it is changed: the form
            # sends it back with every other change.
            check_readable(colour)
        await execute(
            """UPDATE organization SET name = $2, default_locale = $3, brand_colour = $4,
                   logo_data_url = CASE WHEN $5 THEN NULL ELSE coalesce($6, logo_data_url) END,
                   updated_at = now()
               WHERE id = $1""",
            ctx.tenant_id,
            name,
            locale,
            colour,
            change.remove_logo,
            logo_url,
        )
        changed = {
            key: {"from": before[key], "to": value}
            for key, value in (("name", name), ("default_locale", locale), ("brand_colour", colour))
            if before[key] != value
        }
        if logo_url:
            changed["logo"] = {"from": None, "to": "uploaded"}
        elif change.remove_logo and before["has_logo"]:
            changed["logo"] = {"from": "uploaded", "to": None}
        if changed:
            await audit.record(
                ctx, "organization.updated", "organization", ctx.tenant_id, changes=changed
            )
        after = (await fetch(SUMMARY_SQL + " WHERE id = $1", ctx.tenant_id))[0]
    return summary(after)


async def set_status(ctx: TenantContext, status: str) -> None:
    """Operators (and the CLI) move an organization between trial, active, suspended, closed."""
    status = clean_choice(status, STATUSES, "status")
    async with tenant_transaction(ctx):
        await execute(
            "UPDATE organization SET status = $2, updated_at = now() WHERE id = $1",
            ctx.tenant_id,
            status,
        )
        await audit.record(
            ctx, "organization.status_changed", "organization", ctx.tenant_id, status=status
        )


def system_context(tenant: TenantSummary, label: str = "system") -> TenantContext:
    """A context for operators' commands and jobs: every permission, acting as the system."""
    return TenantContext(
        tenant=tenant,
        actor=Actor.system(label),
        permissions=permissions_of(Role.OWNER),
        role=None,
    )


async def tenant_by_slug(slug: str) -> TenantSummary:
    """The organization `slug` names (any letter case, closed ones too); `NotFound` otherwise."""
    if _slug_or_none(slug) is None:
        raise NotFound()
    async with global_transaction():
        rows = await fetch(SUMMARY_SQL + " WHERE slug = $1", slug.lower())
    if not rows:
        raise NotFound()
    return summary(rows[0])


# The signed-in person's active account and the organization `slug` names, in one statement
# (both global tables: reference tables under Citus, joined to each other only). No row: no
# such active account; a row without `tenant_id`: no such organization. `{user}` and `{slug}`
# are the parameters' numbers; `{read}` is where a page's own read joins in (`TenantRead`).
_TENANT_PREFIX = "tenant_"
_PERSON_AND_TENANT = (
    """
SELECT u.id, u.email, u.name, u.locale, u.email_verified, u.sessions_valid_after,
       s.role AS staff_role, s.totp_confirmed_at IS NOT NULL AS staff_second_factor,
       """
    + summary_columns("o", _TENANT_PREFIX)
    + """{columns}
FROM user_account u
LEFT JOIN staff_member s ON s.user_id = u.id AND s.disabled_at IS NULL
LEFT JOIN organization o ON o.slug = ${slug}{read}
WHERE u.id = ${user} AND u.is_active
"""
)
_PERSON_AND_TENANT_SQL = _PERSON_AND_TENANT.format(user=1, slug=2, columns="", read="")
#: The prefix of a `TenantRead`'s columns in the joined statement's row.
_READ_PREFIX = "read__"


@dataclass(frozen=True)
class TenantRead:
    """A page's read of its tenant's rows, made in the same statement as the person and the
    organization when the tenant is hinted (`dangerously_enter_tenant_by_slug`): one round trip
    fewer per request (ADR 0023, addendum 3). `sql` is one SELECT of at most one row, filtered
    on the tenant `$1` in every table it reads; `args` are its `$2`, `$3`… Its column names
    must be distinct and not those of the person or the organization."""

    sql: str
    #: the read's column names, in order; the first is never NULL in a row it finds
    columns: tuple[str, ...]
    args: tuple[Any, ...] = ()

    def joined(self) -> str:
        """The person-and-organization statement with this read joined in (`_joined`)."""
        return _joined(self.sql, self.columns, len(self.args))


@lru_cache(maxsize=64)
def _joined(sql: str, columns: tuple[str, ...], arguments: int) -> str:
    """The person-and-organization statement with the read `sql` joined in: a LATERAL
    subquery run only when the organization the slug names is the hinted tenant `$1`. The
    gate is its LIMIT, 0 otherwise: PostgreSQL then never runs the subquery, so under a stale
    hint no row of the hinted tenant is read, or locked (a `WHERE o.id = $1` would be planned
    as a filter after the subquery's scan and lock). Its columns come back prefixed; the
    person and the slug are the last parameters. Made once per read: the same text each
    time, as asyncpg's statement cache wants."""
    listed = "".join(f", r.{c} AS {_READ_PREFIX}{c}" for c in columns)
    return _PERSON_AND_TENANT.format(
        user=arguments + 2,
        slug=arguments + 3,
        columns=f"{listed}, r.{columns[0]} IS NOT NULL AS {_READ_PREFIX}found",
        # `sql` is one of our own statements, never text from a request
        read=(
            f"\nLEFT JOIN LATERAL (SELECT * FROM ({sql}) x "  # noqa: S608
            "LIMIT CASE WHEN o.id = $1 THEN 1 ELSE 0 END) r ON true"
        ),
    )


@dataclass(frozen=True)
class EnteredTenant:
    """What `dangerously_enter_tenant_by_slug` found: the signed-in person's account, the
    organization (None for an unknown slug), and the rows of the page's `TenantRead`
    (empty without one, or when it found nothing)."""

    user: UserAccount
    tenant: TenantSummary | None
    rows: list[dict[str, Any]]


#: The organization each slug named the last time, in this process: a hint that lets
#: `dangerously_enter_tenant_by_slug` set the tenant in its `BEGIN` (one round trip fewer per
#: request). The person-and-organization statement confirms it; a stale one (an organization
#: renamed or deleted since) costs a second transaction, never a wrong tenant.
_SLUG_HINTS: dict[str, UUID] = {}
_SLUG_HINTS_MAX = 10_000


def _read_rows(read: TenantRead, row: dict[str, Any]) -> list[dict[str, Any]]:
    if not row[f"{_READ_PREFIX}found"]:
        return []
    return [{c: row[_READ_PREFIX + c] for c in read.columns}]


@asynccontextmanager
async def dangerously_enter_tenant_by_slug(
    user_id: UUID, slug: str, read: TenantRead | None = None
) -> AsyncIterator[EnteredTenant | None]:
    """One transaction for a whole request of a signed-in person on a page of the
    organization `slug` (a participant's test page): their active account and the
    organization are read by one statement, with the tenant already set for row-level
    security when this process has seen the slug before (`_SLUG_HINTS`), so the page's own
    work runs in the same transaction (ADR 0023: one transaction per request instead of
    three). The page's first read of its tenant (`read`) is made by that same statement under
    a hint, else by a statement of its own once the tenant is set. Yields what was found, or
    None when the account is gone or inactive (the caller signs the person out; no tenant is
    set). For an unknown slug the organization is None, no tenant is set and `read` is not
    made: the caller answers `NotFound`, with the person known, as for any other missing
    page. The caller must check what the tenant's rows are to this person: here the tenant is
    only named by a URL."""
    wanted = slug.lower() if _slug_or_none(slug) is not None else ""
    hint = _SLUG_HINTS.get(wanted)
    if hint is not None:
        async with hinted_transaction(hint, user_id):
            if read is None:
                rows = await fetch(_PERSON_AND_TENANT_SQL, user_id, wanted)
            else:
                rows = await fetch(read.joined(), hint, *read.args, user_id, wanted)
            if rows and rows[0]["tenant_id"] == hint:
                row = rows[0]
                found = [] if read is None else _read_rows(read, row)
                yield EnteredTenant(account_of(row), _tenant_of(row), found)
                return
        # The hint is stale, or the account is gone: nothing was done under it.
        _SLUG_HINTS.pop(wanted, None)
    async with global_transaction(user_id):
        rows = await fetch(_PERSON_AND_TENANT_SQL, user_id, wanted)
        if not rows:
            yield None
            return
        row = rows[0]
        if row["tenant_id"] is None:
            yield EnteredTenant(account_of(row), None, [])
            return
        tenant = _tenant_of(row)
        await dangerously_switch_tenant(tenant.id)
        if len(_SLUG_HINTS) >= _SLUG_HINTS_MAX:
            _SLUG_HINTS.clear()
        _SLUG_HINTS[wanted] = tenant.id
        found = [] if read is None else await fetch(read.sql, tenant.id, *read.args)
        yield EnteredTenant(account_of(row), tenant, found)


def _tenant_of(row: dict[str, Any]) -> TenantSummary:
    return summary(row, _TENANT_PREFIX)


async def tenant_by_id(tenant_id: UUID) -> TenantSummary:
    """The organization with this id; `NotFound` otherwise."""
    async with global_transaction():
        rows = await fetch(SUMMARY_SQL + " WHERE id = $1", tenant_id)
    if not rows:
        raise NotFound()
    return summary(rows[0])


async def dangerously_sweep_tenants(work: Callable[[UUID], Awaitable[int | None]]) -> int:
    """Run `work(tenant_id)` for every organization, each in a system transaction of that
    tenant (row-level security admits no cross-tenant write): the periodic jobs' loop. The sum
    of what `work` returned (rows changed, say)."""
    async with global_transaction():
        ids = [row["id"] for row in await fetch("SELECT id FROM organization ORDER BY id")]
    total = 0
    for tenant_id in ids:
        async with tenant_transaction(SystemScope(tenant_id)):
            total += await work(tenant_id) or 0
    return total


# --- suspending, closing and reopening (the back office) ------------------------------------

#: How long a closed organization is kept before it is purged, in days: 90 unless the account
#: manager chooses otherwise when closing it, between 30 and 365 (a setting-free constant:
#: the contract, not the deployment, decides it).
RETENTION_DAYS = 90
RETENTION_MIN_DAYS = 30
RETENTION_MAX_DAYS = 365

NOT_SUSPENDABLE = "Only an organization in trial or active can be suspended."
ALREADY_CLOSED = "This organization is closed already."
NOT_REOPENABLE = (
    "Only a suspended organization, or a closed one within its retention period, can be "
    "reactivated."
)
BAD_RETENTION = "Choose a retention period between {low} and {high} days."
WRONG_SLUG = "Type the organization's identifier exactly to confirm."


@dataclass(frozen=True)
class Lifecycle:
    """An organization's status and, once closed, when it was and when it may be purged."""

    status: str
    closed_at: datetime | None
    delete_after: date | None


async def lifecycle_in_transaction(ctx: TenantContext, *, lock: bool = False) -> Lifecycle:
    """The organization's status and retention, read in the caller's open transaction (its
    row locked with `lock`)."""
    rows = await fetch(
        "SELECT status, closed_at, delete_after FROM organization WHERE id = $1"  # noqa: S608
        + (" FOR UPDATE" if lock else ""),
        ctx.tenant_id,
    )
    if not rows:
        raise NotFound()
    return Lifecycle(**rows[0])


def clean_retention(days: int | str | None) -> int:
    """A retention period in days, within `RETENTION_MIN_DAYS`..`RETENTION_MAX_DAYS`; the
    default when none is given; `Invalid` on field `retention_days` otherwise."""
    if days is None or days == "":
        return RETENTION_DAYS
    try:
        value = int(str(days).strip())
    except ValueError:
        value = -1
    if not RETENTION_MIN_DAYS <= value <= RETENTION_MAX_DAYS:
        raise Invalid(
            BAD_RETENTION, field="retention_days", low=RETENTION_MIN_DAYS, high=RETENTION_MAX_DAYS
        )
    return value


async def suspend_in_transaction(ctx: TenantContext) -> str:
    """Suspend the organization (trial or active) inside the caller's open tenant
    transaction; its previous status, recorded with `organization.suspended` so that
    reactivating restores it. `Conflict` in any other status."""
    now = await lifecycle_in_transaction(ctx, lock=True)
    if now.status not in ("trial", "active"):
        raise Conflict(NOT_SUSPENDABLE)
    await execute(
        "UPDATE organization SET status = 'suspended', updated_at = now() WHERE id = $1",
        ctx.tenant_id,
    )
    await audit.record(
        ctx, "organization.suspended", "organization", ctx.tenant_id, previous=now.status
    )
    return now.status


async def close_in_transaction(
    ctx: TenantContext, *, confirm_slug: str, retention_days: int, at: datetime, **details: Any
) -> date:
    """Close the organization inside the caller's open tenant transaction: its members reach
    it no more (`member_context`), `closed_at` is `at` and it may be purged after
    `retention_days` (its `delete_after`, returned). `confirm_slug` must be its slug, typed
    (`Invalid` otherwise). Audited as `organization.closed` with the previous status and
    `details`. `Conflict` when it is closed already."""
    days = clean_retention(retention_days)
    if (confirm_slug or "").strip().lower() != ctx.tenant.slug:
        raise Invalid(WRONG_SLUG, field="confirm_slug")
    now = await lifecycle_in_transaction(ctx, lock=True)
    if now.status == "closed":
        raise Conflict(ALREADY_CLOSED)
    delete_after = at.date() + timedelta(days=days)
    await execute(
        """UPDATE organization SET status = 'closed', closed_at = $2, delete_after = $3,
               updated_at = $2 WHERE id = $1""",
        ctx.tenant_id,
        at,
        delete_after,
    )
    await audit.record(
        ctx,
        "organization.closed",
        "organization",
        ctx.tenant_id,
        previous=now.status,
        retention_days=days,
        delete_after=delete_after.isoformat(),
        **details,
    )
    return delete_after


async def last_closing_or_suspension(ctx: TenantContext) -> dict[str, Any]:
    """The details of the organization's latest `organization.suspended` or `.closed` event
    (its previous status among them), in the caller's open transaction; {} without one."""
    rows = await fetch(
        """SELECT details FROM audit_event
           WHERE tenant_id = $1 AND action IN ('organization.suspended', 'organization.closed')
           ORDER BY occurred_at DESC, id DESC LIMIT 1""",
        ctx.tenant_id,
    )
    if not rows:
        return {}
    value = rows[0]["details"]
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded or {})


async def reactivate_in_transaction(ctx: TenantContext, *, at: datetime) -> str:
    """Undo a suspension, or reopen a closed organization before its `delete_after`, inside
    the caller's open tenant transaction: it gets back the status it had before (trial or
    active; a closed one that was suspended before goes back to suspended), its retention
    cleared. The new status; audited as `organization.reactivated`. `Conflict` otherwise."""
    now = await lifecycle_in_transaction(ctx, lock=True)
    if now.status not in ("suspended", "closed") or (
        now.status == "closed" and now.delete_after is not None and now.delete_after <= at.date()
    ):
        raise Conflict(NOT_REOPENABLE)
    previous = (await last_closing_or_suspension(ctx)).get("previous")
    status = previous if previous in ("trial", "active", "suspended") else "active"
    if now.status == "suspended" and status == "suspended":
        status = "active"
    await execute(
        """UPDATE organization SET status = $2, closed_at = NULL, delete_after = NULL,
               updated_at = $3 WHERE id = $1""",
        ctx.tenant_id,
        status,
        at,
    )
    await audit.record(
        ctx,
        "organization.reactivated",
        "organization",
        ctx.tenant_id,
        previous=now.status,
        status=status,
    )
    return status
