"""An organization's identity-provider connections (OIDC and SAML), as its owners and admins
manage them: create, edit, enable or disable, delete, list. Every change is audited, without
the secret; every id goes through `access_connection`, so another organization's connection is
the 404 of an unknown one.

The secret (OIDC client secret, SAML SP private key) is stored encrypted (`core.secrets`) and
leaves this module in clear only through `connection_by_slug` and `connection_for_sign_in`,
for the protocol code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from core.database import (
    SystemScope,
    dangerously_switch_tenant,
    execute,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import Invalid, NotFound
from core.ids import uuid_or_404
from core.secrets import Keyring, KeysMissing, SecretUnreadable, keyring
from core.validation import clean_choice, clean_slug, clean_text
from sso.errors import SignInRefused
from tenants import audit
from tenants.context import TenantContext, TenantSummary
from tenants.organizations import SUMMARY_SQL, dangerously_sweep_tenants, summary
from tenants.permissions import Permission, Role

PROTOCOLS = ("oidc", "saml")
#: Roles a connection may give: never `owner` (ownership is handed over in the console).
MAPPED_ROLES = (Role.ADMIN.value, Role.MEMBER.value)
_ROLE_RANK = {Role.MEMBER.value: 0, Role.ADMIN.value: 1}


@dataclass(frozen=True)
class ConnectionFields:
    """What an admin chooses for a connection. `secret` None (or empty) keeps the stored
    secret on update; `settings` are the protocol's non-secret settings."""

    protocol: str
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False)
    role_mapping: dict[str, str] = field(default_factory=dict)
    default_role: str = Role.MEMBER.value
    external_id_claim: str = ""
    allow_idp_initiated: bool = False


@dataclass(frozen=True)
class IdentityConnection:
    """A connection of the organization, without its secret."""

    id: UUID
    tenant_id: UUID
    #: oidc or saml
    protocol: str
    name: str
    enabled: bool
    #: protocol-specific, non-secret (OIDC: issuer, client_id, scopes, endpoints…)
    settings: dict[str, Any]
    #: whether a secret is stored (it is never shown again)
    has_secret: bool
    #: {"group name": "admin" | "member"}
    role_mapping: dict[str, str]
    default_role: str
    #: the claim or attribute that fills a campaign's external id ("" for none)
    external_id_claim: str
    allow_idp_initiated: bool
    created_at: datetime
    updated_at: datetime

    def role_for(self, groups: tuple[str, ...] | list[str]) -> str:
        """The role the provider's `groups` give: the highest mapped one, else the default."""
        mapped = [self.role_mapping[group] for group in groups if group in self.role_mapping]
        return max(mapped, key=_ROLE_RANK.__getitem__, default=self.default_role)


@dataclass(frozen=True)
class SignInConnection:
    """A connection as a sign-in uses it, with its sealed secret: `secret` opens it only
    where a sign-in step needs it (the token exchange, an encrypted assertion), so the public
    routes that do not (SP metadata, the ACS POST) work even when no key opens it."""

    connection: IdentityConnection
    sealed: bytes | None = field(repr=False)

    @property
    def secret(self) -> str | None:
        """The secret in clear (never logged); `SignInRefused("connection.secret")` when no
        key of JALON_SSO_KEYS opens it (the operator removed the key it was sealed with)."""
        if self.sealed is None:
            return None
        context = secret_context(self.connection.tenant_id, self.connection.id)
        try:
            return keyring().decrypt(self.sealed, context)
        except (SecretUnreadable, KeysMissing) as error:
            raise SignInRefused(
                "connection.secret",
                f"the connection's secret cannot be opened ({error}): the server's operator "
                "must put its key back in JALON_SSO_KEYS, or an administrator enter it again",
            ) from None


def secret_context(tenant_id: UUID, connection_id: UUID) -> str:
    """What a connection's ciphertext is bound to: it opens on this row only."""
    return f"sso_connection:{tenant_id}:{connection_id}"


def parse_role_mapping(text: str | None) -> dict[str, str]:
    """Read the console's role-mapping box: one `group = role` per line (`#` comments and
    blank lines ignored); `Invalid` naming the first wrong line."""
    mapping: dict[str, str] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        group, sep, role = line.rpartition("=")
        if not sep or not group.strip() or role.strip() not in MAPPED_ROLES:
            raise Invalid(
                "Line {line}: write one group per line as “group = admin” or “group = member”.",
                field="role_mapping",
                line=number,
            )
        mapping[group.strip()] = role.strip()
    return mapping


def format_role_mapping(mapping: dict[str, str]) -> str:
    """The role mapping as the console's box shows it (the inverse of `parse_role_mapping`)."""
    return "\n".join(f"{group} = {role}" for group, role in sorted(mapping.items()))


def _clean(fields: ConnectionFields) -> ConnectionFields:
    name = clean_text(fields.name, "name", max_length=200)
    protocol = clean_choice(fields.protocol, PROTOCOLS, "protocol")
    default_role = clean_choice(fields.default_role, MAPPED_ROLES, "default_role")
    claim = clean_text(
        fields.external_id_claim, "external_id_claim", max_length=200, required=False
    )
    if len(fields.role_mapping) > 500:
        raise Invalid("At most 500 groups can be mapped.", field="role_mapping")
    for group, role in fields.role_mapping.items():
        clean_text(group, "role_mapping", max_length=200)
        clean_choice(role, MAPPED_ROLES, "role_mapping")
    secret = fields.secret.strip() if fields.secret else None
    if secret is not None and len(secret) > 20000:
        raise Invalid(
            "This field is too long ({max} characters at most).", field="secret", max=20000
        )
    return replace(
        fields,
        name=name,
        protocol=protocol,
        default_role=default_role,
        external_id_claim=claim,
        secret=secret or None,
    )


def _keys() -> Keyring:
    ring = keyring()
    try:
        ring.current  # noqa: B018 - raises when no key is configured
    except KeysMissing:
        raise Invalid(
            "This server has no key to store identity-provider secrets (JALON_SSO_KEYS): "
            "ask its operator to set one.",
            field="secret",
        ) from None
    return ring


_COLUMNS = (
    "id, tenant_id, protocol, name, enabled, settings, secret IS NOT NULL AS has_secret, "
    "role_mapping, default_role, external_id_claim, allow_idp_initiated, created_at, updated_at"
)


def _secret_receiver(protocol: str, settings: dict[str, Any]) -> tuple[str, str] | None:
    """Who receives the secret a connection keeps: an OIDC client secret goes to the
    issuer's token endpoint (a SAML SP key leaves the server never)."""
    if protocol != "oidc":
        return None
    provider = settings.get("provider") or {}
    return str(settings.get("issuer", "")), str(provider.get("token_endpoint", ""))


def _json(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded or {})


def _connection(row: dict[str, Any]) -> IdentityConnection:
    return IdentityConnection(
        id=row["id"],
        tenant_id=row["tenant_id"],
        protocol=row["protocol"],
        name=row["name"],
        enabled=row["enabled"],
        settings=_json(row["settings"]),
        has_secret=row["has_secret"],
        role_mapping={str(k): str(v) for k, v in _json(row["role_mapping"]).items()},
        default_role=row["default_role"],
        external_id_claim=row["external_id_claim"],
        allow_idp_initiated=row["allow_idp_initiated"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def access_connection(
    ctx: TenantContext, connection_id: UUID | str, *, for_update: bool = False
) -> IdentityConnection:
    """The connection `connection_id` of this tenant (without its secret); 404 alike for
    unknown ids and another tenant's. Call inside the tenant's transaction."""
    ctx.require(Permission.SSO_MANAGE)
    lock = " FOR UPDATE" if for_update else ""
    rows = await fetch(
        f"SELECT {_COLUMNS} FROM sso_connection "  # noqa: S608 - constant clauses
        f"WHERE tenant_id = $1 AND id = $2{lock}",
        ctx.tenant_id,
        uuid_or_404(connection_id),
    )
    if not rows:
        raise NotFound()
    return _connection(rows[0])


async def get_connection(ctx: TenantContext, connection_id: UUID | str) -> IdentityConnection:
    """The connection, in a transaction of its own (see `access_connection`)."""
    async with tenant_transaction(ctx):
        return await access_connection(ctx, connection_id)


async def list_connections(ctx: TenantContext) -> list[IdentityConnection]:
    """Every connection of the organization, oldest first."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        rows = await fetch(
            f"SELECT {_COLUMNS} FROM sso_connection "  # noqa: S608 - constant clauses
            "WHERE tenant_id = $1 ORDER BY created_at, id",
            ctx.tenant_id,
        )
    return [_connection(row) for row in rows]


def _audited(fields: ConnectionFields) -> dict[str, Any]:
    # What the log keeps of a change: never the secret, only whether one was given.
    return {
        "protocol": fields.protocol,
        "name": fields.name,
        "settings": fields.settings,
        "secret_changed": fields.secret is not None,
        "role_mapping": fields.role_mapping,
        "default_role": fields.default_role,
        "external_id_claim": fields.external_id_claim,
        "allow_idp_initiated": fields.allow_idp_initiated,
    }


async def create_connection(ctx: TenantContext, fields: ConnectionFields) -> UUID:
    """Add a connection, disabled until an admin enables it (after testing it); its id."""
    ctx.require(Permission.SSO_MANAGE)
    clean = _clean(fields)
    connection_id = uuid4()
    sealed = (
        None
        if clean.secret is None
        else _keys().encrypt(clean.secret, secret_context(ctx.tenant_id, connection_id))
    )
    now = datetime.now(UTC)
    async with tenant_transaction(ctx):
        await execute(
            """INSERT INTO sso_connection (tenant_id, id, protocol, name, settings, secret,
                   role_mapping, default_role, external_id_claim, allow_idp_initiated,
                   created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9, $10, $11, $11)""",
            ctx.tenant_id,
            connection_id,
            clean.protocol,
            clean.name,
            json.dumps(clean.settings),
            sealed,
            json.dumps(clean.role_mapping),
            clean.default_role,
            clean.external_id_claim,
            clean.allow_idp_initiated,
            now,
        )
        await audit.record(
            ctx, "sso.connection.created", "sso_connection", connection_id, **_audited(clean)
        )
    return connection_id


async def update_connection(
    ctx: TenantContext,
    connection_id: UUID | str,
    fields: ConnectionFields,
    *,
    settings_for: Callable[[IdentityConnection], dict[str, Any]] | None = None,
) -> UUID:
    """Change a connection's settings; its protocol stays, its secret too unless a new one is
    given; its id. `NotFound` for an unknown or another organization's connection.
    `settings_for`, when given, makes the settings from the current row, read and written in
    one transaction with the row locked (no change made meanwhile is lost)."""
    clean = _clean(fields)
    async with tenant_transaction(ctx):
        current = await access_connection(ctx, connection_id, for_update=True)
        if settings_for is not None:
            clean = replace(clean, settings=settings_for(current))
        if clean.protocol != current.protocol:
            raise Invalid("A connection's protocol cannot change.", field="protocol")
        if (
            clean.secret is None
            and current.has_secret
            and _secret_receiver(current.protocol, clean.settings)
            != _secret_receiver(current.protocol, current.settings)
        ):
            # The stored secret goes only where it was entered for: another provider (an
            # admin's own server, say) would receive it at its token endpoint.
            raise Invalid(
                "The provider changed: enter the client secret it gave you.",
                field="client_secret",
            )
        sealed = (
            None
            if clean.secret is None
            else _keys().encrypt(clean.secret, secret_context(ctx.tenant_id, current.id))
        )
        await execute(
            """UPDATE sso_connection SET name = $3, settings = $4::jsonb,
                   secret = CASE WHEN $5::bytea IS NULL THEN secret ELSE $5::bytea END,
                   role_mapping = $6::jsonb, default_role = $7, external_id_claim = $8,
                   allow_idp_initiated = $9, updated_at = $10
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            current.id,
            clean.name,
            json.dumps(clean.settings),
            sealed,
            json.dumps(clean.role_mapping),
            clean.default_role,
            clean.external_id_claim,
            clean.allow_idp_initiated,
            datetime.now(UTC),
        )
        await audit.record(
            ctx, "sso.connection.updated", "sso_connection", current.id, **_audited(clean)
        )
    return current.id


async def set_enabled(ctx: TenantContext, connection_id: UUID | str, enabled: bool) -> None:
    """Enable or disable a connection (a disabled one signs nobody in, but can be tested)."""
    async with tenant_transaction(ctx):
        current = await access_connection(ctx, connection_id, for_update=True)
        if current.enabled == enabled:
            return
        await execute(
            "UPDATE sso_connection SET enabled = $3, updated_at = $4 "
            "WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current.id,
            enabled,
            datetime.now(UTC),
        )
        action = "sso.connection.enabled" if enabled else "sso.connection.disabled"
        await audit.record(ctx, action, "sso_connection", current.id, name=current.name)


async def delete_connection(ctx: TenantContext, connection_id: UUID | str) -> None:
    """Delete a connection and its secret for good."""
    async with tenant_transaction(ctx):
        current = await access_connection(ctx, connection_id, for_update=True)
        await execute(
            "DELETE FROM sso_connection WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current.id,
        )
        await audit.record(
            ctx,
            "sso.connection.deleted",
            "sso_connection",
            current.id,
            name=current.name,
            protocol=current.protocol,
        )


async def record_test(
    ctx: TenantContext,
    connection_id: UUID,
    *,
    outcome: str,
    detail: str = "",
    email: str = "",
) -> None:
    """Audit a run of "test this connection" (`sso.connection.tested`): `outcome` is "ok" or
    the refusal's reason code."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        await audit.record(
            ctx,
            "sso.connection.tested",
            "sso_connection",
            connection_id,
            outcome=outcome,
            detail=detail,
            email=email,
        )


async def connection_by_slug(
    slug: str, connection_id: UUID | str, *, allow_disabled: bool = False
) -> tuple[TenantSummary, SignInConnection]:
    """The organization `slug` names and its connection `connection_id`, with its secret in
    clear: what a sign-in URL names, read in one transaction before anyone is signed in.
    `NotFound` alike for an unknown or closed organization, an unknown id, another
    organization's, or a disabled connection (unless `allow_disabled`: an admin testing it)."""
    wanted = uuid_or_404(connection_id)
    try:
        slug = clean_slug(slug)
    except Invalid:
        raise NotFound() from None
    async with global_transaction():
        orgs = await fetch(SUMMARY_SQL + " WHERE slug = $1", slug)
        if not orgs or orgs[0]["status"] == "closed":
            raise NotFound()
        tenant = summary(orgs[0])
        await dangerously_switch_tenant(tenant.id)
        rows = await fetch(
            f"SELECT {_COLUMNS}, secret FROM sso_connection "  # noqa: S608 - constant clauses
            "WHERE tenant_id = $1 AND id = $2",
            tenant.id,
            wanted,
        )
    return tenant, _signing_in(tenant.id, rows, allow_disabled)


def _signing_in(
    tenant_id: UUID, rows: list[dict[str, Any]], allow_disabled: bool
) -> SignInConnection:
    if not rows or not (rows[0]["enabled"] or allow_disabled):
        raise NotFound()
    return SignInConnection(_connection(rows[0]), rows[0]["secret"])


async def connection_for_sign_in(
    tenant_id: UUID, connection_id: UUID | str, *, allow_disabled: bool = False
) -> SignInConnection:
    """The connection a sign-in URL names, with its secret in clear, before anyone is signed
    in. `NotFound` for an unknown id, another organization's, or a disabled connection
    (unless `allow_disabled`: an admin testing it)."""
    async with tenant_transaction(SystemScope(tenant_id)):
        rows = await fetch(
            f"SELECT {_COLUMNS}, secret FROM sso_connection "  # noqa: S608 - constant clauses
            "WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            uuid_or_404(connection_id),
        )
    return _signing_in(tenant_id, rows, allow_disabled)


async def reencrypt_secrets(tenant_id: UUID) -> int:
    """Re-encrypt this tenant's connection secrets under the current key (call inside its
    system transaction, as `jalon sso rotate-keys` does); how many changed."""
    ring = keyring()
    rows = await fetch(
        "SELECT id, secret FROM sso_connection WHERE tenant_id = $1 AND secret IS NOT NULL "
        "FOR UPDATE",
        tenant_id,
    )
    changed = 0
    for row in rows:
        if ring.is_current(row["secret"]):
            continue
        sealed = ring.reencrypt(row["secret"], secret_context(tenant_id, row["id"]))
        await execute(
            "UPDATE sso_connection SET secret = $3 WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            row["id"],
            sealed,
        )
        changed += 1
    return changed


async def rotate_keys() -> int:
    """Re-encrypt every organization's connection secrets under the current key, one
    organization per transaction; how many secrets changed. A secret no key opens stops the
    sweep with `SecretUnreadable` (put the old key back in `JALON_SSO_KEYS`)."""
    keyring().current  # noqa: B018 - fail before the sweep when no key is configured
    return await dangerously_sweep_tenants(reencrypt_secrets)
