"""The participation as its participant sees it (`ParticipationView`, with its `ResultView`),
built from a database row, and the query that reads one's own participation back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from core.database import fetch
from core.errors import NotFound
from core.ids import uuid_or_404
from tenants.context import TenantContext


@dataclass(frozen=True)
class ResultView:
    """A participation's result: global ability and score, and each competence's level."""

    theta: float | None
    se: float | None
    level: int
    score: int
    competences: dict[str, dict[str, Any]]
    mastered_skills: tuple[str, ...]


@dataclass(frozen=True)
class ParticipationView:
    """A participant's participation; `resumed` says `start_or_resume` found it started."""

    id: UUID
    campaign_id: UUID
    attempt: int
    status: str
    external_id: str | None
    created_at: datetime
    completed_at: datetime | None
    shared_at: datetime | None
    resumed: bool = False
    result: ResultView | None = None


def _result_view(row: Mapping[str, Any]) -> ResultView | None:
    if row.get("level") is None:
        return None
    return ResultView(
        theta=row["theta"],
        se=row["se"],
        level=row["level"],
        score=row["score"],
        competences=json.loads(row["competences"]),
        mastered_skills=tuple(row["mastered_skills"]),
    )


def participation_view(row: Mapping[str, Any], *, resumed: bool = False) -> ParticipationView:
    """The view of a participation row joined with its result's columns (none yet: no
    result)."""
    return ParticipationView(
        id=row["id"],
        campaign_id=row["campaign_id"],
        attempt=row["attempt"],
        status=row["status"],
        external_id=row["external_id"],
        created_at=row["created_at"],
        completed_at=row["completed_at"],
        shared_at=row["shared_at"],
        resumed=resumed,
        result=_result_view(row),
    )


_OWN_PARTICIPATION = """
SELECT p.*, r.theta, r.se, r.level, r.score, r.competences, r.mastered_skills
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
LEFT JOIN result r ON r.tenant_id = $1 AND r.participation_id = p.id
WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3
"""


async def own_participation(
    ctx: TenantContext, participation_id: UUID | str, user_id: UUID | None
) -> ParticipationView:
    """The participation of the person `user_id`, read in the caller's tenant transaction;
    `NotFound` for anyone else's and for an unknown or malformed id."""
    rows = await fetch(_OWN_PARTICIPATION, ctx.tenant_id, uuid_or_404(participation_id), user_id)
    if not rows:
        raise NotFound()
    return participation_view(rows[0])
