"""One participation as the organization's console shows it: who (name, email, external id,
groups), where they stand (status, started and completed, answers given), their levels per
competence once they shared them, their other attempts, and the invitation mails sent to
them for the campaign.

Levels are the organization's to read only once the participant shared them, as in the
participants table and the exports: before that, the page says they are not shared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from campaigns.campaign_listing import CompetenceLevel, ParticipationRow, participation_row
from campaigns.invitations import LearnerInvitation, learner_invitation
from core.database import fetch, tenant_transaction
from core.errors import NotFound
from core.ids import uuid_or_404
from tenants.context import TenantContext
from tenants.permissions import Permission


@dataclass(frozen=True)
class OtherAttempt:
    """Another attempt of the same learner at the same campaign."""

    id: UUID
    attempt: int
    status: str
    started_at: datetime


@dataclass(frozen=True)
class ParticipantDetail:
    """What the console's participant page shows: the participation as the participants
    table shows it (`participation.level` and `.score` set only once shared), and more."""

    participation: ParticipationRow
    #: questions answered, pretest ones not counted
    answers: int
    #: empty until shared
    competences: tuple[CompetenceLevel, ...]
    other_attempts: tuple[OtherAttempt, ...]
    invitation: LearnerInvitation | None


# The participants table's columns (`participation_row`), its join on results only once
# shared, and what only this page shows: the answers and the competences.
_DETAIL = """
SELECT p.id, p.campaign_id, p.learner_id, l.name, l.email,
       coalesce(p.external_id, l.external_id) AS external_id, l.groups, p.attempt, p.status,
       p.created_at, p.completed_at, p.shared_at, r.level, r.score, r.competences,
       (SELECT count(*) FROM answer a WHERE a.tenant_id = $1 AND a.participation_id = p.id
            AND NOT a.pretest) AS answers
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
LEFT JOIN result r ON p.status = 'shared'
    AND r.tenant_id = $1 AND r.participation_id = p.id
WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND p.id = $3
"""

_OTHERS = """
SELECT id, attempt, status, created_at FROM participation
WHERE tenant_id = $1 AND campaign_id = $2 AND learner_id = $3 AND id <> $4
ORDER BY attempt
"""


async def participant_detail(
    ctx: TenantContext, campaign_id: UUID | str, participation_id: UUID | str
) -> ParticipantDetail:
    """A participation of the campaign, for members who read learners; `NotFound` alike for
    an unknown participation, one of another campaign and one of another organization."""
    ctx.require(Permission.LEARNERS_READ)
    async with tenant_transaction(ctx):
        rows = await fetch(
            _DETAIL, ctx.tenant_id, uuid_or_404(campaign_id), uuid_or_404(participation_id)
        )
        if not rows:
            raise NotFound()
        row = rows[0]
        others = await fetch(
            _OTHERS, ctx.tenant_id, row["campaign_id"], row["learner_id"], row["id"]
        )
    participation = participation_row(row)
    shared = participation.level is not None
    competences = json.loads(row["competences"]) if shared else {}
    return ParticipantDetail(
        participation=participation,
        answers=int(row["answers"]),
        competences=tuple(
            CompetenceLevel(code, int(value.get("level", 0)))
            for code, value in sorted(competences.items())
        ),
        other_attempts=tuple(
            OtherAttempt(o["id"], o["attempt"], o["status"], o["created_at"]) for o in others
        ),
        invitation=await learner_invitation(
            ctx, participation.campaign_id, participation.learner_id, participation.email
        ),
    )
