"""Campaign use cases for participants: resolve a code, start (or resume) a participation,
answer one challenge at a time, read the result and share it.

A participant acts in the campaign's tenant with no permission (`participant_context`) and
only ever reaches their own participations: every query joins the learner and checks its
`user_id`, and another tenant's or another person's ids answer `NotFound` like unknown ones.
State model and query budget: docs/adr/0009-campaign-assessment-state.md.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from campaigns import assessment, events
from campaigns.access import participant_id
from campaigns.codes import is_well_formed, normalize_code
from campaigns.content import frozen_bank
from campaigns.exposure import exposure_ledgers, ledger_for
from campaigns.problem_reports import withdrawn_challenges
from campaigns.profile_catalogue import ProfileSpec
from core.database import (
    dangerously_switch_tenant,
    execute,
    fetch,
    global_transaction,
    tenant_transaction,
)
from core.errors import Conflict, Forbidden, Gone, Invalid, NotFound, Unauthenticated
from core.ids import uuid_or_404
from core.validation import clean_email, clean_text
from engine import Bank, Challenge
from tenants import audit
from tenants.context import Actor, TenantContext, TenantSummary
from tenants.organizations import summary

UNKNOWN_CODE_MESSAGE = "No campaign has this code. Check it and try again."
CLOSED_MESSAGE = "This campaign is closed."
#: Seconds past a timed challenge's limit still accepted (the page's round trip).
TIMER_GRACE_SECONDS = 5


# --- views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignLanding:
    """What a participant's link shows before they start, and the tenant it belongs to."""

    tenant: TenantSummary
    campaign_id: UUID
    code: str
    name: str
    type: str
    landing_text: str
    locales: tuple[str, ...]
    external_id_label: str | None
    external_id_format: str
    sso_required: bool
    closes_at: datetime | None


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


@dataclass(frozen=True)
class ChallengeView:
    """The challenge to show, in the participant's language, without its solution."""

    participation_id: UUID
    position: int
    max_questions: int
    challenge_id: str
    type: str
    locale: str
    statement: str
    proposals: tuple[str, ...]
    timer_seconds: int | None
    #: for a timed challenge, the seconds left since it was first shown (the full time until
    #: a page shows it; resuming does not restart the clock)
    seconds_left: int | None = None


@dataclass(frozen=True)
class AnswerOutcome:
    """What an answer led to: whether it was right, and the next challenge or the end."""

    position: int
    correct: bool
    completed: bool
    next_challenge: ChallengeView | None
    #: a timed challenge answered after its time (the answer is kept, and counts as wrong)
    late: bool = False


# --- participants: the link --------------------------------------------------------------


def _refuse_unless_accepting(campaign: Mapping[str, Any], now: datetime) -> None:
    """Errors for a campaign that takes no new participation (drafts are unknown)."""
    if campaign["status"] == "draft":
        raise NotFound(UNKNOWN_CODE_MESSAGE)
    if campaign["status"] != "active":
        raise Gone(CLOSED_MESSAGE)
    if campaign["opens_at"] is not None and campaign["opens_at"] > now:
        raise Conflict(
            "This campaign opens on {date}.", date=campaign["opens_at"].date().isoformat()
        )
    if campaign["closes_at"] is not None and campaign["closes_at"] <= now:
        raise Gone("This campaign has ended.")


async def resolve_code(code: str) -> CampaignLanding:
    """The campaign behind a participant's code and its organization.

    Unknown, mistyped and draft campaigns are `NotFound` alike; closed, archived, ended
    campaigns and suspended organizations are `Gone`; one not open yet is a `Conflict` with
    its opening date.
    """
    normalized = normalize_code(code)
    if not is_well_formed(normalized):
        raise NotFound(UNKNOWN_CODE_MESSAGE)
    async with global_transaction():
        orgs = await fetch(
            """SELECT cc.campaign_id, o.id, o.slug, o.name, o.status, o.default_locale,
                      o.timezone, o.brand_colour, o.logo_data_url IS NOT NULL AS has_logo
               FROM campaign_code cc JOIN organization o ON o.id = cc.organization_id
               WHERE cc.code = $1""",
            normalized,
        )
        if not orgs:
            raise NotFound(UNKNOWN_CODE_MESSAGE)
        org = orgs[0]
        if org["status"] in ("suspended", "closed"):
            raise Gone(CLOSED_MESSAGE)
        await dangerously_switch_tenant(org["id"])
        rows = await fetch(
            "SELECT * FROM campaign WHERE tenant_id = $1 AND id = $2",
            org["id"],
            org["campaign_id"],
        )
    if not rows:
        raise NotFound(UNKNOWN_CODE_MESSAGE)
    row = rows[0]
    _refuse_unless_accepting(row, datetime.now(UTC))
    return CampaignLanding(
        tenant=summary(org),
        campaign_id=row["id"],
        code=row["code"],
        name=row["name"],
        type=row["type"],
        landing_text=row["landing_text"],
        locales=tuple(row["locales"]),
        external_id_label=row["external_id_label"],
        external_id_format=row["external_id_format"],
        sso_required=row["sso_required"],
        closes_at=row["closes_at"],
    )


def participant_context(tenant: TenantSummary, actor: Actor) -> TenantContext:
    """The context a signed-in participant acts in: the campaign's tenant, no permissions."""
    if actor.kind != "user" or actor.user_id is None:
        raise Unauthenticated("Sign in to continue.")
    return TenantContext(tenant=tenant, actor=actor)


# --- participants: starting --------------------------------------------------------------


def _clean_external_id(value: str | None, fmt: str) -> str:
    if fmt == "email":
        return clean_email(value, "external_id")
    text = clean_text(value, "external_id", max_length=200)
    if fmt == "digits" and not re.fullmatch(r"[0-9]+", text):
        raise Invalid("Enter digits only.", field="external_id")
    return text


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


def _participation(row: Mapping[str, Any], *, resumed: bool = False) -> ParticipationView:
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


# The campaign row is key-share locked: a start waits for an edit of the campaign in progress
# (which locks it FOR UPDATE) and then reads its new profile, never a half-changed one.
_LATEST_PARTICIPATION = """
SELECT c.id AS campaign_id, c.status AS campaign_status, c.type, c.opens_at, c.closes_at,
       c.locales, c.profile_snapshot, c.bank_version, c.external_id_label,
       c.external_id_format, c.retake_allowed, c.retake_delay_days, c.sso_required,
       l.id AS learner_id, p.id, p.attempt, p.status, p.external_id, p.created_at,
       p.completed_at, p.shared_at, r.theta, r.se, r.level, r.score, r.competences,
       r.mastered_skills, (SELECT u.locale FROM user_account u WHERE u.id = $3) AS user_locale
FROM campaign c
LEFT JOIN learner l ON l.tenant_id = c.tenant_id AND l.user_id = $3
LEFT JOIN LATERAL (
    SELECT * FROM participation p WHERE p.tenant_id = c.tenant_id AND p.campaign_id = c.id
        AND p.learner_id = l.id ORDER BY p.attempt DESC LIMIT 1) p ON true
LEFT JOIN result r ON r.tenant_id = c.tenant_id AND r.participation_id = p.id
WHERE c.tenant_id = $1 AND c.id = $2 AND c.status <> 'draft'
FOR KEY SHARE OF c
"""

#: The participant's learner row: theirs if they have one; else a learner the organization
#: imported with their verified email (claimed, so the import and the test are one person);
#: else a new one. One statement.
_UPSERT_LEARNER = """
WITH person AS (SELECT id, name, email, email_verified FROM user_account WHERE id = $3),
claimed AS (
    UPDATE learner l SET user_id = person.id, name = person.name, email = person.email,
        external_id = coalesce($4, l.external_id), updated_at = now()
    FROM person
    WHERE l.tenant_id = $1 AND l.id = (
        SELECT i.id FROM learner i
        WHERE i.tenant_id = $1 AND i.user_id IS NULL AND person.email_verified
            AND lower(i.email) = lower(person.email)
            AND NOT EXISTS (
                SELECT 1 FROM learner o WHERE o.tenant_id = $1 AND o.user_id = person.id)
        ORDER BY i.created_at, i.id LIMIT 1)
    RETURNING l.id),
upserted AS (
    INSERT INTO learner (tenant_id, id, user_id, name, email, external_id)
    SELECT $1, $2, person.id, person.name, person.email, $4 FROM person
    WHERE NOT EXISTS (SELECT 1 FROM claimed)
    ON CONFLICT (tenant_id, user_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
        external_id = coalesce(EXCLUDED.external_id, learner.external_id), updated_at = now()
    RETURNING id)
SELECT id FROM claimed UNION ALL SELECT id FROM upserted
"""

_INSERT_PARTICIPATION = """
INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt, status,
    external_id, completed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $6 = 'started' THEN NULL ELSE now() END)
ON CONFLICT (tenant_id, campaign_id, learner_id, attempt) DO NOTHING
RETURNING *
"""

_INSERT_RESULT = """
INSERT INTO result (tenant_id, id, participation_id, theta, se, level, score, competences,
    mastered_skills)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)
"""


async def start_or_resume(
    ctx: TenantContext,
    campaign_id: UUID | str,
    *,
    external_id: str | None = None,
    locale: str | None = None,
    retake: bool = False,
    via_sso: bool = False,
) -> ParticipationView:
    """The signed-in participant's participation in a campaign, started if need be.

    A started participation is resumed (even once the campaign closed, unless archived); a
    finished one is returned as is, unless `retake` asks for a new attempt, which the
    campaign's retake policy (allowed, delay in days since the last completion) decides. A
    new participation needs an open campaign, the external id when the campaign asks for one
    (a retake reuses the previous one), and a sign-in through the organization's SSO
    (`via_sso`) when required. The test is in `locale` when the campaign offers it, else in
    the participant's account language if offered, else in the campaign's first language.
    """
    user_id = participant_id(ctx)
    withdrawn = await withdrawn_challenges()  # cached: no query on most calls
    ledgers = await exposure_ledgers()  # cached likewise
    async with tenant_transaction(ctx):
        rows = await fetch(_LATEST_PARTICIPATION, ctx.tenant_id, uuid_or_404(campaign_id), user_id)
        if not rows:
            raise NotFound()
        row = rows[0]
        if row["campaign_status"] == "archived":
            raise Gone(CLOSED_MESSAGE)
        if row["id"] is not None and (row["status"] == "started" or not retake):
            return _participation(row, resumed=row["status"] == "started")
        now = datetime.now(UTC)
        _refuse_unless_accepting(
            {
                "status": row["campaign_status"],
                "opens_at": row["opens_at"],
                "closes_at": row["closes_at"],
            },
            now,
        )
        if row["sso_required"] and not via_sso:
            raise Forbidden("This campaign asks you to sign in with your organization's account.")
        if row["id"] is not None:
            if not row["retake_allowed"]:
                raise Conflict("This campaign does not allow another attempt.")
            again = row["completed_at"] + timedelta(days=row["retake_delay_days"])
            if again > now:
                raise Conflict("You can try again from {date}.", date=again.date().isoformat())
        ext = None
        if row["external_id_label"]:
            ext = (
                row["external_id"]
                if external_id is None and row["external_id"]
                else _clean_external_id(external_id, row["external_id_format"])
            )
        learners = await fetch(_UPSERT_LEARNER, ctx.tenant_id, uuid4(), user_id, ext)
        if not learners:
            raise Unauthenticated("Sign in to continue.")
        attempt = (row["attempt"] or 0) + 1
        if row["type"] == "profiles_collection":
            return await _collect_profile(ctx, row, learners[0]["id"], attempt, ext)
        bank = frozen_bank(row["bank_version"])
        the_plan = assessment.plan(bank, row["profile_snapshot"])
        created = await fetch(
            _INSERT_PARTICIPATION,
            ctx.tenant_id,
            uuid4(),
            row["campaign_id"],
            learners[0]["id"],
            attempt,
            "started",
            ext,
        )
        if not created:
            # A concurrent request (a double click) started this attempt first: resume it.
            return await _attempt(ctx, row["campaign_id"], learners[0]["id"], attempt)
        participation = created[0]
        seen = await fetch(
            """SELECT a.challenge_id FROM answer a JOIN participation p
                   ON p.tenant_id = a.tenant_id AND p.id = a.participation_id
               WHERE a.tenant_id = $1 AND p.campaign_id = $2 AND p.learner_id = $3
                 AND p.attempt < $4""",
            ctx.tenant_id,
            row["campaign_id"],
            learners[0]["id"],
            attempt,
        )
        seen_before = [s["challenge_id"] for s in seen]
        offered = [x for x in (locale, row["user_locale"]) if x and x in row["locales"]]
        chosen_locale = offered[0] if offered else str(row["locales"][0])
        seed = secrets.randbits(62)
        first = assessment.step(
            bank,
            the_plan,
            [],
            seed,
            chosen_locale,
            seen_before,
            withdrawn,
            ledger_for(bank, ledgers),
        )
        await execute(
            """INSERT INTO assessment (tenant_id, id, participation_id, locale, seed, seen_before,
                   current_challenge_id, current_pretest, theta, se, stop_reason)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
            ctx.tenant_id,
            uuid4(),
            participation["id"],
            chosen_locale,
            seed,
            seen_before,
            first.next_item,
            first.pretest,
            first.theta,
            first.se,
            first.stop_reason.value if first.stop_reason else None,
        )
        if first.next_item is None:
            # Nothing left to ask (every challenge seen in earlier attempts): score as is.
            await _finish_without_answers(ctx, participation["id"], bank, the_plan)
            return await _reload(ctx, participation["id"], user_id)
    return _participation(participation)


async def _finish_without_answers(
    ctx: TenantContext, participation_id: UUID, bank: Bank, the_plan: assessment.Plan
) -> None:
    data = assessment.result(bank, the_plan, [])
    await execute(
        """UPDATE participation SET status = 'completed', completed_at = now()
           WHERE tenant_id = $1 AND id = $2""",
        ctx.tenant_id,
        participation_id,
    )
    await execute(
        _INSERT_RESULT,
        ctx.tenant_id,
        uuid4(),
        participation_id,
        data.theta,
        data.se,
        data.level,
        data.score,
        json.dumps(data.competences),
        list(data.mastered_skills),
    )


async def _collect_profile(
    ctx: TenantContext, row: Mapping[str, Any], learner_id: UUID, attempt: int, ext: str | None
) -> ParticipationView:
    """A profiles-collection participation: the learner's latest level in each competence of
    the profile, from their finished assessments in this organization. Completed at once."""
    spec = ProfileSpec.from_json(json.loads(row["profile_snapshot"])["profile"])
    created = await fetch(
        _INSERT_PARTICIPATION,
        ctx.tenant_id,
        uuid4(),
        row["campaign_id"],
        learner_id,
        attempt,
        "completed",
        ext,
    )
    if not created:
        return await _attempt(ctx, row["campaign_id"], learner_id, attempt)
    participation = created[0]
    earlier = await fetch(
        """SELECT r.competences FROM result r JOIN participation p
               ON p.tenant_id = r.tenant_id AND p.id = r.participation_id
           JOIN campaign c ON c.tenant_id = p.tenant_id AND c.id = p.campaign_id
           WHERE r.tenant_id = $1 AND p.learner_id = $2 AND c.type = 'assessment'
             AND p.status <> 'started'
           ORDER BY p.completed_at DESC""",
        ctx.tenant_id,
        learner_id,
    )
    competences: dict[str, dict[str, Any]] = {}
    for result in earlier:
        for code, comp in json.loads(result["competences"]).items():
            if code in spec.competences and code not in competences and comp["answers"] > 0:
                competences[code] = comp
    levels = [c["level"] for c in competences.values()]
    await execute(
        _INSERT_RESULT,
        ctx.tenant_id,
        uuid4(),
        participation["id"],
        None,
        None,
        sum(levels) // len(levels) if levels else 0,
        sum(c["points"] for c in competences.values()),
        json.dumps(competences),
        [],
    )
    return await _reload(ctx, participation["id"], ctx.actor.user_id)


_OWN_PARTICIPATION = """
SELECT p.*, r.theta, r.se, r.level, r.score, r.competences, r.mastered_skills
FROM participation p
JOIN learner l ON l.tenant_id = p.tenant_id AND l.id = p.learner_id
LEFT JOIN result r ON r.tenant_id = p.tenant_id AND r.participation_id = p.id
WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3
"""


async def _attempt(
    ctx: TenantContext, campaign_id: UUID, learner_id: UUID, attempt: int
) -> ParticipationView:
    rows = await fetch(
        """SELECT p.*, r.theta, r.se, r.level, r.score, r.competences, r.mastered_skills
           FROM participation p
           LEFT JOIN result r ON r.tenant_id = p.tenant_id AND r.participation_id = p.id
           WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND p.learner_id = $3
             AND p.attempt = $4""",
        ctx.tenant_id,
        campaign_id,
        learner_id,
        attempt,
    )
    return _participation(rows[0], resumed=rows[0]["status"] == "started")


async def _reload(
    ctx: TenantContext, participation_id: UUID | str, user_id: UUID | None
) -> ParticipationView:
    rows = await fetch(_OWN_PARTICIPATION, ctx.tenant_id, uuid_or_404(participation_id), user_id)
    if not rows:
        raise NotFound()
    return _participation(rows[0])


async def get_participation(ctx: TenantContext, participation_id: UUID | str) -> ParticipationView:
    """The participant's own participation, with its result once finished; `NotFound` for
    anyone else's."""
    user_id = participant_id(ctx)
    async with tenant_transaction(ctx):
        return await _reload(ctx, participation_id, user_id)


# --- participants: the test --------------------------------------------------------------

_STATE = """
SELECT p.id, p.status, c.status AS campaign_status, c.type, c.bank_version,
       c.profile_snapshot, s.locale, s.seed, s.seen_before, s.answered,
       s.current_challenge_id, s.current_pretest,
       extract(epoch FROM now() - s.current_shown_at) AS seconds_shown{answers}
FROM participation p
JOIN learner l ON l.tenant_id = p.tenant_id AND l.id = p.learner_id
JOIN campaign c ON c.tenant_id = p.tenant_id AND c.id = p.campaign_id
LEFT JOIN assessment s ON s.tenant_id = p.tenant_id AND s.participation_id = p.id
{join}
WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3
{lock}
"""

_CURRENT_SQL = _STATE.format(answers="", join="", lock="")

# The answers so far come with the state, and the participation is locked: two submissions
# of the same participation queue here, and the second sees the first's answer.
_ANSWER_STATE_SQL = _STATE.format(
    answers=", coalesce(x.ids, '{}') AS answer_ids, coalesce(x.scores, '{}') AS answer_scores",
    join="""LEFT JOIN LATERAL (
    SELECT array_agg(a.challenge_id ORDER BY a.position) AS ids,
           array_agg(a.correct::int ORDER BY a.position) AS scores
    FROM answer a WHERE a.tenant_id = p.tenant_id AND a.participation_id = p.id) x ON true""",
    lock="FOR UPDATE OF p",
)

# One statement writes the answer and the new state ($1 tenant, $2 participation).
_RECORD_ANSWER = """
WITH answer_row AS (
    INSERT INTO answer (tenant_id, id, participation_id, position, challenge_id, value, correct,
        skipped, pretest)
    VALUES ($1, $3, $2, $4, $5, $6::jsonb, $7, $8, $9) RETURNING 1)
UPDATE assessment SET answered = $4, current_challenge_id = $10, current_pretest = $11,
    theta = $12, se = $13, stop_reason = $14, current_shown_at = NULL, updated_at = now()
WHERE tenant_id = $1 AND participation_id = $2
"""

# The same, when the test ends: the participation completes and its result is stored.
_RECORD_LAST_ANSWER = """
WITH answer_row AS (
    INSERT INTO answer (tenant_id, id, participation_id, position, challenge_id, value, correct,
        skipped, pretest)
    VALUES ($1, $3, $2, $4, $5, $6::jsonb, $7, $8, $9) RETURNING 1),
completion AS (
    UPDATE participation SET status = 'completed', completed_at = now()
    WHERE tenant_id = $1 AND id = $2 RETURNING 1),
result_row AS (
    INSERT INTO result (tenant_id, id, participation_id, theta, se, level, score, competences,
        mastered_skills)
    VALUES ($1, $15, $2, $16, $17, $18, $19, $20::jsonb, $21) RETURNING 1)
UPDATE assessment SET answered = $4, current_challenge_id = $10, current_pretest = $11,
    theta = $12, se = $13, stop_reason = $14, current_shown_at = NULL, updated_at = now()
WHERE tenant_id = $1 AND participation_id = $2
"""


def _view(
    bank: Bank,
    the_plan: assessment.Plan,
    participation_id: UUID,
    challenge_id: str,
    position: int,
    locale: str,
    seconds_shown: float | None = None,
) -> ChallengeView:
    challenge: Challenge = bank.challenge_by_id[challenge_id]
    timer = challenge.timer_seconds
    return ChallengeView(
        participation_id=participation_id,
        position=position,
        max_questions=the_plan.config.stopping.max_length,
        challenge_id=challenge.id,
        type=challenge.type,
        locale=locale,
        statement=challenge.statement[locale],
        proposals=tuple(challenge.proposals.get(locale, ())),
        timer_seconds=timer,
        seconds_left=(None if timer is None else max(0, timer - math.floor(seconds_shown or 0.0))),
    )


def _check_state(row: Mapping[str, Any]) -> None:
    if row["campaign_status"] == "archived":
        raise Gone(CLOSED_MESSAGE)
    if row["type"] != "assessment" or row["seed"] is None:
        raise Conflict("This campaign has no test.")


async def current_challenge(
    ctx: TenantContext, participation_id: UUID | str
) -> ChallengeView | None:
    """The challenge the participant has to answer now (None once the test is over).

    It is stored, not recomputed: resuming shows exactly the challenge shown before. One
    query; a timed challenge shown for the first time also records when (its clock starts).
    """
    user_id = participant_id(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(_CURRENT_SQL, ctx.tenant_id, uuid_or_404(participation_id), user_id)
        if not rows:
            raise NotFound()
        row = rows[0]
        _check_state(row)
        if row["current_challenge_id"] is None or row["status"] != "started":
            return None
        bank = frozen_bank(row["bank_version"])
        timed = bank.challenge_by_id[row["current_challenge_id"]].timer_seconds is not None
        if timed and row["seconds_shown"] is None:
            # a timed question's clock starts now, on the first page that shows it
            await execute(
                """UPDATE assessment SET current_shown_at = now()
                   WHERE tenant_id = $1 AND participation_id = $2 AND current_challenge_id = $3
                     AND current_shown_at IS NULL""",
                ctx.tenant_id,
                row["id"],
                row["current_challenge_id"],
            )
    the_plan = assessment.plan(bank, row["profile_snapshot"])
    return _view(
        bank,
        the_plan,
        row["id"],
        row["current_challenge_id"],
        row["answered"] + 1,
        row["locale"],
        None if row["seconds_shown"] is None else float(row["seconds_shown"]),
    )


async def answer(
    ctx: TenantContext,
    participation_id: UUID | str,
    challenge_id: str,
    value: Any = None,
    *,
    skipped: bool = False,
) -> AnswerOutcome:
    """Record the participant's answer to the current challenge and move on.

    `value` is the chosen index (single choice), the chosen indices (multiple choice) or the
    text (short text); `skipped` records "I don't know" (a wrong answer). An answer to any
    other challenge than the current one — a second submission included — is a `Conflict`
    and records nothing; the database's unique keys back this up. When the engine stops, the
    participation completes and its result is stored in the same statement.

    Statements per answer, whatever the length of the test: BEGIN, the two SET LOCAL of the
    tenant transaction, one SELECT (state and answers, row locked), one write (answer and
    state; on the last answer also the completion and the result), COMMIT.
    """
    user_id = participant_id(ctx)
    withdrawn = await withdrawn_challenges()  # cached: no query on most answers
    ledgers = await exposure_ledgers()  # cached likewise
    async with tenant_transaction(ctx):
        rows = await fetch(_ANSWER_STATE_SQL, ctx.tenant_id, uuid_or_404(participation_id), user_id)
        if not rows:
            raise NotFound()
        row = rows[0]
        _check_state(row)
        if row["status"] != "started" or row["current_challenge_id"] is None:
            raise Conflict("This test is finished.")
        if challenge_id != row["current_challenge_id"]:
            if challenge_id in row["answer_ids"]:
                raise Conflict("This question has already been answered.")
            raise Conflict("This is not the current question.")
        bank = frozen_bank(row["bank_version"])
        the_plan = assessment.plan(bank, row["profile_snapshot"])
        locale = row["locale"]
        challenge = bank.challenge_by_id[challenge_id]
        if skipped:
            stored, correct = None, False
        else:
            stored, correct = assessment.check_answer(challenge, locale, value)
        # the database's clock, not the page's: a timed challenge answered after its time (and
        # a grace for the network) since a page first showed it keeps its answer, which counts
        # as wrong
        timer, shown = challenge.timer_seconds, row["seconds_shown"]
        late = (
            not skipped
            and timer is not None
            and shown is not None
            and float(shown) > timer + TIMER_GRACE_SECONDS
        )
        correct = correct and not late
        responses = [
            *zip(row["answer_ids"], row["answer_scores"], strict=True),
            (challenge_id, int(correct)),
        ]
        position = len(responses)
        step = assessment.step(
            bank,
            the_plan,
            responses,
            row["seed"],
            locale,
            row["seen_before"],
            withdrawn,
            ledger_for(bank, ledgers),
        )
        args: list[Any] = [
            ctx.tenant_id,
            row["id"],
            uuid4(),
            position,
            challenge_id,
            None if stored is None else json.dumps(stored),
            correct,
            skipped,
            row["current_pretest"],
            step.next_item,
            step.pretest,
            step.theta,
            step.se,
            step.stop_reason.value if step.stop_reason else None,
        ]
        sql = _RECORD_ANSWER
        if step.next_item is None:
            data = assessment.result(bank, the_plan, responses)
            sql = _RECORD_LAST_ANSWER
            args += [
                uuid4(),
                data.theta,
                data.se,
                data.level,
                data.score,
                json.dumps(data.competences),
                list(data.mastered_skills),
            ]
        try:
            await execute(sql, *args)
        except asyncpg.UniqueViolationError:
            raise Conflict("This question has already been answered.") from None
    next_view = (
        None
        if step.next_item is None
        else _view(bank, the_plan, row["id"], step.next_item, position + 1, locale)
    )
    return AnswerOutcome(
        position=position,
        correct=correct,
        completed=step.next_item is None,
        next_challenge=next_view,
        late=late,
    )


# --- participants: sharing ---------------------------------------------------------------


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
               JOIN learner l ON l.tenant_id = p.tenant_id AND l.id = p.learner_id
               JOIN campaign c ON c.tenant_id = p.tenant_id AND c.id = p.campaign_id
               WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3 FOR UPDATE OF p""",
            ctx.tenant_id,
            uuid_or_404(participation_id),
            user_id,
        )
        if not rows:
            raise NotFound()
        row = rows[0]
        if row["campaign_status"] == "archived":
            raise Gone(CLOSED_MESSAGE)
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
        return await _reload(ctx, row["id"], user_id)


# --- participants: reading a result ------------------------------------------------------


@dataclass(frozen=True)
class CompetenceLevel:
    """A competence of a result: its title in the reader's language, level and cap."""

    code: str
    title: str
    level: int
    max_level: int


@dataclass(frozen=True)
class MissedChallenge:
    """A challenge answered wrongly (or skipped), with what the right answer was about."""

    statement: str
    proposals: tuple[str, ...]
    explanation: str
    skipped: bool


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
       coalesce(x.skipped, '{}') AS missed_skipped
FROM participation p
JOIN learner l ON l.tenant_id = p.tenant_id AND l.id = p.learner_id
JOIN campaign c ON c.tenant_id = p.tenant_id AND c.id = p.campaign_id
LEFT JOIN assessment s ON s.tenant_id = p.tenant_id AND s.participation_id = p.id
LEFT JOIN result r ON r.tenant_id = p.tenant_id AND r.participation_id = p.id
LEFT JOIN LATERAL (
    SELECT array_agg(a.challenge_id ORDER BY a.position) AS ids,
           array_agg(a.skipped ORDER BY a.position) AS skipped
    FROM answer a WHERE a.tenant_id = p.tenant_id AND a.participation_id = p.id
        AND NOT a.correct AND NOT a.pretest) x ON true
WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3
"""


def _text(texts: Mapping[str, str], *locales: str | None) -> str:
    for locale in locales:
        if locale and texts.get(locale):
            return texts[locale]
    return next(iter(texts.values()), "")


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
    view = _participation(row)
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
                    code, _text(title, locale, test_locale), level, spec.max_level(code)
                )
            )
        for challenge_id, skipped in zip(row["missed_ids"], row["missed_skipped"], strict=True):
            challenge = bank.challenge_by_id[challenge_id]
            missed.append(
                MissedChallenge(
                    statement=_text(challenge.statement, test_locale),
                    proposals=tuple(challenge.proposals.get(test_locale, ())),
                    explanation=_text(challenge.explanation, test_locale),
                    skipped=skipped,
                )
            )
    return ResultDetails(
        participation=view,
        campaign_name=row["campaign_name"],
        campaign_type=row["campaign_type"],
        test_locale=row["test_locale"],
        competences=tuple(competences),
        missed=tuple(missed),
    )


# --- participants: their own participations ----------------------------------------------


async def my_participations(user_id: UUID) -> list[dict[str, Any]]:
    """Every participation of the person, in every organization, newest first: campaign,
    organization (slug, name), attempt, status, dates and global level and score once
    finished. Read through the `own_rows` policies (no tenant is set): one query."""
    async with global_transaction(user_id=user_id):
        return await fetch(
            """SELECT p.id, p.attempt, p.status, p.created_at, p.completed_at, p.shared_at,
                      c.name AS campaign_name, c.type AS campaign_type, o.slug, o.name AS
                      organization_name, r.level, r.score
               FROM learner l
               JOIN participation p ON p.tenant_id = l.tenant_id AND p.learner_id = l.id
               JOIN campaign c ON c.tenant_id = p.tenant_id AND c.id = p.campaign_id
               JOIN organization o ON o.id = p.tenant_id
               LEFT JOIN result r ON r.tenant_id = p.tenant_id AND r.participation_id = p.id
               WHERE l.user_id = $1 AND c.status <> 'archived'
               ORDER BY p.created_at DESC, p.id DESC""",
            user_id,
        )
