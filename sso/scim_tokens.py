"""SCIM tokens: what a directory (Entra ID, Okta, Google…) presents to provision people into
one organization. Shown once, stored as a SHA-256 digest like API tokens (`tenants.tokens`).

A token reads `jalon_scim_<tenant id hex>_<secret>`: the tenant part sets the tenant before
the digest is looked up, so the lookup itself runs under row-level security.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from core.database import SystemScope, execute, fetch, tenant_transaction
from core.errors import NotFound, Unauthenticated
from core.ids import uuid_or_404
from core.security import new_token, token_digest
from core.validation import clean_text
from tenants import audit
from tenants.context import Actor, TenantContext
from tenants.organizations import SUMMARY_SQL, summary
from tenants.permissions import Permission

PREFIX = "jalon_scim_"
#: What a SCIM token may do: manage the directory's people and groups, nothing else. Its
#: services check this one permission (which admins and owners hold too, for the console).
SCIM_PERMISSIONS = frozenset({Permission.SSO_MANAGE})


@dataclass(frozen=True)
class IssuedScimToken:
    """A token just made: the only place its secret (`token`) is ever shown."""

    id: UUID
    name: str
    token: str


@dataclass(frozen=True)
class ScimToken:
    """A SCIM token as the console lists it, never its secret."""

    id: UUID
    name: str
    #: the token's first characters, to recognise it
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _token(row: dict[str, Any]) -> ScimToken:
    return ScimToken(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


async def create_scim_token(ctx: TenantContext, name: str) -> IssuedScimToken:
    """Make a SCIM token for this organization; audited. Its secret is in the result only."""
    ctx.require(Permission.SSO_MANAGE)
    name = clean_text(name, "name", max_length=100)
    token = f"{PREFIX}{ctx.tenant_id.hex}_{new_token()}"
    token_id = uuid4()
    async with tenant_transaction(ctx):
        await execute(
            """INSERT INTO scim_token (tenant_id, id, name, prefix, token_hash, created_by)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            ctx.tenant_id,
            token_id,
            name,
            token[: len(PREFIX) + 8],
            token_digest(token),
            ctx.actor.user_id,
        )
        await audit.record(ctx, "scim.token_created", "scim_token", token_id, name=name)
    return IssuedScimToken(token_id, name, token)


async def list_scim_tokens(ctx: TenantContext) -> list[ScimToken]:
    """Every SCIM token of the organization, revoked ones included, newest first."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT id, name, prefix, created_at, last_used_at, revoked_at
               FROM scim_token WHERE tenant_id = $1 ORDER BY created_at DESC, id""",
            ctx.tenant_id,
        )
    return [_token(row) for row in rows]


async def revoke_scim_token(ctx: TenantContext, token_id: UUID | str) -> None:
    """Revoke a SCIM token of this organization (404 for another's or none); audited once."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT id, name, prefix, created_at, last_used_at, revoked_at
               FROM scim_token WHERE tenant_id = $1 AND id = $2 FOR UPDATE""",
            ctx.tenant_id,
            uuid_or_404(token_id),
        )
        if not rows:
            raise NotFound()
        token = _token(rows[0])
        if token.revoked_at is not None:
            return
        await execute(
            "UPDATE scim_token SET revoked_at = now() WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            token.id,
        )
        await audit.record(ctx, "scim.token_revoked", "scim_token", token.id, name=token.name)


async def dangerously_use_scim_token(tenant_id: UUID, raw: str) -> tuple[str, dict[str, Any]]:
    """The name of the live SCIM token `raw` of `tenant_id` (its use recorded) and the
    organization's summary row, or `Unauthenticated`. The tenant comes from the token itself,
    before anyone is authenticated: the digest must match inside that tenant's transaction."""
    async with tenant_transaction(SystemScope(tenant_id)):
        rows = await fetch(
            """UPDATE scim_token SET last_used_at = $3
               WHERE tenant_id = $1 AND token_hash = $2 AND revoked_at IS NULL
               RETURNING id, name""",
            tenant_id,
            token_digest(raw),
            datetime.now(UTC),
        )
        orgs = await fetch(SUMMARY_SQL + " WHERE id = $1", tenant_id)
    if not rows or not orgs or orgs[0]["status"] in ("suspended", "closed"):
        raise Unauthenticated("Invalid or revoked SCIM token.")
    return rows[0]["name"], orgs[0]


async def scim_context(raw: str, ip: str | None, user_agent: str) -> TenantContext:
    """The context a SCIM bearer token acts in; any invalid, revoked or foreign token, or a
    suspended or closed organization, is `Unauthenticated` alike."""
    refused = Unauthenticated("Invalid or revoked SCIM token.")
    if not raw.startswith(PREFIX):
        raise refused
    tenant_hex, _, secret = raw[len(PREFIX) :].partition("_")
    try:
        tenant_id = UUID(hex=tenant_hex)
    except ValueError:
        raise refused from None
    if not secret:
        raise refused
    name, organization = await dangerously_use_scim_token(tenant_id, raw)
    return TenantContext(
        tenant=summary(organization),
        actor=Actor(kind="api_token", label=f"scim:{name}", ip=ip, user_agent=user_agent),
        permissions=SCIM_PERMISSIONS,
    )
