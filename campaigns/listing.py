"""Reads of campaigns, participations, shared results and learners: the one read path of the
console, the campaign dashboard, the JSON API and the demo.

The listings are keyset pages: rows in a fixed order, `limit` at a time, resumed from an
opaque cursor that names the boundary row. Campaigns, participations, shared results and the
JSON API's learners come newest first (then by id), and their cursors go both ways; the
console's learners come by name (case-insensitive, then id), forward only, with cursors of
their own. Each page costs one query (two when it is under a campaign: the campaign's
accessor first), whatever `limit` is: counts, learners and results come joined, never row by
row. The console's list of campaigns is not paged: `all_campaigns` reads every campaign, with
the same rows in the same order, in one query.

Results appear only for participations their owners shared: an unshared result is never
read, not even to be filtered out afterwards. Who reads what: `org:campaigns:read` for
campaigns, `org:learners:read` for learners and participations (they name people),
`org:results:read` for shared results. Design: docs/adr/0015-paged-listings-and-cursors.md.

Every table a query reads, joined or in a lateral or scalar subquery, is filtered on the
tenant's own parameter (`tenant_id = $1`, not only on a join to another row's tenant), so that
Citus sends the whole query to the tenant's shard (ADR 0002).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from campaigns.learner_rows import GROUP_MAX_LENGTH, NAME_MAX_LENGTH
from core import keyset
from core.database import contains_pattern, fetch, tenant_transaction
from core.errors import Invalid, NotFound
from core.ids import uuid_or_404
from core.validation import clean_text
from tenants.context import TenantContext
from tenants.permissions import Permission

#: Items per page unless asked otherwise, and the most a page holds.
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
PARTICIPATION_STATUSES = ("started", "completed", "shared")

_FORWARD, _BACKWARD = "n", "p"

T = TypeVar("T")


# --- views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: pass `next_cursor` back for the following page (None on the
    last), `previous_cursor` for the one before (None on the first)."""

    items: list[T]
    next_cursor: str | None
    previous_cursor: str | None


@dataclass(frozen=True)
class CampaignSummary:
    """A campaign with its participation funnel (learners, several attempts counting once)."""

    id: UUID
    name: str
    type: str
    code: str
    status: str
    competences: list[str]
    locales: list[str]
    opens_at: datetime | None
    closes_at: datetime | None
    created_at: datetime
    closed_at: datetime | None
    archived_at: datetime | None
    started: int
    completed: int
    shared: int


@dataclass(frozen=True)
class ParticipationRow:
    """Someone's attempt at a campaign. `level` and `score` are set only once shared."""

    id: UUID
    campaign_id: UUID
    learner_id: UUID
    name: str
    email: str | None
    external_id: str | None
    groups: list[str]
    attempt: int
    status: str
    started_at: datetime
    completed_at: datetime | None
    shared_at: datetime | None
    level: int | None
    score: int | None


@dataclass(frozen=True)
class CompetenceLevel:
    code: str
    level: int


@dataclass(frozen=True)
class SharedResult:
    """A result its owner shared with the organization."""

    participation_id: UUID
    campaign_id: UUID
    learner_id: UUID
    name: str
    email: str | None
    external_id: str | None
    attempt: int
    completed_at: datetime
    shared_at: datetime
    level: int
    score: int
    competences: list[CompetenceLevel]


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
    id: UUID
    name: str
    email: str | None
    external_id: str | None
    groups: list[str]
    created_at: datetime
    participations: list[LearnerParticipation]


@dataclass(frozen=True)
class ProgressDay:
    """Learners who had started, completed and shared by the end of `day` (cumulative), and
    how many did each that day."""

    day: date
    started: int
    completed: int
    shared: int
    new_started: int
    new_completed: int
    new_shared: int


# --- cursors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in a listing: the sort key of the boundary row, and which way to go."""

    direction: str
    stamp: datetime
    ident: UUID


def encode_cursor(direction: str, stamp: datetime, ident: UUID) -> str:
    """The opaque, URL-safe text of a cursor."""
    return keyset.pack(direction, stamp.isoformat(), str(ident))


def decode_cursor(cursor: str | None) -> Cursor | None:
    """The position a cursor names; None for none, `Invalid` for a forged or mangled one."""
    parts = keyset.unpack(cursor, 3)
    if parts is None:
        return None
    direction, stamp, ident = parts
    if direction not in (_FORWARD, _BACKWARD):
        raise Invalid("This page link is not valid.", field="cursor")
    return Cursor(direction, keyset.parse_stamp(stamp), keyset.parse_id(ident))


def check_limit(limit: int) -> int:
    """`limit` when it is between 1 and `MAX_LIMIT`; `Invalid` otherwise."""
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise Invalid("Ask for between 1 and {max} items per page.", field="limit", max=MAX_LIMIT)
    return limit


def _search_pattern(search: str | None) -> str | None:
    text = clean_text(search, "search", max_length=NAME_MAX_LENGTH, required=False)
    return contains_pattern(text) if text else None


def _clean_group(group: str | None) -> str | None:
    return clean_text(group, "group", max_length=GROUP_MAX_LENGTH, required=False) or None


def _clean_status(status: str | None) -> str | None:
    if not status:
        return None
    if status not in PARTICIPATION_STATUSES:
        raise Invalid("Choose one of the offered statuses.", field="status")
    return status


class _Query:
    """Bound parameters and WHERE conditions of one listing, numbered as they are added."""

    def __init__(self, *args: Any) -> None:
        self.args: list[Any] = list(args)
        self.conditions: list[str] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, condition: str) -> None:
        self.conditions.append(condition)

    @property
    def clause(self) -> str:
        return "".join(f" AND {condition}" for condition in self.conditions)


async def _keyset(
    select: str,
    query: _Query,
    key: tuple[str, str],
    cursor: Cursor | None,
    limit: int,
    build: Callable[[Mapping[str, Any]], T],
    stamp_of: str,
) -> Page[T]:
    """Run `select` (which ends with a WHERE clause and takes `{resume}`, `{order}` and
    `{limit}`) for one page, newest first by `key` (a timestamp column, then an id column).

    Going back reads the rows just newer than the cursor in ascending order and flips them;
    when fewer than a page remain before it, the first page is read instead (two queries)."""
    stamp_col, id_col = key

    def run(at: Cursor | None) -> tuple[str, list[Any]]:
        q = _Query(*query.args)
        q.conditions = list(query.conditions)
        backward = at is not None and at.direction == _BACKWARD
        if at is not None:
            op = ">" if backward else "<"
            q.where(f"({stamp_col}, {id_col}) {op} ({q.param(at.stamp)}, {q.param(at.ident)})")
        order = "ASC" if backward else "DESC"
        sql = select.format(
            resume=q.clause,
            order=f"{stamp_col} {order}, {id_col} {order}",
            limit=q.param(limit + 1),
        )
        return sql, q.args

    sql, args = run(cursor)
    rows = await fetch(sql, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    if cursor is not None and cursor.direction == _BACKWARD:
        if not more and len(rows) < limit:
            sql, args = run(None)
            rows = (await fetch(sql, *args))[: limit + 1]
            has_next, has_previous = len(rows) > limit, False
            rows = rows[:limit]
        else:
            rows.reverse()
            has_next, has_previous = True, more
    else:
        has_next, has_previous = more, cursor is not None
    items = [build(row) for row in rows]
    if not rows:
        return Page(items, None, None)
    first, last = rows[0], rows[-1]
    return Page(
        items,
        encode_cursor(_FORWARD, last[stamp_of], last["id"]) if has_next else None,
        encode_cursor(_BACKWARD, first[stamp_of], first["id"]) if has_previous else None,
    )


def _require(ctx: TenantContext, permission: Permission) -> None:
    # Members hold these by role, API tokens by scope; participants hold none. One permission
    # per read, so that a token can be given names without levels, or counts without names.
    ctx.require(permission)


async def _campaign_id(ctx: TenantContext, campaign_id: UUID | str) -> UUID:
    """The id of this tenant's campaign `campaign_id`; 404 alike for unknown and foreign.
    Call inside the tenant's transaction."""
    rows = await fetch(
        "SELECT id FROM campaign WHERE tenant_id = $1 AND id = $2",
        ctx.tenant_id,
        uuid_or_404(campaign_id),
    )
    if not rows:
        raise NotFound()
    campaign: UUID = rows[0]["id"]
    return campaign


# --- campaigns ---------------------------------------------------------------------------

_CAMPAIGNS = """
SELECT c.id, c.name, c.type, c.code, c.status, c.locales, c.opens_at, c.closes_at,
       c.created_at, c.closed_at, c.archived_at,
       c.profile_snapshot -> 'profile' -> 'competences' AS competences,
       n.started, n.completed, n.shared
FROM campaign c, LATERAL (
    SELECT count(DISTINCT p.learner_id) AS started,
           count(DISTINCT p.learner_id) FILTER (WHERE p.status <> 'started') AS completed,
           count(DISTINCT p.learner_id) FILTER (WHERE p.status = 'shared') AS shared
    FROM participation p WHERE p.tenant_id = $1 AND p.campaign_id = c.id) n
WHERE c.tenant_id = $1{resume}
"""
#: The campaigns' order, newest first: (timestamp, id) columns of the keyset.
_CAMPAIGN_KEY = ("c.created_at", "c.id")


def _campaign(row: Mapping[str, Any]) -> CampaignSummary:
    return CampaignSummary(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        code=row["code"],
        status=row["status"],
        competences=list(json.loads(row["competences"] or "[]")),
        locales=list(row["locales"]),
        opens_at=row["opens_at"],
        closes_at=row["closes_at"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        archived_at=row["archived_at"],
        started=row["started"],
        completed=row["completed"],
        shared=row["shared"],
    )


async def list_campaigns_page(
    ctx: TenantContext,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    *,
    status: str | None = None,
) -> Page[CampaignSummary]:
    """The tenant's campaigns, newest first, each with its funnel; one query per page."""
    _require(ctx, Permission.CAMPAIGNS_READ)
    limit, at = check_limit(limit), decode_cursor(cursor)
    query = _Query(ctx.tenant_id)
    if status:
        if status not in ("draft", "active", "closed", "archived"):
            raise Invalid("Choose one of the offered statuses.", field="status")
        query.where(f"c.status = {query.param(status)}")
    select = _CAMPAIGNS + " ORDER BY {order} LIMIT {limit}"
    async with tenant_transaction(ctx):
        return await _keyset(select, query, _CAMPAIGN_KEY, at, limit, _campaign, "created_at")


async def all_campaigns(ctx: TenantContext) -> list[CampaignSummary]:
    """Every campaign of the tenant, newest first, each with its funnel: what the pages of
    `list_campaigns_page` hold one after the other, in one query whatever their number, for
    the console's list (which shows them all on one page) and the demo."""
    _require(ctx, Permission.CAMPAIGNS_READ)
    stamp, ident = _CAMPAIGN_KEY
    select = _CAMPAIGNS.format(resume="") + f" ORDER BY {stamp} DESC, {ident} DESC"
    async with tenant_transaction(ctx):
        rows = await fetch(select, ctx.tenant_id)
    return [_campaign(row) for row in rows]


async def campaign_summary(ctx: TenantContext, campaign_id: UUID | str) -> CampaignSummary:
    """One campaign of this tenant with its funnel; `NotFound` otherwise."""
    _require(ctx, Permission.CAMPAIGNS_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            _CAMPAIGNS.format(resume=" AND c.id = $2"), ctx.tenant_id, uuid_or_404(campaign_id)
        )
    if not rows:
        raise NotFound()
    return _campaign(rows[0])


# --- participations ----------------------------------------------------------------------

_PARTICIPATIONS = """
SELECT p.id, p.campaign_id, p.learner_id, l.name, l.email,
       coalesce(p.external_id, l.external_id) AS external_id, l.groups, p.attempt, p.status,
       p.created_at, p.completed_at, p.shared_at, r.level, r.score
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
LEFT JOIN result r ON p.status = 'shared'
    AND r.tenant_id = $1 AND r.participation_id = p.id
WHERE p.tenant_id = $1 AND p.campaign_id = $2{resume}
ORDER BY {order} LIMIT {limit}
"""


def _participation(row: Mapping[str, Any]) -> ParticipationRow:
    shared = row["status"] == "shared"
    return ParticipationRow(
        id=row["id"],
        campaign_id=row["campaign_id"],
        learner_id=row["learner_id"],
        name=row["name"],
        email=row["email"],
        external_id=row["external_id"],
        groups=list(row["groups"]),
        attempt=row["attempt"],
        status=row["status"],
        started_at=row["created_at"],
        completed_at=row["completed_at"],
        shared_at=row["shared_at"],
        level=row["level"] if shared else None,
        score=row["score"] if shared else None,
    )


def _learner_filters(query: _Query, search: str | None, group: str | None, ext: str) -> None:
    pattern, chosen = _search_pattern(search), _clean_group(group)
    if pattern:
        n = query.param(pattern)
        query.where(f"(l.name ILIKE {n} OR l.email ILIKE {n} OR coalesce({ext}, '') ILIKE {n})")
    if chosen:
        query.where(f"{query.param(chosen)} = ANY (l.groups)")


async def list_participations(
    ctx: TenantContext,
    campaign_id: UUID | str,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    *,
    status: str | None = None,
    search: str | None = None,
    group: str | None = None,
) -> Page[ParticipationRow]:
    """A campaign's participations, newest first: filtered by status (started, completed
    and not shared, shared), by a search in the learner's name, email or external id, and by
    group. Levels only for shared ones. Two queries per page."""
    _require(ctx, Permission.LEARNERS_READ)
    limit, at = check_limit(limit), decode_cursor(cursor)
    chosen_status = _clean_status(status)
    async with tenant_transaction(ctx):
        campaign = await _campaign_id(ctx, campaign_id)
        query = _Query(ctx.tenant_id, campaign)
        if chosen_status:
            query.where(f"p.status = {query.param(chosen_status)}")
        _learner_filters(query, search, group, "coalesce(p.external_id, l.external_id)")
        return await _keyset(
            _PARTICIPATIONS,
            query,
            ("p.created_at", "p.id"),
            at,
            limit,
            _participation,
            "created_at",
        )


async def campaign_groups(ctx: TenantContext, campaign_id: UUID | str) -> list[str]:
    """The groups of the campaign's learners, sorted (to offer as a filter)."""
    _require(ctx, Permission.LEARNERS_READ)
    async with tenant_transaction(ctx):
        campaign = await _campaign_id(ctx, campaign_id)
        rows = await fetch(
            """SELECT DISTINCT g.name FROM participation p
               JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id,
               unnest(l.groups) AS g(name)
               WHERE p.tenant_id = $1 AND p.campaign_id = $2 ORDER BY g.name""",
            ctx.tenant_id,
            campaign,
        )
    return [row["name"] for row in rows]


# --- shared results ----------------------------------------------------------------------

_RESULTS = """
SELECT p.id, p.campaign_id, p.learner_id, l.name, l.email,
       coalesce(p.external_id, l.external_id) AS external_id, p.attempt, p.completed_at,
       p.shared_at, r.level, r.score, r.competences
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
JOIN result r ON r.tenant_id = $1 AND r.participation_id = p.id
WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND p.status = 'shared'{resume}
ORDER BY {order} LIMIT {limit}
"""


def _result(row: Mapping[str, Any]) -> SharedResult:
    competences = json.loads(row["competences"])
    return SharedResult(
        participation_id=row["id"],
        campaign_id=row["campaign_id"],
        learner_id=row["learner_id"],
        name=row["name"],
        email=row["email"],
        external_id=row["external_id"],
        attempt=row["attempt"],
        completed_at=row["completed_at"],
        shared_at=row["shared_at"],
        level=row["level"],
        score=row["score"],
        competences=[
            CompetenceLevel(code, int(value.get("level", 0)))
            for code, value in sorted(competences.items())
        ],
    )


async def list_shared_results(
    ctx: TenantContext,
    campaign_id: UUID | str,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    *,
    search: str | None = None,
    group: str | None = None,
) -> Page[SharedResult]:
    """The results shared in a campaign, most recently shared first, with each competence's
    level. Participations not shared are not read at all. Two queries per page."""
    _require(ctx, Permission.RESULTS_READ)
    limit, at = check_limit(limit), decode_cursor(cursor)
    async with tenant_transaction(ctx):
        campaign = await _campaign_id(ctx, campaign_id)
        query = _Query(ctx.tenant_id, campaign)
        _learner_filters(query, search, group, "coalesce(p.external_id, l.external_id)")
        return await _keyset(
            _RESULTS, query, ("p.shared_at", "p.id"), at, limit, _result, "shared_at"
        )


# --- learners ----------------------------------------------------------------------------

#: The orders learners are listed in: newest first (the JSON API), or by name (the console).
LearnerOrder = Literal["newest", "name"]

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
    query: _Query, after: tuple[str, UUID] | None, limit: int
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
    _require(ctx, Permission.LEARNERS_READ)
    limit = check_limit(limit)
    query = _Query(ctx.tenant_id)
    # Each order checks its inputs in the order its page always has: the console names a
    # bad search before a bad link, the API a bad link first.
    if order == "name":
        _learner_filters(query, search, group, "l.external_id")
        after = _decode_name_cursor(cursor)
        async with tenant_transaction(ctx):
            return await _learners_by_name(query, after, limit)
    at = decode_cursor(cursor)
    _learner_filters(query, search, group, "l.external_id")
    async with tenant_transaction(ctx):
        return await _keyset(
            _LEARNERS, query, ("l.created_at", "l.id"), at, limit, _learner, "created_at"
        )


async def get_learner(ctx: TenantContext, learner_id: UUID | str) -> LearnerDetail:
    """One learner of this tenant with their participations, newest first (levels only of
    shared ones); `NotFound` otherwise. Two queries whatever the number of participations."""
    _require(ctx, Permission.LEARNERS_READ)
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


# --- progress over time ------------------------------------------------------------------


async def campaign_progress(ctx: TenantContext, campaign_id: UUID | str) -> list[ProgressDay]:
    """Learners who started, completed and shared the campaign, cumulated day by day in the
    organization's time zone, every day from the first start to the last event (days without
    events included, so the series plots as is). A learner counts once, on the day of their
    first start, first completion and first share: the last day's figures are the funnel's.
    Two queries whatever the number of participants."""
    _require(ctx, Permission.CAMPAIGNS_READ)
    async with tenant_transaction(ctx):
        campaign = await _campaign_id(ctx, campaign_id)
        rows = await fetch(
            """WITH firsts AS (
                   SELECT min(created_at) AS started, min(completed_at) AS completed,
                          min(shared_at) AS shared
                   FROM participation WHERE tenant_id = $1 AND campaign_id = $2
                   GROUP BY learner_id),
               events AS (
                   SELECT (started AT TIME ZONE $3)::date AS day, 1 AS s, 0 AS c, 0 AS h
                   FROM firsts
                   UNION ALL SELECT (completed AT TIME ZONE $3)::date, 0, 1, 0
                   FROM firsts WHERE completed IS NOT NULL
                   UNION ALL SELECT (shared AT TIME ZONE $3)::date, 0, 0, 1
                   FROM firsts WHERE shared IS NOT NULL)
               SELECT day, sum(s)::int AS started, sum(c)::int AS completed,
                      sum(h)::int AS shared
               FROM events GROUP BY day ORDER BY day""",
            ctx.tenant_id,
            campaign,
            ctx.tenant.zone.key,
        )
    return _cumulate(rows)


def _cumulate(rows: list[dict[str, Any]]) -> list[ProgressDay]:
    if not rows:
        return []
    by_day = {row["day"]: row for row in rows}
    day, last = rows[0]["day"], rows[-1]["day"]
    started = completed = shared = 0
    series = []
    while day <= last:
        row = by_day.get(day, {"started": 0, "completed": 0, "shared": 0})
        started += row["started"]
        completed += row["completed"]
        shared += row["shared"]
        series.append(
            ProgressDay(
                day, started, completed, shared, row["started"], row["completed"], row["shared"]
            )
        )
        day += timedelta(days=1)
    return series
