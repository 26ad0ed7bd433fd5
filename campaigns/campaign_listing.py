"""Reads of campaigns and of what happens in them: the campaigns with their participation
funnel, a campaign's participations and shared results, its learners' groups, and its
progress over time. The one read path of the console, the campaign dashboard, the JSON API
and the demo; the organization's learners are `campaigns.learner_listing`'s.

The listings are keyset pages (`campaigns.paging`): campaigns, participations and shared
results come newest first (then by id), and their cursors go both ways. Each page costs one
query (two when it is under a campaign: the campaign's accessor first), whatever `limit` is:
counts, learners and results come joined, never row by row. The console's list of campaigns
is not paged: `all_campaigns` reads every campaign, with the same rows in the same order, in
one query.

Results appear only for participations their owners shared: an unshared result is never
read, not even to be filtered out afterwards. Who reads what: `org:campaigns:read` for
campaigns, `org:learners:read` for participations (they name people), `org:results:read` for
shared results; members hold these by role, API tokens by scope, participants none. One
permission per read, so that a token can be given names without levels, or counts without
names. Design: docs/adr/0015-paged-listings-and-cursors.md.

Every table a query reads, joined or in a lateral or scalar subquery, is filtered on the
tenant's own parameter (`tenant_id = $1`, not only on a join to another row's tenant), so that
Citus sends the whole query to the tenant's shard (ADR 0002).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from campaigns.campaign_fields import STATUSES
from campaigns.learner_listing import learner_filters
from campaigns.paging import DEFAULT_LIMIT, Page, Query, check_limit, decode_cursor, keyset_page
from core.database import fetch, tenant_transaction
from core.errors import Invalid, NotFound
from core.ids import uuid_or_404
from tenants.context import TenantContext
from tenants.permissions import Permission

PARTICIPATION_STATUSES = ("started", "completed", "shared")


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
    """A competence's level in a shared result."""

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


def _clean_status(status: str | None) -> str | None:
    if not status:
        return None
    if status not in PARTICIPATION_STATUSES:
        raise Invalid("Choose one of the offered statuses.", field="status")
    return status


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
    ctx.require(Permission.CAMPAIGNS_READ)
    limit, at = check_limit(limit), decode_cursor(cursor)
    query = Query(ctx.tenant_id)
    if status:
        if status not in STATUSES:
            raise Invalid("Choose one of the offered statuses.", field="status")
        query.where(f"c.status = {query.param(status)}")
    select = _CAMPAIGNS + " ORDER BY {order} LIMIT {limit}"
    async with tenant_transaction(ctx):
        return await keyset_page(select, query, _CAMPAIGN_KEY, at, limit, _campaign, "created_at")


async def all_campaigns(ctx: TenantContext) -> list[CampaignSummary]:
    """Every campaign of the tenant, newest first, each with its funnel: what the pages of
    `list_campaigns_page` hold one after the other, in one query whatever their number, for
    the console's list (which shows them all on one page) and the demo."""
    ctx.require(Permission.CAMPAIGNS_READ)
    stamp, ident = _CAMPAIGN_KEY
    select = _CAMPAIGNS.format(resume="") + f" ORDER BY {stamp} DESC, {ident} DESC"
    async with tenant_transaction(ctx):
        rows = await fetch(select, ctx.tenant_id)
    return [_campaign(row) for row in rows]


async def campaign_summary(ctx: TenantContext, campaign_id: UUID | str) -> CampaignSummary:
    """One campaign of this tenant with its funnel; `NotFound` otherwise."""
    ctx.require(Permission.CAMPAIGNS_READ)
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


def participation_row(row: Mapping[str, Any]) -> ParticipationRow:
    """The participation of a row with `_PARTICIPATIONS`' columns, its level and score kept
    only once shared: the one place of that rule for the participants table, the API and the
    console's participant page (`campaigns.participant_details`)."""
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
    ctx.require(Permission.LEARNERS_READ)
    limit, at = check_limit(limit), decode_cursor(cursor)
    chosen_status = _clean_status(status)
    async with tenant_transaction(ctx):
        campaign = await _campaign_id(ctx, campaign_id)
        query = Query(ctx.tenant_id, campaign)
        if chosen_status:
            query.where(f"p.status = {query.param(chosen_status)}")
        learner_filters(query, search, group, "coalesce(p.external_id, l.external_id)")
        return await keyset_page(
            _PARTICIPATIONS,
            query,
            ("p.created_at", "p.id"),
            at,
            limit,
            participation_row,
            "created_at",
        )


async def campaign_groups(ctx: TenantContext, campaign_id: UUID | str) -> list[str]:
    """The groups of the campaign's learners, sorted (to offer as a filter)."""
    ctx.require(Permission.LEARNERS_READ)
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
    ctx.require(Permission.RESULTS_READ)
    limit, at = check_limit(limit), decode_cursor(cursor)
    async with tenant_transaction(ctx):
        campaign = await _campaign_id(ctx, campaign_id)
        query = Query(ctx.tenant_id, campaign)
        learner_filters(query, search, group, "coalesce(p.external_id, l.external_id)")
        return await keyset_page(
            _RESULTS, query, ("p.shared_at", "p.id"), at, limit, _result, "shared_at"
        )


# --- progress over time ------------------------------------------------------------------


async def campaign_progress(ctx: TenantContext, campaign_id: UUID | str) -> list[ProgressDay]:
    """Learners who started, completed and shared the campaign, cumulated day by day in the
    organization's time zone, every day from the first start to the last event (days without
    events included, so the series plots as is). A learner counts once, on the day of their
    first start, first completion and first share: the last day's figures are the funnel's.
    Two queries whatever the number of participants."""
    ctx.require(Permission.CAMPAIGNS_READ)
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
