"""Reads of the organization's learners: a page of them in either of two orders, one learner
with every participation, and the search and group filters every listing of people shares
(`learner_filters`, used by `campaigns.campaign_listing` too). The one read path of the
console and the JSON API.

The JSON API's learners come newest first (then by id), and their cursors go both ways
(`campaigns.paging`); the console's come by name (case-insensitive, then id), forward only,
with cursors of their own. A page costs one query, whatever `limit` is: the participations
are counted in it, never learner by learner. Learners name people: reading them takes
`org:learners:read` (members hold it by role, API tokens by scope). Design:
docs/adr/0015-paged-listings-and-cursors.md.

Every table a query reads, in a scalar subquery or joined, is filtered on the tenant's own
parameter (`tenant_id = $1`, not only on a join to another row's tenant), so that Citus sends
the whole query to the tenant's shard (ADR 0002).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from campaigns.learner_rows import GROUP_MAX_LENGTH, NAME_MAX_LENGTH
from campaigns.paging import DEFAULT_LIMIT, Page, Query, check_limit, decode_cursor, keyset_page
from core import keyset
from core.database import contains_pattern, fetch, tenant_transaction
from core.errors import Invalid, NotFound
from core.ids import uuid_or_404
from core.validation import clean_text
from tenants.context import TenantContext
from tenants.permissions import Permission

#: The orders learners are listed in: newest first (the JSON API), or by name (the console).
LearnerOrder = Literal["newest", "name"]


@dataclass(frozen=True)
class LearnerRow:
    """A learner of the organization (imported, or who joined a campaign), with how many
    participations they have; `user_id` is their account's once they have one."""

    id: UUID
    name: str
    email: str | None
    external_id: str | None
    groups: list[str]
    created_at: datetime
    participations: int
    user_id: UUID | None


@dataclass(frozen=True)
class LearnerParticipation:
    """One participation of a learner; `level` only once shared."""

    id: UUID
    campaign_id: UUID
    campaign_name: str
    attempt: int
    status: str
    started_at: datetime
    completed_at: datetime | None
    shared_at: datetime | None
    level: int | None


@dataclass(frozen=True)
class LearnerDetail:
    """A learner of the organization with every participation they have, newest first."""

    id: UUID
    name: str
    email: str | None
    external_id: str | None
    groups: list[str]
    created_at: datetime
    participations: list[LearnerParticipation]


# --- filters -------------------------------------------------------------------------------


def _search_pattern(search: str | None) -> str | None:
    text = clean_text(search, "search", max_length=NAME_MAX_LENGTH, required=False)
    return contains_pattern(text) if text else None


def _clean_group(group: str | None) -> str | None:
    return clean_text(group, "group", max_length=GROUP_MAX_LENGTH, required=False) or None


def learner_filters(query: Query, search: str | None, group: str | None, ext: str) -> None:
    """Add to `query` (whose learner table is `l`) a search in the learner's name, email or
    external id (the column `ext`), its wildcards typed literally, and a group to belong to;
    `Invalid` (fields `search`, `group`) for text a learner's name or group could not be."""
    pattern, chosen = _search_pattern(search), _clean_group(group)
    if pattern:
        n = query.param(pattern)
        query.where(f"(l.name ILIKE {n} OR l.email ILIKE {n} OR coalesce({ext}, '') ILIKE {n})")
    if chosen:
        query.where(f"{query.param(chosen)} = ANY (l.groups)")


# --- learners ------------------------------------------------------------------------------

_LEARNERS = """
SELECT l.id, l.name, l.email, l.external_id, l.groups, l.created_at, l.user_id,
       lower(l.name) AS sort_key,
       (SELECT count(*) FROM participation p
        WHERE p.tenant_id = $1 AND p.learner_id = l.id) AS participations
FROM learner l
WHERE l.tenant_id = $1{resume}
ORDER BY {order} LIMIT {limit}
"""


def _learner(row: Mapping[str, Any]) -> LearnerRow:
    return LearnerRow(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        external_id=row["external_id"],
        groups=list(row["groups"]),
        created_at=row["created_at"],
        participations=row["participations"],
        user_id=row["user_id"],
    )


def _encode_name_cursor(sort_key: str, ident: UUID) -> str:
    # the name last: it may contain the separator
    return keyset.pack(str(ident), sort_key)


def _decode_name_cursor(cursor: str | None) -> tuple[str, UUID] | None:
    """The (lower-case name, id) after which a page in name order resumes; None for no
    cursor, `Invalid` for a forged one."""
    parts = keyset.unpack(cursor, 2)
    if parts is None:
        return None
    ident, sort_key = parts
    if len(sort_key) > NAME_MAX_LENGTH:  # a learner's name as stored is no longer
        raise Invalid("This page link is not valid.", field="cursor")
    return sort_key, keyset.parse_id(ident)


async def _learners_by_name(
    query: Query, after: tuple[str, UUID] | None, limit: int
) -> Page[LearnerRow]:
    """One page in name order (case-insensitive, then id), forward only: its cursors are
    the console's "next" links, and it has no previous one."""
    if after is not None:
        sort_key, ident = query.param(after[0]), query.param(after[1])
        query.where(f"(lower(l.name), l.id) > ({sort_key}, {ident}::uuid)")
    sql = _LEARNERS.format(
        resume=query.clause, order="lower(l.name), l.id", limit=query.param(limit + 1)
    )
    rows = await fetch(sql, *query.args)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_name_cursor(rows[-1]["sort_key"], rows[-1]["id"]) if more else None
    return Page([_learner(row) for row in rows], next_cursor, None)


async def list_learners(
    ctx: TenantContext,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    *,
    search: str | None = None,
    group: str | None = None,
    order: LearnerOrder = "newest",
) -> Page[LearnerRow]:
    """The organization's learners, searched by name, email or external id and filtered by
    group, each with how many participations they have; one query per page.

    `order="newest"` (the JSON API's) pages both ways, newest first; `order="name"` (the
    console's) pages forward in name order, with cursors of its own (one order's cursor is a
    forged one to the other). A forged cursor, search or group is `Invalid` (fields
    `cursor`, `search`, `group`)."""
    ctx.require(Permission.LEARNERS_READ)
    limit = check_limit(limit)
    query = Query(ctx.tenant_id)
    # Each order checks its inputs in the order its page always has: the console names a
    # bad search before a bad link, the API a bad link first.
    if order == "name":
        learner_filters(query, search, group, "l.external_id")
        after = _decode_name_cursor(cursor)
        async with tenant_transaction(ctx):
            return await _learners_by_name(query, after, limit)
    at = decode_cursor(cursor)
    learner_filters(query, search, group, "l.external_id")
    async with tenant_transaction(ctx):
        return await keyset_page(
            _LEARNERS, query, ("l.created_at", "l.id"), at, limit, _learner, "created_at"
        )


async def get_learner(ctx: TenantContext, learner_id: UUID | str) -> LearnerDetail:
    """One learner of this tenant with their participations, newest first (levels only of
    shared ones); `NotFound` otherwise. Two queries whatever the number of participations."""
    ctx.require(Permission.LEARNERS_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT id, name, email, external_id, groups, created_at FROM learner
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            uuid_or_404(learner_id),
        )
        if not rows:
            raise NotFound()
        taken = await fetch(
            """SELECT p.id, p.campaign_id, c.name AS campaign_name, p.attempt, p.status,
                      p.created_at, p.completed_at, p.shared_at, r.level
               FROM participation p
               JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
               LEFT JOIN result r ON p.status = 'shared'
                   AND r.tenant_id = $1 AND r.participation_id = p.id
               WHERE p.tenant_id = $1 AND p.learner_id = $2
               ORDER BY p.created_at DESC, p.id DESC""",
            ctx.tenant_id,
            rows[0]["id"],
        )
    row = rows[0]
    return LearnerDetail(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        external_id=row["external_id"],
        groups=list(row["groups"]),
        created_at=row["created_at"],
        participations=[
            LearnerParticipation(
                id=p["id"],
                campaign_id=p["campaign_id"],
                campaign_name=p["campaign_name"],
                attempt=p["attempt"],
                status=p["status"],
                started_at=p["created_at"],
                completed_at=p["completed_at"],
                shared_at=p["shared_at"],
                level=p["level"] if p["status"] == "shared" else None,
            )
            for p in taken
        ],
    )
