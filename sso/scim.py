"""SCIM 2.0 provisioning (RFC 7643, 7644): a directory creates, updates, deactivates and
deletes the organization's people, and its groups, which may give their members a role.

A SCIM user is a person of the organization: their `userName` is their email address, which
must lie in a domain the organization verified; it names their global account (found, or
created without a password: they sign in through SSO). The organization knows them through a
membership (`role` member unless a group mapping says admin) and a `directory_user` row (what
the directory sent). `active: false` suspends the membership (history kept); DELETE removes
the membership, never the global account.

Groups (`directory_group`) map to roles through the mapping the admin sets on the SCIM page
(`directory_group_mapping`, by display name): a person in a group mapped to `admin` is an
admin. Owners are never changed by the directory. Each group's mapping also names the learner
group its members are filed under when they take part in campaigns: `sso` may not know
campaigns' learners, so campaigns registers what files them (`on_learner_groups_change`) and
reads the groups through `directory_learner_groups_sql` (ADR 0019, amendment of 2026-12-04).

Every change of a group locks the group's row first (`FOR UPDATE`, inside the tenant: one
shard on Citus), so concurrent PATCHes apply one after the other and no member is lost.
Services take the SCIM context (`sso.scim_tokens.scim_context`) or an admin's, and need
`Permission.SSO_MANAGE`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, Invalid, NotFound
from core.ids import uuid_or_404
from core.validation import clean_choice, clean_email, clean_text
from sso.scim_errors import ScimConflict, ScimInvalid, invalid_value
from sso.scim_filter import Column, MultiValued, compile_filter
from sso.scim_patch import Shape, apply_patch
from sso.scim_schemas import DEFAULT_COUNT, GROUP_SCHEMA, MAX_COUNT, USER_SCHEMA
from tenants import audit
from tenants.accounts import insert_account
from tenants.context import TenantContext
from tenants.permissions import Permission

MAPPED_ROLES = ("admin", "member")


# --- what the services return ------------------------------------------------------------


@dataclass(frozen=True)
class GroupRef:
    """A group a directory user belongs to."""

    id: UUID
    display_name: str


@dataclass(frozen=True)
class DirectoryUser:
    """A person as the directory provisioned them."""

    id: UUID
    #: their global account
    user_id: UUID
    user_name: str
    external_id: str | None
    given_name: str
    family_name: str
    display_name: str
    #: [{"value", "type", "primary"}], as the directory sent them
    emails: list[dict[str, Any]]
    #: as the directory sent it: None when it said nothing (the person is then active)
    active: bool | None
    created_at: datetime
    updated_at: datetime
    groups: list[GroupRef] = field(default_factory=list)


@dataclass(frozen=True)
class DirectoryGroup:
    """A directory group and the directory users in it."""

    id: UUID
    display_name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    #: the directory users' ids
    members: list[UUID] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    """One page of a listing: `items` from the 1-based `start_index` of `total`."""

    items: list[Any]
    total: int
    start_index: int


@dataclass(frozen=True)
class GroupMapping:
    """What a directory group's name means here: a role, and a learner group."""

    id: UUID
    group_name: str
    role: str
    learner_group: str


# --- learner groups: what campaigns registers ----------------------------------------------

#: What files people's learner records under their learner groups again, in the transaction
#: of the change: `(ctx, account_ids, withdrawn)`. `account_ids` are global accounts
#: (`user_account.id`), or None for every person the directory provisioned; `withdrawn` names
#: learner groups a mapping targeted until this change and targets no more.
LearnerGroupsListener = Callable[
    [TenantContext, "list[UUID] | None", "tuple[str, ...]"], Awaitable[None]
]

_learner_group_listeners: list[LearnerGroupsListener] = []


def on_learner_groups_change(listener: LearnerGroupsListener) -> LearnerGroupsListener:
    """Register `listener` (a later package, at import: `campaigns.directory_groups`); it is
    called whenever people's directory groups, or what the groups mean, change. Registering
    the same function again changes nothing. Returns it (usable as a decorator)."""
    if listener not in _learner_group_listeners:
        _learner_group_listeners.append(listener)
    return listener


def learner_group_listeners() -> tuple[LearnerGroupsListener, ...]:
    """The registered listeners, in registration order."""
    return tuple(_learner_group_listeners)


async def _learner_groups_changed(
    ctx: TenantContext, account_ids: list[UUID] | None, withdrawn: tuple[str, ...] = ()
) -> None:
    if account_ids is not None:
        account_ids = list(dict.fromkeys(account_ids))
        if not account_ids:
            return
    for listener in _learner_group_listeners:
        await listener(ctx, account_ids, withdrawn)


async def _accounts_of(ctx: TenantContext, directory_user_ids: list[UUID]) -> list[UUID]:
    if not directory_user_ids or not _learner_group_listeners:
        return []
    rows = await fetch(
        "SELECT user_id FROM directory_user WHERE tenant_id = $1 AND id = ANY($2)",
        ctx.tenant_id,
        directory_user_ids,
    )
    return [row["user_id"] for row in rows]


def directory_learner_groups_sql(tenant: str, account: str) -> str:
    """A scalar subquery (SQL): the learner groups (text[], distinct, sorted) the mappings of
    tenant `tenant` file the person `account` under through their directory groups; `{}` when
    the directory deactivated them or none of their groups names a learner group; NULL when
    the directory did not provision them. `tenant` and `account` are SQL expressions (`$1`,
    `l.user_id`). Every table is filtered on `tenant` itself (one shard on Citus)."""
    return f"""(SELECT CASE WHEN count(du.id) = 0 THEN NULL ELSE coalesce(
        array_agg(DISTINCT p.learner_group ORDER BY p.learner_group)
            FILTER (WHERE p.learner_group IS NOT NULL), '{{}}'::text[]) END
    FROM directory_user du
    LEFT JOIN directory_group_member gm ON gm.tenant_id = {tenant}
        AND gm.directory_user_id = du.id AND du.active IS DISTINCT FROM false
    LEFT JOIN directory_group g ON g.tenant_id = {tenant} AND g.id = gm.group_id
    LEFT JOIN directory_group_mapping p ON p.tenant_id = {tenant}
        AND lower(p.group_name) = lower(g.display_name) AND p.learner_group <> ''
    WHERE du.tenant_id = {tenant} AND du.user_id = {account})"""  # noqa: S608 - SQL expressions


def targeted_learner_groups_sql(tenant: str) -> str:
    """A scalar subquery (SQL): every learner group (text[]) a mapping of tenant `tenant`
    targets, whoever is in its directory group; `{}` when none does."""
    return f"""(SELECT coalesce(array_agg(DISTINCT p.learner_group), '{{}}'::text[])
    FROM directory_group_mapping p
    WHERE p.tenant_id = {tenant} AND p.learner_group <> '')"""  # noqa: S608 - SQL expressions


# --- documents ---------------------------------------------------------------------------

USER_SHAPE = Shape(
    attributes={
        name.lower(): name
        for name in (
            "userName",
            "externalId",
            "name",
            "displayName",
            "emails",
            "active",
            "groups",
            "id",
            "meta",
            "schemas",
        )
    },
    multi_valued=frozenset({"emails", "groups"}),
    complex=frozenset({"name", "emails", "groups"}),
    read_only=frozenset({"groups", "id", "meta", "schemas"}),
    sub_attributes={
        name.lower(): name
        for name in ("givenName", "familyName", "value", "type", "primary", "display", "$ref")
    },
)

GROUP_SHAPE = Shape(
    attributes={
        name.lower(): name
        for name in ("displayName", "externalId", "members", "id", "meta", "schemas")
    },
    multi_valued=frozenset({"members"}),
    complex=frozenset({"members"}),
    read_only=frozenset({"id", "meta", "schemas"}),
    sub_attributes={name.lower(): name for name in ("value", "$ref", "type", "display")},
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def user_document(user: DirectoryUser, base_url: str) -> dict[str, Any]:
    """The SCIM representation of `user`; `base_url` ends with `/scim/v2`."""
    document: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": str(user.id)}
    if user.external_id is not None:
        document["externalId"] = user.external_id
    document["userName"] = user.user_name
    name = {
        key: value
        for key, value in (("givenName", user.given_name), ("familyName", user.family_name))
        if value
    }
    if name:
        document["name"] = name
    if user.display_name:
        document["displayName"] = user.display_name
    if user.emails:
        document["emails"] = user.emails
    if user.active is not None:
        document["active"] = user.active
    if user.groups:
        document["groups"] = [
            {"value": str(g.id), "$ref": f"{base_url}/Groups/{g.id}", "display": g.display_name}
            for g in user.groups
        ]
    document["meta"] = {
        "resourceType": "User",
        "created": _iso(user.created_at),
        "lastModified": _iso(user.updated_at),
        "location": f"{base_url}/Users/{user.id}",
    }
    return document


def group_document(group: DirectoryGroup, base_url: str) -> dict[str, Any]:
    """The SCIM representation of `group`; `base_url` ends with `/scim/v2`."""
    document: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": str(group.id)}
    if group.external_id is not None:
        document["externalId"] = group.external_id
    document["displayName"] = group.display_name
    if group.members:
        document["members"] = [
            {"value": str(member), "$ref": f"{base_url}/Users/{member}"} for member in group.members
        ]
    document["meta"] = {
        "resourceType": "Group",
        "created": _iso(group.created_at),
        "lastModified": _iso(group.updated_at),
        "location": f"{base_url}/Groups/{group.id}",
    }
    return document


# --- reading what a directory sent -------------------------------------------------------


def _field(document: dict[str, Any], name: str) -> Any:
    """The attribute `name` of `document`, in any letter case (SCIM names are not
    case-sensitive)."""
    lowered = name.lower()
    return next((v for k, v in document.items() if k.lower() == lowered), None)


def scim_bool(value: Any, name: str) -> bool:
    """A SCIM boolean, or Entra ID's "True"/"False" strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_value("{name} must be true or false.", name=name)


def _text(value: Any, name: str, max_length: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise invalid_value("{name} must be a string.", name=name)
    try:
        return clean_text(value, name, max_length=max_length, required=required)
    except Invalid as error:  # a SCIM 400 with the same message, and its parameters ({max})
        raise invalid_value(error.message, **{**error.params, "name": name}) from None


def _optional_text(value: Any, name: str, max_length: int) -> str | None:
    text = _text(value, name, max_length)
    return text or None


@dataclass(frozen=True)
class UserFields:
    user_name: str
    external_id: str | None
    given_name: str
    family_name: str
    display_name: str
    emails: list[dict[str, Any]]
    active: bool | None

    @property
    def is_active(self) -> bool:
        return self.active is not False


def _emails(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 20:
        raise invalid_value("emails must be a list (20 at most).")
    emails: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise invalid_value("Each email is an object with a value.")
        email: dict[str, Any] = {"value": _text(_field(item, "value"), "emails.value", 254)}
        kind = _field(item, "type")
        if kind is not None:
            email["type"] = _text(kind, "emails.type", 50)
        primary = _field(item, "primary")
        if primary is not None:
            email["primary"] = scim_bool(primary, "emails.primary")
        emails.append(email)
    if sum(1 for email in emails if email.get("primary")) > 1:
        raise invalid_value("Only one email may be primary.")
    return emails


def user_fields(document: Any) -> UserFields:
    """The attributes of a User document, checked; `invalidValue` otherwise."""
    if not isinstance(document, dict):
        raise ScimInvalid("invalidSyntax", "Send a User object.")
    raw_name = _text(_field(document, "userName"), "userName", 254, required=True)
    try:
        user_name = clean_email(raw_name, "userName").lower()
    except Exception:
        raise invalid_value("userName must be the person's email address.") from None
    name = _field(document, "name") or {}
    if not isinstance(name, dict):
        raise invalid_value("name must be an object.")
    active = _field(document, "active")
    return UserFields(
        user_name=user_name,
        external_id=_optional_text(_field(document, "externalId"), "externalId", 500),
        given_name=_text(_field(name, "givenName"), "name.givenName", 200),
        family_name=_text(_field(name, "familyName"), "name.familyName", 200),
        display_name=_text(_field(document, "displayName"), "displayName", 200),
        emails=_emails(_field(document, "emails")),
        active=None if active is None else scim_bool(active, "active"),
    )


@dataclass(frozen=True)
class GroupFields:
    display_name: str
    external_id: str | None
    members: list[UUID]


def _member_id(item: Any) -> UUID:
    value = _field(item, "value") if isinstance(item, dict) else None
    try:
        return UUID(str(value))
    except ValueError:
        raise invalid_value("A member's value is the id of a User.") from None


def group_fields(document: Any) -> GroupFields:
    """The attributes of a Group document, checked; `invalidValue` otherwise."""
    if not isinstance(document, dict):
        raise ScimInvalid("invalidSyntax", "Send a Group object.")
    members = _field(document, "members") or []
    if not isinstance(members, list):
        raise invalid_value("members must be a list.")
    unique = list(dict.fromkeys(_member_id(item) for item in members))
    return GroupFields(
        display_name=_text(_field(document, "displayName"), "displayName", 200, required=True),
        external_id=_optional_text(_field(document, "externalId"), "externalId", 500),
        members=unique,
    )


# --- users -------------------------------------------------------------------------------

_USER_COLUMNS = """du.id, du.user_id, du.user_name, du.external_id, du.given_name,
    du.family_name, du.display_name, du.emails, du.active, du.created_at, du.updated_at"""


def _directory_user(row: dict[str, Any], groups: list[GroupRef] | None = None) -> DirectoryUser:
    return DirectoryUser(
        id=row["id"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        external_id=row["external_id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        display_name=row["display_name"],
        emails=json.loads(row["emails"]) if isinstance(row["emails"], str) else row["emails"],
        active=row["active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        groups=groups or [],
    )


def _user_attributes() -> dict[str, Column | MultiValued]:
    return {
        "id": Column("du.id::text", case_exact=True),
        "username": Column("du.user_name"),
        "externalid": Column("du.external_id", case_exact=True),
        "displayname": Column("du.display_name"),
        "name.givenname": Column("du.given_name"),
        "name.familyname": Column("du.family_name"),
        "active": Column("coalesce(du.active, true)", "bool"),
        "meta.created": Column("du.created_at", "time"),
        "meta.lastmodified": Column("du.updated_at", "time"),
        "emails": MultiValued(
            exists=lambda condition: (
                "EXISTS (SELECT 1 FROM jsonb_array_elements(du.emails) AS e "  # noqa: S608
                f"WHERE {condition})"
            ),
            fields={
                "value": Column("(e.value->>'value')"),
                "type": Column("(e.value->>'type')"),
                "primary": Column("(e.value->>'primary')::boolean", "bool"),
            },
        ),
        "groups": MultiValued(
            exists=lambda condition: (
                "EXISTS (SELECT 1 FROM directory_group_member gm JOIN directory_group g "  # noqa: S608
                "ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id "
                "WHERE gm.tenant_id = $1 AND g.tenant_id = $1 "
                f"AND gm.directory_user_id = du.id AND {condition})"
            ),
            fields={
                "value": Column("g.id::text", case_exact=True),
                "display": Column("g.display_name"),
            },
        ),
    }


async def _groups_of(ctx: TenantContext, user_ids: list[UUID]) -> dict[UUID, list[GroupRef]]:
    rows = await fetch(
        """SELECT gm.directory_user_id, g.id, g.display_name
           FROM directory_group_member gm
           JOIN directory_group g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
           WHERE gm.tenant_id = $1 AND g.tenant_id = $1 AND gm.directory_user_id = ANY($2)
           ORDER BY g.display_name, g.id""",
        ctx.tenant_id,
        user_ids,
    )
    groups: dict[UUID, list[GroupRef]] = {}
    for row in rows:
        groups.setdefault(row["directory_user_id"], []).append(
            GroupRef(row["id"], row["display_name"])
        )
    return groups


def _paging(start_index: int | None, count: int | None) -> tuple[int, int]:
    start = max(1, start_index or 1)
    wanted = DEFAULT_COUNT if count is None else max(0, min(count, MAX_COUNT))
    return start, wanted


async def list_users(
    ctx: TenantContext,
    filter_text: str | None = None,
    start_index: int | None = None,
    count: int | None = None,
) -> Page:
    """Directory users matching the SCIM filter, oldest first, `count` from `start_index`
    (1-based; 100 by default, 1,000 at most)."""
    ctx.require(Permission.SSO_MANAGE)
    start, wanted = _paging(start_index, count)
    params: list[Any] = [ctx.tenant_id]
    where = "du.tenant_id = $1"
    if filter_text:
        where += " AND " + compile_filter(filter_text, _user_attributes(), params)
    async with tenant_transaction(ctx):
        total = (
            await fetch(f"SELECT count(*) AS n FROM directory_user du WHERE {where}", *params)  # noqa: S608
        )[0]["n"]
        rows = await fetch(
            f"""SELECT {_USER_COLUMNS} FROM directory_user du WHERE {where}
                ORDER BY du.created_at, du.id
                LIMIT {wanted} OFFSET {start - 1}""",  # noqa: S608 - integers and constants
            *params,
        )
        groups = await _groups_of(ctx, [row["id"] for row in rows])
    users = [_directory_user(row, groups.get(row["id"])) for row in rows]
    return Page(users, total, start)


async def _access_user(
    ctx: TenantContext, user_id: UUID | str, *, for_update: bool = False
) -> DirectoryUser:
    """The directory user `user_id` of this tenant, with their groups; 404 alike for an
    unknown id and another tenant's. Inside the tenant's transaction."""
    ident = uuid_or_404(user_id)
    lock = "FOR UPDATE" if for_update else ""
    rows = await fetch(
        f"SELECT {_USER_COLUMNS} FROM directory_user du "  # noqa: S608 - constant clauses
        f"WHERE du.tenant_id = $1 AND du.id = $2 {lock}",
        ctx.tenant_id,
        ident,
    )
    if not rows:
        raise NotFound()
    groups = await _groups_of(ctx, [ident])
    return _directory_user(rows[0], groups.get(ident))


async def get_user(ctx: TenantContext, user_id: UUID | str) -> DirectoryUser:
    """One directory user of this tenant; `NotFound` otherwise."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        return await _access_user(ctx, user_id)


async def _require_verified_domain(ctx: TenantContext, email: str) -> None:
    domain = email.rpartition("@")[2].lower()
    rows = await fetch(
        "SELECT 1 FROM verified_domain WHERE domain = $1 AND organization_id = $2",
        domain,
        ctx.tenant_id,
    )
    if not rows:
        raise invalid_value(
            "The address {email} is not in a domain this organization verified.", email=email
        )


async def _account_for(ctx: TenantContext, fields: UserFields) -> UUID:
    """The global account of `fields.user_name`, made (without a password) if there is none."""
    rows = await fetch("SELECT id FROM user_account WHERE lower(email) = $1", fields.user_name)
    if rows:
        user_id: UUID = rows[0]["id"]
        return user_id
    name = fields.display_name or " ".join(
        part for part in (fields.given_name, fields.family_name) if part
    )
    account = await insert_account(
        fields.user_name, name or fields.user_name, None, ctx.tenant.default_locale
    )
    return account.id


async def _suspend_allowed(ctx: TenantContext, membership: dict[str, Any]) -> None:
    """An owner is suspended or removed only while another active owner remains."""
    if membership["role"] != "owner":
        return
    others = await fetch(
        """SELECT id FROM membership WHERE tenant_id = $1 AND role = 'owner'
               AND suspended_at IS NULL AND id <> $2 FOR UPDATE""",
        ctx.tenant_id,
        membership["id"],
    )
    if not others:
        raise Conflict("The organization's last owner cannot be suspended or removed.")


async def _sync_membership(
    ctx: TenantContext, user_id: UUID, email: str, active: bool, now: datetime
) -> None:
    """Make the membership of `user_id` match `active`: created if missing (as a member),
    suspended or reactivated; audited."""
    rows = await fetch(
        """SELECT id, role, suspended_at FROM membership
           WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE""",
        ctx.tenant_id,
        user_id,
    )
    if not rows:
        membership_id = uuid4()
        await execute(
            """INSERT INTO membership (tenant_id, id, user_id, role, suspended_at)
               VALUES ($1, $2, $3, 'member', $4)""",
            ctx.tenant_id,
            membership_id,
            user_id,
            None if active else now,
        )
        await audit.record(
            ctx, "member.added", "membership", membership_id, email=email, role="member"
        )
        return
    membership = rows[0]
    suspended = membership["suspended_at"] is not None
    if active and suspended:
        await execute(
            "UPDATE membership SET suspended_at = NULL WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            membership["id"],
        )
        await audit.record(ctx, "member.reactivated", "membership", membership["id"], email=email)
    elif not active and not suspended:
        await _suspend_allowed(ctx, membership)
        await execute(
            "UPDATE membership SET suspended_at = $3 WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            membership["id"],
            now,
        )
        await audit.record(ctx, "member.suspended", "membership", membership["id"], email=email)


async def _user_name_free(ctx: TenantContext, user_name: str, except_id: UUID | None) -> None:
    rows = await fetch(
        "SELECT id FROM directory_user WHERE tenant_id = $1 AND user_name = $2",
        ctx.tenant_id,
        user_name,
    )
    if rows and rows[0]["id"] != except_id:
        raise ScimConflict("A user with this userName already exists.")


async def create_user(ctx: TenantContext, document: Any) -> DirectoryUser:
    """Provision a person: their account (found or made), their membership (a member, or
    suspended when `active` is false) and what the directory sent. 409 when the userName is
    already provisioned here."""
    ctx.require(Permission.SSO_MANAGE)
    fields = user_fields(document)
    directory_id, now = uuid4(), datetime.now(UTC)
    async with tenant_transaction(ctx):
        await _require_verified_domain(ctx, fields.user_name)
        # The global account first: a reference table on Citus, written before any shard.
        user_id = await _account_for(ctx, fields)
        await _user_name_free(ctx, fields.user_name, None)
        try:
            await execute(
                """INSERT INTO directory_user (tenant_id, id, user_id, user_name, external_id,
                       given_name, family_name, display_name, emails, active, created_at,
                       updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $11)""",
                ctx.tenant_id,
                directory_id,
                user_id,
                fields.user_name,
                fields.external_id,
                fields.given_name,
                fields.family_name,
                fields.display_name,
                json.dumps(fields.emails),
                fields.active,
                now,
            )
        except asyncpg.UniqueViolationError:
            raise ScimConflict("A user with this userName already exists.") from None
        await _sync_membership(ctx, user_id, fields.user_name, fields.is_active, now)
        await audit.record(
            ctx,
            "scim.user_created",
            "directory_user",
            directory_id,
            email=fields.user_name,
            active=fields.is_active,
        )
        return await _access_user(ctx, directory_id)


async def _write_user(
    ctx: TenantContext, current: DirectoryUser, fields: UserFields
) -> DirectoryUser:
    now = datetime.now(UTC)
    user_id = current.user_id
    if fields.user_name != current.user_name:
        # A new address: the membership follows the person to that address's account.
        await _require_verified_domain(ctx, fields.user_name)
        user_id = await _account_for(ctx, fields)
        await _user_name_free(ctx, fields.user_name, current.id)
        taken = await fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2",
            ctx.tenant_id,
            user_id,
        )
        if taken and user_id != current.user_id:
            raise ScimConflict("The account of this userName is already a member.")
        await execute(
            "UPDATE membership SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2",
            ctx.tenant_id,
            current.user_id,
            user_id,
        )
    try:
        await execute(
            """UPDATE directory_user SET user_id = $3, user_name = $4, external_id = $5,
                   given_name = $6, family_name = $7, display_name = $8, emails = $9::jsonb,
                   active = $10, updated_at = $11
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            current.id,
            user_id,
            fields.user_name,
            fields.external_id,
            fields.given_name,
            fields.family_name,
            fields.display_name,
            json.dumps(fields.emails),
            fields.active,
            now,
        )
    except asyncpg.UniqueViolationError:
        raise ScimConflict("A user with this userName already exists.") from None
    await _sync_membership(ctx, user_id, fields.user_name, fields.is_active, now)
    if user_id != current.user_id or (current.active is not False) != fields.is_active:
        # Deactivated, reactivated, or moved to another account: filed again (both accounts).
        await _learner_groups_changed(ctx, [current.user_id, user_id])
    changed = sorted(
        name
        for name, before, after in (
            ("userName", current.user_name, fields.user_name),
            ("externalId", current.external_id, fields.external_id),
            ("name.givenName", current.given_name, fields.given_name),
            ("name.familyName", current.family_name, fields.family_name),
            ("displayName", current.display_name, fields.display_name),
            ("emails", current.emails, fields.emails),
            ("active", current.active, fields.active),
        )
        if before != after
    )
    if changed:
        await audit.record(
            ctx,
            "scim.user_updated",
            "directory_user",
            current.id,
            email=fields.user_name,
            changed=changed,
        )
    return await _access_user(ctx, current.id)


async def replace_user(ctx: TenantContext, user_id: UUID | str, document: Any) -> DirectoryUser:
    """PUT: the directory user becomes `document` (attributes left out are cleared)."""
    ctx.require(Permission.SSO_MANAGE)
    fields = user_fields(document)
    async with tenant_transaction(ctx):
        current = await _access_user(ctx, user_id, for_update=True)
        return await _write_user(ctx, current, fields)


def _patchable_user(user: DirectoryUser) -> dict[str, Any]:
    document = user_document(user, "")
    document.pop("meta", None)
    document.pop("groups", None)
    return document


async def patch_user(ctx: TenantContext, user_id: UUID | str, body: Any) -> DirectoryUser:
    """PATCH: the operations applied to the user's current document, then stored like a PUT
    (`active: false` suspends the membership)."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        current = await _access_user(ctx, user_id, for_update=True)
        document = apply_patch(_patchable_user(current), USER_SHAPE, body)
        return await _write_user(ctx, current, user_fields(document))


async def delete_user(ctx: TenantContext, user_id: UUID | str) -> None:
    """DELETE: the person leaves the organization (membership removed, their groups left);
    their global account stays. Audited."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        current = await _access_user(ctx, user_id, for_update=True)
        memberships = await fetch(
            """SELECT id, role, suspended_at FROM membership
               WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE""",
            ctx.tenant_id,
            current.user_id,
        )
        for membership in memberships:
            await _suspend_allowed(ctx, membership)
            await execute(
                "DELETE FROM membership WHERE tenant_id = $1 AND id = $2",
                ctx.tenant_id,
                membership["id"],
            )
            await audit.record(
                ctx,
                "member.removed",
                "membership",
                membership["id"],
                email=current.user_name,
                role=membership["role"],
            )
        await execute(
            "DELETE FROM directory_user WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current.id,
        )
        await _learner_groups_changed(ctx, [current.user_id])
        await audit.record(
            ctx, "scim.user_deleted", "directory_user", current.id, email=current.user_name
        )


# --- roles from groups ---------------------------------------------------------------------


async def _sync_roles(ctx: TenantContext, directory_user_ids: list[UUID] | None) -> None:
    """Give the directory users (every one when None) the role their groups map to: admin
    when one of their groups is mapped to admin, member otherwise. Owners are left alone, and
    nothing changes while no group is mapped at all (roles are then the console's)."""
    mapped = await fetch(
        "SELECT 1 FROM directory_group_mapping WHERE tenant_id = $1 LIMIT 1",
        ctx.tenant_id,
    )
    if not mapped:
        return
    scope = ""
    params: list[Any] = [ctx.tenant_id]
    if directory_user_ids is not None:
        if not directory_user_ids:
            return
        scope, params = "AND du.id = ANY($2)", [ctx.tenant_id, directory_user_ids]
    rows = await fetch(
        f"""SELECT m.id, m.role, du.user_name,
                   EXISTS (SELECT 1 FROM directory_group_member gm
                           JOIN directory_group g
                             ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id
                           JOIN directory_group_mapping p
                             ON p.tenant_id = g.tenant_id
                            AND lower(p.group_name) = lower(g.display_name)
                           WHERE gm.tenant_id = $1 AND g.tenant_id = $1 AND p.tenant_id = $1
                             AND gm.directory_user_id = du.id AND p.role = 'admin') AS admin
            FROM directory_user du
            JOIN membership m ON m.tenant_id = du.tenant_id AND m.user_id = du.user_id
            WHERE du.tenant_id = $1 AND m.tenant_id = $1 {scope}
            FOR UPDATE OF m""",  # noqa: S608 - constant clauses
        *params,
    )
    for row in rows:
        role = "admin" if row["admin"] else "member"
        if row["role"] == "owner" or row["role"] == role:
            continue
        await execute(
            "UPDATE membership SET role = $3 WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            row["id"],
            role,
        )
        await audit.record(
            ctx,
            "member.role_changed",
            "membership",
            row["id"],
            email=row["user_name"],
            source="scim",
            **{"from": row["role"], "to": role},
        )


# --- groups ------------------------------------------------------------------------------

_GROUP_COLUMNS = "g.id, g.display_name, g.external_id, g.created_at, g.updated_at"


def _group_attributes() -> dict[str, Column | MultiValued]:
    return {
        "id": Column("g.id::text", case_exact=True),
        "displayname": Column("g.display_name"),
        "externalid": Column("g.external_id", case_exact=True),
        "meta.created": Column("g.created_at", "time"),
        "meta.lastmodified": Column("g.updated_at", "time"),
        "members": MultiValued(
            exists=lambda condition: (
                "EXISTS (SELECT 1 FROM directory_group_member gm JOIN directory_user du "  # noqa: S608
                "ON du.tenant_id = gm.tenant_id AND du.id = gm.directory_user_id "
                "WHERE gm.tenant_id = $1 AND du.tenant_id = $1 "
                f"AND gm.group_id = g.id AND {condition})"
            ),
            fields={
                "value": Column("du.id::text", case_exact=True),
                "display": Column("du.display_name"),
            },
        ),
    }


async def _members_of(ctx: TenantContext, group_ids: list[UUID]) -> dict[UUID, list[UUID]]:
    rows = await fetch(
        """SELECT group_id, directory_user_id FROM directory_group_member
           WHERE tenant_id = $1 AND group_id = ANY($2) ORDER BY created_at, id""",
        ctx.tenant_id,
        group_ids,
    )
    members: dict[UUID, list[UUID]] = {}
    for row in rows:
        members.setdefault(row["group_id"], []).append(row["directory_user_id"])
    return members


def _group(row: dict[str, Any], members: list[UUID] | None = None) -> DirectoryGroup:
    return DirectoryGroup(
        id=row["id"],
        display_name=row["display_name"],
        external_id=row["external_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        members=members or [],
    )


async def list_groups(
    ctx: TenantContext,
    filter_text: str | None = None,
    start_index: int | None = None,
    count: int | None = None,
    *,
    with_members: bool = True,
) -> Page:
    """Directory groups matching the SCIM filter, oldest first, paged like `list_users`;
    without their members when the caller leaves them out (`excludedAttributes=members`)."""
    ctx.require(Permission.SSO_MANAGE)
    start, wanted = _paging(start_index, count)
    params: list[Any] = [ctx.tenant_id]
    where = "g.tenant_id = $1"
    if filter_text:
        where += " AND " + compile_filter(filter_text, _group_attributes(), params)
    async with tenant_transaction(ctx):
        total = (
            await fetch(f"SELECT count(*) AS n FROM directory_group g WHERE {where}", *params)  # noqa: S608
        )[0]["n"]
        rows = await fetch(
            f"""SELECT {_GROUP_COLUMNS} FROM directory_group g WHERE {where}
                ORDER BY g.created_at, g.id
                LIMIT {wanted} OFFSET {start - 1}""",  # noqa: S608 - integers and constants
            *params,
        )
        members = await _members_of(ctx, [row["id"] for row in rows]) if with_members else {}
    return Page([_group(row, members.get(row["id"])) for row in rows], total, start)


async def _access_group(
    ctx: TenantContext, group_id: UUID | str, *, for_update: bool = False
) -> DirectoryGroup:
    """The group `group_id` of this tenant with its members, its row locked when asked (what
    serializes concurrent changes of one group); 404 alike for unknown and foreign ids."""
    ident = uuid_or_404(group_id)
    lock = "FOR UPDATE" if for_update else ""
    rows = await fetch(
        f"SELECT {_GROUP_COLUMNS} FROM directory_group g "  # noqa: S608 - constant clauses
        f"WHERE g.tenant_id = $1 AND g.id = $2 {lock}",
        ctx.tenant_id,
        ident,
    )
    if not rows:
        raise NotFound()
    members = await _members_of(ctx, [ident])
    return _group(rows[0], members.get(ident))


async def get_group(ctx: TenantContext, group_id: UUID | str) -> DirectoryGroup:
    """One group of this tenant with its members; `NotFound` otherwise."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        return await _access_group(ctx, group_id)


async def _check_members(ctx: TenantContext, members: list[UUID]) -> None:
    if not members:
        return
    rows = await fetch(
        "SELECT id FROM directory_user WHERE tenant_id = $1 AND id = ANY($2)",
        ctx.tenant_id,
        members,
    )
    known = {row["id"] for row in rows}
    missing = [member for member in members if member not in known]
    if missing:
        raise invalid_value("No user has the id {id}.", id=str(missing[0]))


async def _add_members(ctx: TenantContext, group_id: UUID, members: list[UUID]) -> None:
    # One multi-row VALUES per batch (Citus runs INSERT … SELECT unnest as a COPY, which
    # row-level security refuses).
    for start in range(0, len(members), 1000):
        batch = members[start : start + 1000]
        args: list[Any] = [ctx.tenant_id, group_id]
        now = datetime.now(UTC)
        for member in batch:
            args.extend([uuid4(), member, now])
        # Parameters: $1 tenant, $2 group, then (id, member, created_at) per row.
        values = ", ".join(
            f"($1, ${3 + 3 * i}, $2, ${4 + 3 * i}, ${5 + 3 * i})" for i in range(len(batch))
        )
        await execute(
            f"""INSERT INTO directory_group_member
                    (tenant_id, id, group_id, directory_user_id, created_at)
                VALUES {values}
                ON CONFLICT (tenant_id, group_id, directory_user_id) DO NOTHING""",  # noqa: S608
            *args,
        )


async def _write_group(
    ctx: TenantContext, current: DirectoryGroup, fields: GroupFields, action: str
) -> DirectoryGroup:
    await _check_members(ctx, fields.members)
    try:
        await execute(
            """UPDATE directory_group SET display_name = $3, external_id = $4, updated_at = $5
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            current.id,
            fields.display_name,
            fields.external_id,
            datetime.now(UTC),
        )
    except asyncpg.UniqueViolationError:
        raise ScimConflict("A group with this displayName already exists.") from None
    before, after = set(current.members), set(fields.members)
    added = [member for member in fields.members if member not in before]
    removed = [member for member in current.members if member not in after]
    if removed:
        await execute(
            """DELETE FROM directory_group_member
               WHERE tenant_id = $1 AND group_id = $2 AND directory_user_id = ANY($3)""",
            ctx.tenant_id,
            current.id,
            removed,
        )
    await _add_members(ctx, current.id, added)
    renamed = fields.display_name != current.display_name
    touched = sorted(before | after) if renamed else added + removed
    await _sync_roles(ctx, touched)
    await _learner_groups_changed(ctx, await _accounts_of(ctx, touched))
    await audit.record(
        ctx,
        action,
        "directory_group",
        current.id,
        name=fields.display_name,
        added=len(added),
        removed=len(removed),
    )
    return await _access_group(ctx, current.id)


async def create_group(ctx: TenantContext, document: Any) -> DirectoryGroup:
    """A new group with its members; 409 when its displayName is taken here."""
    ctx.require(Permission.SSO_MANAGE)
    fields = group_fields(document)
    group_id, now = uuid4(), datetime.now(UTC)
    async with tenant_transaction(ctx):
        await _check_members(ctx, fields.members)
        try:
            await execute(
                """INSERT INTO directory_group (tenant_id, id, display_name, external_id,
                       created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $5)""",
                ctx.tenant_id,
                group_id,
                fields.display_name,
                fields.external_id,
                now,
            )
        except asyncpg.UniqueViolationError:
            raise ScimConflict("A group with this displayName already exists.") from None
        await _add_members(ctx, group_id, fields.members)
        await _sync_roles(ctx, fields.members)
        await _learner_groups_changed(ctx, await _accounts_of(ctx, fields.members))
        await audit.record(
            ctx,
            "scim.group_created",
            "directory_group",
            group_id,
            name=fields.display_name,
            added=len(fields.members),
        )
        return await _access_group(ctx, group_id)


async def replace_group(ctx: TenantContext, group_id: UUID | str, document: Any) -> DirectoryGroup:
    """PUT: the group becomes `document`, members included."""
    ctx.require(Permission.SSO_MANAGE)
    fields = group_fields(document)
    async with tenant_transaction(ctx):
        current = await _access_group(ctx, group_id, for_update=True)
        return await _write_group(ctx, current, fields, "scim.group_updated")


async def patch_group(ctx: TenantContext, group_id: UUID | str, body: Any) -> DirectoryGroup:
    """PATCH: the operations applied to the group as it is once its row is locked, so that
    concurrent PATCHes of one group follow one another and none loses a member."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        current = await _access_group(ctx, group_id, for_update=True)
        document = group_document(current, "")
        document.pop("meta", None)
        patched = apply_patch(document, GROUP_SHAPE, body)
        return await _write_group(ctx, current, group_fields(patched), "scim.group_updated")


async def delete_group(ctx: TenantContext, group_id: UUID | str) -> None:
    """DELETE: the group goes; its members stay people of the organization (their role
    follows their remaining groups)."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        current = await _access_group(ctx, group_id, for_update=True)
        await execute(
            "DELETE FROM directory_group WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current.id,
        )
        await _sync_roles(ctx, current.members)
        await _learner_groups_changed(ctx, await _accounts_of(ctx, current.members))
        await audit.record(
            ctx, "scim.group_deleted", "directory_group", current.id, name=current.display_name
        )


# --- group mappings (the console's SCIM page) ---------------------------------------------


async def list_group_mappings(ctx: TenantContext) -> list[GroupMapping]:
    """The mappings of directory group names to roles and learner groups, by name."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT id, group_name, role, learner_group FROM directory_group_mapping
               WHERE tenant_id = $1 ORDER BY lower(group_name), id""",
            ctx.tenant_id,
        )
    return [GroupMapping(**row) for row in rows]


async def set_group_mapping(
    ctx: TenantContext, group_name: str, role: str, learner_group: str = ""
) -> GroupMapping:
    """Say what the directory group `group_name` means (a role, a learner group), replacing
    what it meant; every directory user's role, and learner groups, follow at once. Audited."""
    ctx.require(Permission.SSO_MANAGE)
    name = clean_text(group_name, "group_name", max_length=200)
    role = clean_choice(role, MAPPED_ROLES, "role")
    learner = clean_text(learner_group, "learner_group", max_length=100, required=False)
    async with tenant_transaction(ctx):
        existing = await fetch(
            """SELECT id, learner_group FROM directory_group_mapping
               WHERE tenant_id = $1 AND lower(group_name) = lower($2) FOR UPDATE""",
            ctx.tenant_id,
            name,
        )
        mapping_id = existing[0]["id"] if existing else uuid4()
        before = existing[0]["learner_group"] if existing else ""
        try:
            await execute(
                """INSERT INTO directory_group_mapping
                       (tenant_id, id, group_name, role, learner_group)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (tenant_id, id) DO UPDATE
                   SET group_name = EXCLUDED.group_name, role = EXCLUDED.role,
                       learner_group = EXCLUDED.learner_group""",
                ctx.tenant_id,
                mapping_id,
                name,
                role,
                learner,
            )
        except asyncpg.UniqueViolationError:  # the same name, mapped at the same moment
            raise Conflict("This group already has a mapping.", field="group_name") from None
        await _sync_roles(ctx, None)
        await _learner_groups_changed(ctx, None, (before,) if before and before != learner else ())
        await audit.record(
            ctx,
            "scim.mapping_set",
            "directory_group_mapping",
            mapping_id,
            group=name,
            role=role,
            learner_group=learner,
        )
    return GroupMapping(mapping_id, name, role, learner)


async def remove_group_mapping(ctx: TenantContext, mapping_id: UUID | str) -> None:
    """Forget a mapping (404 for another tenant's); roles and learner groups follow the
    remaining mappings."""
    ctx.require(Permission.SSO_MANAGE)
    ident = uuid_or_404(mapping_id)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """DELETE FROM directory_group_mapping WHERE tenant_id = $1 AND id = $2
               RETURNING group_name, learner_group""",
            ctx.tenant_id,
            ident,
        )
        if not rows:
            raise NotFound()
        await _sync_roles(ctx, None)
        withdrawn = rows[0]["learner_group"]
        await _learner_groups_changed(ctx, None, (withdrawn,) if withdrawn else ())
        await audit.record(
            ctx,
            "scim.mapping_removed",
            "directory_group_mapping",
            ident,
            group=rows[0]["group_name"],
        )


async def learner_groups_of(ctx: TenantContext, user_id: UUID) -> list[str]:
    """The learner groups a person is filed under through their directory groups' mappings
    (what campaigns puts on their learner record), by name; none while the directory has them
    deactivated. Opens its own transaction."""
    async with tenant_transaction(ctx):
        rows = await fetch(
            f"SELECT {directory_learner_groups_sql('$1', '$2')} AS groups",
            ctx.tenant_id,
            user_id,
        )
    return list(rows[0]["groups"] or [])
