"""A campaign's statistics for its organizers: the participation funnel and the levels of the
results shared with them, read in a fixed number of queries (ADR 0009). The progress day by
day is `campaigns.campaign_listing.campaign_progress`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from campaigns.access import require_reader
from core.database import fetch, tenant_transaction
from core.errors import NotFound
from core.ids import uuid_or_404
from tenants.context import TenantContext


@dataclass(frozen=True)
class CompetenceStats:
    """Shared results of one competence: mean level and learners per level 0–8."""

    average_level: float
    distribution: tuple[int, ...]


@dataclass(frozen=True)
class CampaignStats:
    """Learners who started, completed and shared; over the latest shared result of each
    learner: average global score, and each competence's average level and distribution."""

    started: int
    completed: int
    shared: int
    average_score: float | None
    competences: dict[str, CompetenceStats]


async def campaign_stats(ctx: TenantContext, campaign_id: UUID | str) -> CampaignStats:
    """Participation funnel and shared results of a campaign, in two queries whatever the
    number of participants (one for the campaign and its counts, one for the levels).

    Counts are of learners (several attempts count once). Levels come only from results
    their owners shared, the latest shared attempt of each learner.
    """
    require_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT c.id, n.started, n.completed, n.shared FROM campaign c,
                   LATERAL (SELECT count(DISTINCT p.learner_id) AS started,
                       count(DISTINCT p.learner_id) FILTER (WHERE p.status <> 'started')
                           AS completed,
                       count(DISTINCT p.learner_id) FILTER (WHERE p.status = 'shared') AS shared
                   FROM participation p WHERE p.tenant_id = $1
                       AND p.campaign_id = c.id) n
               WHERE c.tenant_id = $1 AND c.id = $2""",
            ctx.tenant_id,
            uuid_or_404(campaign_id),
        )
        if not rows:
            raise NotFound()
        cells = await fetch(
            """WITH latest AS (
                   SELECT DISTINCT ON (p.learner_id) r.level, r.score, r.competences
                   FROM participation p JOIN result r
                       ON r.tenant_id = $1 AND r.participation_id = p.id
                   WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND p.status = 'shared'
                   ORDER BY p.learner_id, p.attempt DESC),
               cells AS (
                   SELECT c.key AS code, (c.value ->> 'level')::int AS level, 0 AS score
                   FROM latest, jsonb_each(latest.competences) c
                   UNION ALL SELECT '', level, score FROM latest)
               SELECT code, level, count(*) AS learners, sum(score) AS score_sum
               FROM cells GROUP BY code, level ORDER BY code, level""",
            ctx.tenant_id,
            rows[0]["id"],
        )
    return _stats(rows[0], cells)


def _stats(counts: Mapping[str, Any], cells: list[dict[str, Any]]) -> CampaignStats:
    distributions: dict[str, list[int]] = {}
    learners = score_sum = 0
    for cell in cells:
        if cell["code"] == "":
            learners += cell["learners"]
            score_sum += cell["score_sum"]
            continue
        distributions.setdefault(cell["code"], [0] * 9)[cell["level"]] += cell["learners"]
    competences = {
        code: CompetenceStats(
            average_level=sum(level * n for level, n in enumerate(dist)) / sum(dist),
            distribution=tuple(dist),
        )
        for code, dist in distributions.items()
    }
    return CampaignStats(
        started=counts["started"],
        completed=counts["completed"],
        shared=counts["shared"],
        average_score=score_sum / learners if learners else None,
        competences=competences,
    )


@dataclass(frozen=True)
class OrganizationFigures:
    """The organization's figures at a glance, for its dashboard: zeros for a new one."""

    campaigns: int
    #: archived campaigns, not in `campaigns`: an organization with only these is not new
    archived_campaigns: int
    #: campaigns open to participants now
    active_campaigns: int
    learners: int
    #: participations started, in every campaign
    participations: int
    #: results their participants shared with the organization
    shared: int
    #: the organization's members
    members: int
    #: member invitations not accepted nor revoked (expired ones included, as the members
    #: page lists them)
    pending_invitations: int


_ORGANIZATION_FIGURES = """
SELECT
  (SELECT count(*) FROM campaign WHERE tenant_id = $1 AND status <> 'archived') AS campaigns,
  (SELECT count(*) FROM campaign WHERE tenant_id = $1 AND status = 'archived')
      AS archived_campaigns,
  (SELECT count(*) FROM campaign WHERE tenant_id = $1 AND status = 'active') AS active_campaigns,
  (SELECT count(*) FROM learner WHERE tenant_id = $1) AS learners,
  (SELECT count(*) FROM participation WHERE tenant_id = $1) AS participations,
  (SELECT count(*) FROM participation WHERE tenant_id = $1 AND status = 'shared') AS shared,
  (SELECT count(*) FROM membership WHERE tenant_id = $1) AS members,
  (SELECT count(*) FROM invitation WHERE tenant_id = $1 AND accepted_at IS NULL
      AND revoked_at IS NULL) AS pending_invitations
"""


async def organization_figures(ctx: TenantContext) -> OrganizationFigures:
    """How many campaigns (archived aside; how many open; how many archived), learners,
    participations, shared results, members and pending member invitations the organization
    has, in one statement (each count filtered on the
    tenant, as Citus routes it). Every member reads them, as they read campaigns."""
    require_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(_ORGANIZATION_FIGURES, ctx.tenant_id)
    row = rows[0]
    return OrganizationFigures(
        campaigns=row["campaigns"],
        archived_campaigns=row["archived_campaigns"],
        active_campaigns=row["active_campaigns"],
        learners=row["learners"],
        participations=row["participations"],
        shared=row["shared"],
        members=row["members"],
        pending_invitations=row["pending_invitations"],
    )
