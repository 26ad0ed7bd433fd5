"""What a participant reads of their participations: one participation and its result, the
detailed result once the test is over, sharing it with the organization, and every
participation of theirs in every organization ("My results")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from campaigns import events
from campaigns.access import participant_id
from campaigns.content import frozen_bank
from campaigns.participation.rules import refuse_if_archived
from campaigns.participation.views import (
    ParticipationView,
    own_participation,
    participation_view,
)
from campaigns.profile_catalogue import ProfileSpec
from core.database import (
    SystemScope,
    execute,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import Conflict, Invalid, NotFound
from core.i18n import in_language
from core.ids import uuid_or_404
from engine.bank import Challenge
from tenants import audit
from tenants.context import TenantContext


async def get_participation(ctx: TenantContext, participation_id: UUID | str) -> ParticipationView:
    """The participant's own participation, with its result once finished; `NotFound` for
    anyone else's."""
    user_id = participant_id(ctx)
    async with tenant_transaction(ctx):
        return await own_participation(ctx, participation_id, user_id)


# --- sharing ---------------------------------------------------------------------------------


async def share(
    ctx: TenantContext, participation_id: UUID | str, *, consent: bool
) -> ParticipationView:
    """Share a finished participation's result with the organization, with the participant's
    explicit consent (recorded in the audit log). Sharing again changes nothing."""
    user_id = participant_id(ctx)
    if consent is not True:
        raise Invalid("Tick the box to agree to share your results.", field="consent")
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT p.id, p.status, c.status AS campaign_status, c.name FROM participation p
               JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
               JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
               WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3 FOR UPDATE OF p""",
            ctx.tenant_id,
            uuid_or_404(participation_id),
            user_id,
        )
        if not rows:
            raise NotFound()
        row = rows[0]
        refuse_if_archived(row["campaign_status"])
        if row["status"] == "started":
            raise Conflict("Finish the test before sharing your results.")
        if row["status"] == "completed":
            await execute(
                """UPDATE participation SET status = 'shared', shared_at = now()
                   WHERE tenant_id = $1 AND id = $2""",
                ctx.tenant_id,
                row["id"],
            )
            await audit.record(
                ctx, "participation.shared", "participation", row["id"], campaign=row["name"]
            )
            await events.participation_shared(ctx, row["id"])
        return await own_participation(ctx, row["id"], user_id)


# --- reading a result ------------------------------------------------------------------------


@dataclass(frozen=True)
class CompetenceLevel:
    """A competence of a result: its title in the reader's language, level and cap."""

    code: str
    title: str
    level: int
    max_level: int


@dataclass(frozen=True)
class MissedChallenge:
    """A challenge answered wrongly (or skipped): the participant's answer beside the right
    one, and what the right answer was about. Texts are in the language of the test."""

    #: the bank's challenge type: single_choice, multiple_choice or short_text
    kind: str
    statement: str
    proposals: tuple[str, ...]
    explanation: str
    skipped: bool
    #: what the participant answered: the proposals they chose, or the text they typed
    #: (empty when skipped)
    given: tuple[str, ...]
    #: the right answer: the right proposals, or the accepted texts (the first one preferred)
    correct: tuple[str, ...]


@dataclass(frozen=True)
class ResultDetails:
    """What a participant reads once their test is over."""

    participation: ParticipationView
    campaign_name: str
    campaign_type: str
    #: the language the challenges were asked in (None for a profiles collection)
    test_locale: str | None
    competences: tuple[CompetenceLevel, ...]
    missed: tuple[MissedChallenge, ...]


_RESULT_DETAILS = """
SELECT p.*, r.theta, r.se, r.level, r.score, r.competences, r.mastered_skills,
       c.name AS campaign_name, c.type AS campaign_type, c.bank_version, c.profile_snapshot,
       s.locale AS test_locale, coalesce(x.ids, '{}') AS missed_ids,
       coalesce(x.skipped, '{}') AS missed_skipped, coalesce(x.answers, '{}') AS missed_answers
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
LEFT JOIN assessment s ON s.tenant_id = $1 AND s.participation_id = p.id
LEFT JOIN result r ON r.tenant_id = $1 AND r.participation_id = p.id
CROSS JOIN LATERAL (
    SELECT array_agg(a.challenge_id ORDER BY a.position) AS ids,
           array_agg(a.skipped ORDER BY a.position) AS skipped,
           array_agg(a.value::text ORDER BY a.position) AS answers
    FROM answer a WHERE a.tenant_id = $1 AND a.participation_id = p.id
        AND NOT a.correct AND NOT a.pretest) x
WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3
"""


def _chosen(proposals: tuple[str, ...], indices: Any) -> tuple[str, ...]:
    """The proposals at `indices` (one index or a list), in the proposals' order; an index the
    proposals do not have (a stored answer is never one) is left out."""
    wanted = {indices} if isinstance(indices, int) else set(indices or ())
    return tuple(text for i, text in enumerate(proposals) if i in wanted)


def _missed(challenge: Challenge, locale: str, value: Any, *, skipped: bool) -> MissedChallenge:
    """A missed challenge as the results page shows it: for a choice, the chosen and the right
    proposals; for a short text, what was typed and the accepted answers."""
    proposals = tuple(challenge.proposals.get(locale, ()))
    if challenge.type == "short_text":
        accepted = challenge.solution if isinstance(challenge.solution, Mapping) else {}
        correct = tuple(accepted.get(locale) or next(iter(accepted.values()), ()))
        given: tuple[str, ...] = (value,) if isinstance(value, str) and value else ()
    else:
        correct = _chosen(proposals, challenge.solution)
        given = () if value is None else _chosen(proposals, value)
    return MissedChallenge(
        kind=challenge.type,
        statement=in_language(challenge.statement, locale),
        proposals=proposals,
        explanation=in_language(challenge.explanation, locale),
        skipped=skipped,
        given=given,
        correct=correct,
    )


async def result_details(
    ctx: TenantContext, participation_id: UUID | str, locale: str
) -> ResultDetails:
    """The participant's own participation with, once finished, each competence's level
    (titles in `locale` when the bank has it) and every challenge they missed or skipped
    with its explanation, in the language of the test. One query; `NotFound` for anyone
    else's participation."""
    user_id = participant_id(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(_RESULT_DETAILS, ctx.tenant_id, uuid_or_404(participation_id), user_id)
    if not rows:
        raise NotFound()
    row = rows[0]
    view = participation_view(row)
    competences: list[CompetenceLevel] = []
    missed: list[MissedChallenge] = []
    if view.result is not None:
        bank = frozen_bank(row["bank_version"])
        spec = ProfileSpec.from_json(json.loads(row["profile_snapshot"])["profile"])
        test_locale = row["test_locale"] or locale
        for code in spec.competences:
            level = view.result.competences.get(code, {}).get("level", 0)
            title = bank.competences[code].title if code in bank.competences else {}
            competences.append(
                CompetenceLevel(
                    code, in_language(title, locale, test_locale), level, spec.max_level(code)
                )
            )
        for challenge_id, skipped, stored in zip(
            row["missed_ids"], row["missed_skipped"], row["missed_answers"], strict=True
        ):
            challenge = bank.challenge_by_id[challenge_id]
            value = None if skipped or stored is None else json.loads(stored)
            missed.append(_missed(challenge, test_locale, value, skipped=skipped))
    return ResultDetails(
        participation=view,
        campaign_name=row["campaign_name"],
        campaign_type=row["campaign_type"],
        test_locale=row["test_locale"],
        competences=tuple(competences),
        missed=tuple(missed),
    )


# --- their own participations ----------------------------------------------------------------


@dataclass(frozen=True)
class OwnParticipation:
    """One of a person's participations as "My results" lists it: the campaign, its
    organization, the attempt, where it stands, and the global level and score once finished."""

    id: UUID
    attempt: int
    status: str
    created_at: datetime
    completed_at: datetime | None
    shared_at: datetime | None
    campaign_name: str
    campaign_type: str
    #: the organization's slug: the participation's pages are under /p/{slug}/
    slug: str
    organization_name: str
    #: the organization's zone: its times are shown in it
    timezone: str
    level: int | None
    score: int | None


_OWN_ORGANIZATIONS = "SELECT DISTINCT tenant_id FROM learner WHERE user_id = $1"

_OWN_PARTICIPATIONS = """
SELECT p.id, p.attempt, p.status, p.created_at, p.completed_at, p.shared_at, o.timezone,
       c.name AS campaign_name, c.type AS campaign_type, o.slug, o.name AS organization_name,
       r.level, r.score
FROM learner l
JOIN participation p ON p.tenant_id = $1 AND p.learner_id = l.id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
JOIN organization o ON o.id = $1
LEFT JOIN result r ON r.tenant_id = $1 AND r.participation_id = p.id
WHERE l.tenant_id = $1 AND l.user_id = $2 AND c.status <> 'archived'
"""


async def my_participations(user_id: UUID) -> list[OwnParticipation]:
    """Every participation of the person, in every organization, newest first, except those of
    archived campaigns. The organizations come from the person's learner rows (their
    `own_rows` policy, no tenant set); each organization's participations are then read in its
    own transaction, under the tenant policy alone: one query per organization, each on one
    shard when the database is distributed."""
    async with global_transaction(user_id=user_id):
        organizations = [row["tenant_id"] for row in await fetch(_OWN_ORGANIZATIONS, user_id)]
    found: list[OwnParticipation] = []
    for tenant_id in organizations:
        async with tenant_transaction(SystemScope(tenant_id, user_id)):
            rows = await fetch(_OWN_PARTICIPATIONS, tenant_id, user_id)
        found.extend(OwnParticipation(**row) for row in rows)
    return sorted(found, key=lambda p: (p.created_at, p.id), reverse=True)
