"""API tokens: per tenant, scoped, expiring, shown once and stored as a digest.

A token reads `jalon_<tenant id hex>_<secret>`: the tenant part lets the API set the tenant
before looking the digest up, so the lookup itself runs under row-level security. The first
`HINT_LENGTH` characters of the secret are kept (`hint`), for people to tell their tokens
apart: 36 of its 256 bits, which leaves the rest out of reach of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from core.database import SystemScope, execute, fetch, tenant_transaction
from core.errors import Invalid, NotFound, Unauthenticated
from core.ids import uuid_or_404
from core.security import new_token, token_digest
from core.validation import clean_text
from tenants import audit
from tenants.context import Actor, TenantContext
from tenants.features import Feature, enabled, require_feature
from tenants.organizations import SUMMARY_SQL, summary
from tenants.permissions import TOKEN_SCOPES, Permission

PREFIX = "jalon_"
MAX_DAYS = 730
HINT_LENGTH = 6


_COLUMNS = """id, name, prefix, hint, scopes, created_at, expires_at, last_used_at, revoked_at,
    (expires_at IS NOT NULL AND expires_at < now()) AS expired"""


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: the only place its secret (`token`) is ever shown."""

    id: UUID
    name: str
    token: str
    scopes: list[str]
    expires_at: datetime | None


def _clean_scopes(scopes: list[str]) -> list[str]:
    allowed = {scope.value for scope in TOKEN_SCOPES}
    chosen = sorted(set(scopes))
    if not chosen:
        raise Invalid("Choose at least one scope.", field="scopes")
    unknown = [scope for scope in chosen if scope not in allowed]
    if unknown:
        raise Invalid("Unknown scope: {scope}.", field="scopes", scope=unknown[0])
    return chosen


async def create_token(
    ctx: TenantContext, name: str, scopes: list[str], expires_in_days: int | None
) -> IssuedToken:
    """Issue a token; its secret is in the result only, never stored or shown again."""
    ctx.require(Permission.TOKENS_MANAGE)
    name = clean_text(name, "name", max_length=100)
    chosen = _clean_scopes(scopes)
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_DAYS:
        raise Invalid(
            "Choose an expiry between 1 and {max} days.", field="expires_in_days", max=MAX_DAYS
        )
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    secret = new_token()
    token = f"{PREFIX}{ctx.tenant_id.hex}_{secret}"
    token_id = uuid4()
    async with tenant_transaction(ctx):
        await require_feature(ctx, Feature.API_ACCESS)
        await execute(
            """INSERT INTO api_token (tenant_id, id, name, prefix, hint, token_hash, scopes,
                   created_by, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            ctx.tenant_id,
            token_id,
            name,
            token[: len(PREFIX) + 8],
            secret[:HINT_LENGTH],
            token_digest(token),
            chosen,
            ctx.actor.user_id,
            expires_at,
        )
        await audit.record(ctx, "token.created", "api_token", token_id, name=name, scopes=chosen)
    return IssuedToken(token_id, name, token, chosen, expires_at)


@dataclass(frozen=True)
class ApiToken:
    """An API token as the console lists it: what it is, never its secret."""

    id: UUID
    name: str
    #: the token's first characters: `jalon_` and the start of the organization's id
    prefix: str
    #: the first characters of the token's secret part, which tell it apart from the
    #: organization's other tokens; None for tokens issued before they were kept
    hint: str | None
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    expired: bool


def _api_token(row: dict[str, Any]) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        hint=row["hint"],
        scopes=list(row["scopes"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        expired=row["expired"],
    )


async def list_tokens(ctx: TenantContext) -> list[ApiToken]:
    """Every token of the organization (revoked and expired ones included), newest first."""
    ctx.require(Permission.TOKENS_MANAGE)
    async with tenant_transaction(ctx):
        rows = await fetch(
            f"""SELECT {_COLUMNS}
               FROM api_token WHERE tenant_id = $1 ORDER BY created_at DESC""",  # noqa: S608
            ctx.tenant_id,
        )
    return [_api_token(row) for row in rows]


async def access_token(
    ctx: TenantContext, token_id: UUID | str, *, for_update: bool = True
) -> ApiToken:
    """The API token `token_id` of this tenant, locked for update unless told otherwise;
    `NotFound` for unknown, mangled and other tenants' ids alike.

    Call inside the tenant's transaction.
    """
    ident = uuid_or_404(token_id)
    lock = " FOR UPDATE" if for_update else ""
    rows = await fetch(
        f"""SELECT {_COLUMNS}
            FROM api_token WHERE tenant_id = $1 AND id = $2{lock}""",  # noqa: S608
        ctx.tenant_id,
        ident,
    )
    if not rows:
        raise NotFound()
    return _api_token(rows[0])


async def get_token(ctx: TenantContext, token_id: UUID | str) -> ApiToken:
    """One API token of this tenant, revoked or not; `NotFound` otherwise."""
    ctx.require(Permission.TOKENS_MANAGE)
    async with tenant_transaction(ctx):
        return await access_token(ctx, token_id, for_update=False)


async def revoke_token(ctx: TenantContext, token_id: UUID | str) -> None:
    """Revoke a token of this tenant; unknown and foreign ids are `NotFound`.

    Revoking a revoked token changes nothing and records nothing.
    """
    ctx.require(Permission.TOKENS_MANAGE)
    async with tenant_transaction(ctx):
        token = await access_token(ctx, token_id)
        if token.revoked_at is not None:
            return
        await execute(
            "UPDATE api_token SET revoked_at = now() WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            token.id,
        )
        await audit.record(ctx, "token.revoked", "api_token", token.id, name=token.name)


async def token_context(raw: str, ip: str | None, user_agent: str) -> TenantContext:
    """The context a bearer token acts in; any invalid token is `Unauthenticated` alike."""
    refused = Unauthenticated("Invalid or expired API token.")
    if not raw.startswith(PREFIX) or raw.count("_") < 2:
        raise refused
    tenant_hex, _, secret = raw[len(PREFIX) :].partition("_")
    try:
        tenant_id = UUID(hex=tenant_hex)
    except ValueError:
        raise refused from None
    if not secret:
        raise refused
    async with tenant_transaction(SystemScope(tenant_id)):
        rows = await fetch(
            """UPDATE api_token SET last_used_at = now()
               WHERE tenant_id = $1 AND token_hash = $2 AND revoked_at IS NULL
                 AND (expires_at IS NULL OR expires_at > now())
               RETURNING id, name, scopes""",
            tenant_id,
            token_digest(raw),
        )
        # the organization's features in the same statement: a tenant without API access
        # (`tenants.features`) has no working token
        orgs = await fetch(
            "SELECT features, " + SUMMARY_SQL.removeprefix("SELECT ") + " WHERE id = $1",
            tenant_id,
        )
    if not rows or not orgs or orgs[0]["status"] in ("suspended", "closed"):
        raise refused
    if not enabled(orgs[0]["features"], Feature.API_ACCESS):
        raise refused
    token = rows[0]
    return TenantContext(
        tenant=summary(orgs[0]),
        actor=Actor(kind="api_token", label=f"token:{token['name']}", ip=ip, user_agent=user_agent),
        # Only what a token may carry, whatever the row says.
        permissions=frozenset(scope for scope in TOKEN_SCOPES if scope.value in token["scopes"]),
    )
