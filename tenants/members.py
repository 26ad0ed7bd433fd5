"""Memberships: who belongs to an organization, with which role. An organization always keeps
at least one owner. (Invitations, which make new members, are `tenants.invitations`.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.ids import uuid_or_404
from core.keyset import decode_cursor, encode_cursor
from core.validation import clean_choice
from tenants import audit
from tenants.accounts import UserAccount
from tenants.context import TenantContext
from tenants.permissions import Permission, Role

ROLES = tuple(role.value for role in Role)
#: Owners first, then admins, then members: how the console lists people.
_ROLE_RANK = "array_position(ARRAY['owner', 'admin', 'member'], m.role)"
_MEMBER_COLUMNS = "m.id, m.user_id, m.role, m.created_at, m.suspended_at, u.email, u.name"


@dataclass(frozen=True)
class Member:
    """A membership, with the email and name of the member's account."""

    #: the membership's id (what the console and the API name a member by)
    id: UUID
    user_id: UUID
    email: str
    name: str
    role: str
    created_at: datetime
    #: when a directory (SCIM) deactivated them: they act nowhere until reactivated
    suspended_at: datetime | None = None


def _member(row: dict[str, Any]) -> Member:
    return Member(
        id=row["id"],
        user_id=row["user_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        created_at=row["created_at"],
        suspended_at=row["suspended_at"],
    )


# --- accessors -------------------------------------------------------------------------


async def access_membership(
    ctx: TenantContext, membership_id: UUID | str, *, for_update: bool = True
) -> Member:
    """The membership `membership_id` of this tenant (locked for update unless asked not to);
    404 alike for an unknown id and another tenant's.

    Call inside the tenant's transaction.
    """
    lock = "FOR UPDATE OF m" if for_update else ""
    rows = await fetch(
        f"""SELECT {_MEMBER_COLUMNS} FROM membership m
            JOIN user_account u ON u.id = m.user_id
            WHERE m.tenant_id = $1 AND m.id = $2 {lock}""",  # noqa: S608 - constant clauses
        ctx.tenant_id,
        uuid_or_404(membership_id),
    )
    if not rows:
        raise NotFound()
    return _member(rows[0])


# --- members ---------------------------------------------------------------------------


class MemberOrder(StrEnum):
    """How a listing of members is ordered."""

    #: joining time, then id, paged by keyset: members joining later land on later pages (the
    #: JSON API)
    JOINED = "joined"
    #: owners first, then admins, then members, each by name; only ever the whole list (the
    #: console)
    ROLE = "role"


@dataclass(frozen=True)
class MemberPage:
    """One page of members, and the cursor of the next page (None at the end)."""

    items: list[Member]
    next_cursor: str | None


MEMBER_PAGE_MAX = 200


async def list_members(
    ctx: TenantContext,
    cursor: str | None = None,
    limit: int | None = 50,
    order: MemberOrder = MemberOrder.JOINED,
) -> MemberPage:
    """Members with their account's email and name, in `order`.

    In joining order, one keyset page of `limit` (1 to 200) at a time, or every member on one
    page when `limit` is None (the console's list). The cursor names the last row of the
    previous page, so members joining or leaving between two pages neither repeat nor skip
    anyone else. In role order, only every member at once: a cursor or a `limit` there is
    `Invalid`, like a forged cursor.
    """
    ctx.require(Permission.MEMBERS_READ)
    resume = ""
    after: list[Any] = []
    if order is MemberOrder.ROLE:
        # Nothing pages by role: the console shows everyone at once.
        if cursor or limit is not None:
            raise Invalid("This page link is not valid.", field="cursor")
        sort = f"{_ROLE_RANK}, u.name, m.id"
    else:
        if limit is not None and not 1 <= limit <= MEMBER_PAGE_MAX:
            raise Invalid(
                "Ask for between 1 and {max} items per page.", field="limit", max=MEMBER_PAGE_MAX
            )
        sort = "m.created_at, m.id"
        position = decode_cursor(cursor)
        if position is not None:
            resume, after = "AND (m.created_at, m.id) > ($3, $4)", list(position)
    # `LIMIT NULL` is no limit at all.
    args: list[Any] = [ctx.tenant_id, None if limit is None else limit + 1, *after]
    async with tenant_transaction(ctx):
        rows = await fetch(
            f"""SELECT {_MEMBER_COLUMNS}
                FROM membership m JOIN user_account u ON u.id = m.user_id
                WHERE m.tenant_id = $1 {resume}
                ORDER BY {sort} LIMIT $2""",  # noqa: S608 - constant clauses
            *args,
        )
    next_cursor = None
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return MemberPage([_member(row) for row in rows], next_cursor)


async def get_member(ctx: TenantContext, membership_id: UUID | str) -> Member:
    """One member with their account's email and name; `NotFound` for ids not of this tenant."""
    ctx.require(Permission.MEMBERS_READ)
    async with tenant_transaction(ctx):
        return await access_membership(ctx, membership_id, for_update=False)


async def _ensure_other_owner(ctx: TenantContext, membership: Member) -> None:
    if membership.role != Role.OWNER:
        return
    # Lock every owner row so two concurrent demotions cannot both pass this check.
    owners = await fetch(
        "SELECT id FROM membership WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE",
        ctx.tenant_id,
    )
    if len(owners) <= 1:
        raise Conflict("An organization needs at least one owner: name another owner first.")


def _require_role_change(ctx: TenantContext, old_role: str, new_role: str) -> None:
    ctx.require(Permission.MEMBERS_UPDATE)
    if Role.OWNER in (old_role, new_role) and not ctx.can(Permission.OWNERS_MANAGE):
        raise Forbidden("Only an owner can appoint or change an owner.")


async def change_role(ctx: TenantContext, membership_id: UUID | str, role: str) -> None:
    """Give a member another role; the last owner cannot be demoted."""
    role = clean_choice(role, ROLES, "role")
    async with tenant_transaction(ctx):
        membership = await access_membership(ctx, membership_id)
        _require_role_change(ctx, membership.role, role)
        if membership.role == role:
            return
        await _ensure_other_owner(ctx, membership)
        await execute(
            "UPDATE membership SET role = $3 WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            membership.id,
            role,
        )
        await audit.record(
            ctx,
            "member.role_changed",
            "membership",
            membership.id,
            email=membership.email,
            **{"from": membership.role, "to": role},
        )


async def remove_member(ctx: TenantContext, membership_id: UUID | str) -> bool:
    """Remove a member (or leave, for one's own membership); never the last owner.

    True when the actor left (the membership was their own).
    """
    async with tenant_transaction(ctx):
        membership = await access_membership(ctx, membership_id)
        leaving: bool = membership.user_id == ctx.actor.user_id
        if not leaving:
            ctx.require(Permission.MEMBERS_REMOVE)
            if membership.role == Role.OWNER and not ctx.can(Permission.OWNERS_MANAGE):
                raise Forbidden("Only an owner can remove an owner.")
        await _ensure_other_owner(ctx, membership)
        await execute(
            "DELETE FROM membership WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            membership.id,
        )
        await audit.record(
            ctx,
            "member.left" if leaving else "member.removed",
            "membership",
            membership.id,
            email=membership.email,
            role=membership.role,
        )
    return leaving


async def add_member(ctx: TenantContext, user: UserAccount, role: str) -> UUID:
    """Make an existing account a member directly (operators, demo data); audited."""
    ctx.require(Permission.MEMBERS_UPDATE)
    role = clean_choice(role, ROLES, "role")
    membership_id = uuid4()
    async with tenant_transaction(ctx):
        try:
            await execute(
                "INSERT INTO membership (tenant_id, id, user_id, role) VALUES ($1, $2, $3, $4)",
                ctx.tenant_id,
                membership_id,
                user.id,
                role,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("This person is already a member.") from None
        await audit.record(
            ctx, "member.added", "membership", membership_id, email=user.email, role=role
        )
    return membership_id
