"""The organization's sign-in policy: "SSO required for members".

When an organization requires SSO, its members sign in through its identity provider only:
password and magic-link sign-ins are refused to them. A person who belongs to several
organizations is refused a password as soon as ANY of them requires SSO (the strictest wins:
a password that one organization turned off must not open its console through a detour), unless
they are that organization's break-glass owner: the one owner an administrator names, who keeps
password access should the identity provider fail.

The policy bites only while the organization has an enabled connection (turning it on
requires one; should every connection be disabled later, passwords work again rather than
lock everyone out), and only for open organizations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from core.database import (
    dangerously_switch_tenant,
    execute,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import Invalid
from sso.discovery import ConnectionChoice, enabled_connections
from tenants import audit
from tenants.context import TenantContext
from tenants.permissions import Permission, Role

_NOT_AN_OWNER_MESSAGE = "Choose one of the organization's owners."


@dataclass(frozen=True)
class SignInPolicy:
    """An organization's sign-in policy (the default: passwords allowed)."""

    sso_required_for_members: bool = False
    break_glass_user_id: UUID | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Owner:
    """An owner who may be named break-glass."""

    user_id: UUID
    email: str
    name: str


@dataclass(frozen=True)
class PolicyPage:
    """What the policy page shows: the policy, the owners to choose from, and whether an
    enabled connection exists (the policy cannot be turned on without one)."""

    policy: SignInPolicy
    owners: list[Owner]
    has_enabled_connection: bool


async def _policy(tenant_id: UUID) -> SignInPolicy:
    rows = await fetch(
        """SELECT sso_required_for_members, break_glass_user_id, updated_at
           FROM sso_policy WHERE tenant_id = $1""",
        tenant_id,
    )
    if not rows:
        return SignInPolicy()
    return SignInPolicy(
        sso_required_for_members=rows[0]["sso_required_for_members"],
        break_glass_user_id=rows[0]["break_glass_user_id"],
        updated_at=rows[0]["updated_at"],
    )


async def _owners(tenant_id: UUID) -> list[Owner]:
    rows = await fetch(
        """SELECT m.user_id, u.email, u.name FROM membership m
           JOIN user_account u ON u.id = m.user_id
           WHERE m.tenant_id = $1 AND m.role = 'owner' ORDER BY u.name, u.email""",
        tenant_id,
    )
    return [Owner(user_id=r["user_id"], email=r["email"], name=r["name"]) for r in rows]


async def _has_enabled_connection(tenant_id: UUID) -> bool:
    rows = await fetch(
        "SELECT 1 FROM sso_connection WHERE tenant_id = $1 AND enabled LIMIT 1", tenant_id
    )
    return bool(rows)


async def policy_page(ctx: TenantContext) -> PolicyPage:
    """The organization's policy, its owners and whether it has an enabled connection."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        return PolicyPage(
            policy=await _policy(ctx.tenant_id),
            owners=await _owners(ctx.tenant_id),
            has_enabled_connection=await _has_enabled_connection(ctx.tenant_id),
        )


async def set_policy(
    ctx: TenantContext, sso_required: bool, break_glass_user_id: UUID | str | None
) -> SignInPolicy:
    """Change the policy: `Invalid` when SSO is required without an enabled connection, or
    when the break-glass person is not an owner of the organization. Audited."""
    ctx.require(Permission.SSO_MANAGE)
    try:
        break_glass = UUID(str(break_glass_user_id)) if break_glass_user_id else None
    except ValueError:
        raise Invalid(_NOT_AN_OWNER_MESSAGE, field="break_glass") from None
    async with tenant_transaction(ctx):
        before = await _policy(ctx.tenant_id)
        if sso_required and not await _has_enabled_connection(ctx.tenant_id):
            raise Invalid(
                "Enable a connection first: members could not sign in at all.",
                field="sso_required",
            )
        if break_glass is not None and break_glass not in {
            owner.user_id for owner in await _owners(ctx.tenant_id)
        }:
            raise Invalid(_NOT_AN_OWNER_MESSAGE, field="break_glass")
        now = datetime.now(UTC)
        await execute(
            """INSERT INTO sso_policy (tenant_id, id, sso_required_for_members,
                   break_glass_user_id, updated_at)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (tenant_id) DO UPDATE SET
                   sso_required_for_members = EXCLUDED.sso_required_for_members,
                   break_glass_user_id = EXCLUDED.break_glass_user_id,
                   updated_at = EXCLUDED.updated_at""",
            ctx.tenant_id,
            uuid4(),
            sso_required,
            break_glass,
            now,
        )
        after = SignInPolicy(sso_required, break_glass, now)
        if (before.sso_required_for_members, before.break_glass_user_id) != (
            after.sso_required_for_members,
            after.break_glass_user_id,
        ):
            await audit.record(
                ctx,
                "sso.policy_changed",
                "organization",
                ctx.tenant_id,
                sso_required_for_members=sso_required,
                was_required=before.sso_required_for_members,
                break_glass_user_id=str(break_glass or ""),
                was_break_glass_user_id=str(before.break_glass_user_id or ""),
            )
    return after


async def sso_required_connections(user_id: UUID) -> list[ConnectionChoice] | None:
    """None when `user_id` may sign in with a password (or a magic link); otherwise the
    enabled connections of the organizations that require SSO of them (to offer instead)."""
    async with global_transaction(user_id=user_id):
        # The person's own memberships (own_rows), then each organization's policy in turn.
        memberships = await fetch(
            """SELECT o.id, o.slug, o.name, m.role FROM membership m
               JOIN organization o ON o.id = m.tenant_id
               WHERE m.user_id = $1 AND m.suspended_at IS NULL
                 AND o.status NOT IN ('suspended', 'closed')
               ORDER BY o.name""",
            user_id,
        )
        required: list[ConnectionChoice] = []
        refused = False
        for org in memberships:
            await dangerously_switch_tenant(org["id"], user_id)
            policy = await _policy(org["id"])
            # The break-glass person keeps a password while they are an owner.
            break_glass = policy.break_glass_user_id == user_id and org["role"] == Role.OWNER.value
            if not policy.sso_required_for_members or break_glass:
                continue
            connections = await enabled_connections(org["id"], org["slug"], org["name"])
            if connections:
                refused = True
                required.extend(connections)
    return required if refused else None


async def password_allowed(user_id: UUID) -> bool:
    """Whether `user_id` may sign in with a password or a magic link (see the module)."""
    return await sso_required_connections(user_id) is None
