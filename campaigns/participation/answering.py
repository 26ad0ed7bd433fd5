"""The test, one challenge at a time: the current challenge, recording an answer and moving
on, and a timed challenge's clock (an answer after its time is kept, and counts as wrong)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from campaigns import assessment
from campaigns.access import participant_id
from campaigns.content import frozen_bank
from campaigns.exposure import StoredLedger, exposure_ledgers, ledger_for
from campaigns.participation.rules import (
    TIME_UP_MESSAGE,
    extended_seconds_left,
    is_late,
    refuse_if_archived,
    seconds_left,
    time_is_up,
)
from campaigns.problem_reports import withdrawn_challenges
from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, NotFound
from core.ids import uuid_or_404
from engine import Bank, Challenge, Resume
from tenants.context import TenantContext
from tenants.organizations import TenantRead


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


_STATE = """
SELECT p.id, p.status, c.status AS campaign_status, c.type, c.bank_version,
       c.profile_snapshot, s.locale, s.seed, s.seen_before, s.answered,
       s.current_challenge_id, s.current_pretest,
       extract(epoch FROM now() - s.current_shown_at) AS seconds_shown{answers}
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
LEFT JOIN assessment s ON s.tenant_id = $1 AND s.participation_id = p.id
{join}
WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3
{lock}
"""

_CURRENT_SQL = _STATE.format(answers="", join="", lock="")
#: The columns of `_CURRENT_SQL`, in order (a `TenantRead` lists them).
_STATE_COLUMNS = (
    "id",
    "status",
    "campaign_status",
    "type",
    "bank_version",
    "profile_snapshot",
    "locale",
    "seed",
    "seen_before",
    "answered",
    "current_challenge_id",
    "current_pretest",
    "seconds_shown",
)

# The answers so far come with the state, and the participation is locked: two submissions
# of the same participation queue here, and the second sees the first's answer. Every table,
# the lateral subquery's too, is filtered on the tenant parameter ($1) so that Citus routes
# the statement and its row lock to the tenant's shard. (An aggregate without GROUP BY always
# yields its one row: the lateral is an inner join.)
_ANSWER_STATE_SQL = _STATE.format(
    answers=", s.theta, s.se, s.posterior, coalesce(x.ids, '{}') AS answer_ids, "
    "coalesce(x.scores, '{}') AS answer_scores",
    join="""CROSS JOIN LATERAL (
    SELECT array_agg(a.challenge_id ORDER BY a.position) AS ids,
           array_agg(a.correct::int ORDER BY a.position) AS scores
    FROM answer a WHERE a.tenant_id = $1 AND a.participation_id = p.id) x""",
    lock="FOR UPDATE OF p",
)

_ANSWER_STATE_COLUMNS = (*_STATE_COLUMNS, "theta", "se", "posterior", "answer_ids", "answer_scores")

# One statement writes the answer and the new state ($1 tenant, $2 participation).
_RECORD_ANSWER = """
WITH answer_row AS (
    INSERT INTO answer (tenant_id, id, participation_id, position, challenge_id, value, correct,
        skipped, pretest)
    VALUES ($1, $3, $2, $4, $5, $6::jsonb, $7, $8, $9) RETURNING 1)
UPDATE assessment SET answered = $4, current_challenge_id = $10, current_pretest = $11,
    theta = $12, se = $13, stop_reason = $14, posterior = $15, current_shown_at = NULL,
    updated_at = now()
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
    VALUES ($1, $16, $2, $17, $18, $19, $20, $21::jsonb, $22) RETURNING 1)
UPDATE assessment SET answered = $4, current_challenge_id = $10, current_pretest = $11,
    theta = $12, se = $13, stop_reason = $14, posterior = $15, current_shown_at = NULL,
    updated_at = now()
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
        seconds_left=seconds_left(timer, seconds_shown),
    )


def _resume(row: Mapping[str, Any]) -> Resume | None:
    """The engine's state after the answers so far, as the last answer stored it (ADR 0023):
    the next step then estimates only the new answer. None before the first answer (a fresh
    start is the same), for a test begun before the state was stored, and for a state that is
    not of these answers (rows put back by hand): those replay the answers, as before."""
    answers = len(row["answer_ids"])
    if row["posterior"] is None or answers == 0 or row["answered"] != answers:
        return None
    return Resume(
        answers=answers,
        weights=Resume.weights_from_bytes(row["posterior"]),
        theta=row["theta"],
        se=row["se"],
    )


def _check_state(row: Mapping[str, Any]) -> None:
    refuse_if_archived(row["campaign_status"])
    if row["type"] != "assessment" or row["seed"] is None:
        raise Conflict("This campaign has no test.")


async def current_challenge(
    ctx: TenantContext, participation_id: UUID | str
) -> ChallengeView | None:
    """The challenge the participant has to answer now (None once the test is over), in a
    tenant transaction of its own (`read_current_challenge` in the caller's)."""
    async with tenant_transaction(ctx):
        return await read_current_challenge(ctx, participation_id)


def current_challenge_read(participation_id: UUID, user_id: UUID) -> TenantRead:
    """The read `read_current_challenge` starts with, for the signed-in person `user_id`: for
    `tenants.organizations.dangerously_enter_tenant_by_slug` to make with the person and the
    organization (ADR 0023, addendum 3); its rows are then `read_current_challenge`'s `state`."""
    return TenantRead(_CURRENT_SQL, _STATE_COLUMNS, (participation_id, user_id))


def answer_state_read(participation_id: UUID, user_id: UUID) -> TenantRead:
    """The read `record_answer` starts with (the state and the answers so far, the
    participation locked), as `current_challenge_read`; its rows are `record_answer`'s
    `state`."""
    return TenantRead(_ANSWER_STATE_SQL, _ANSWER_STATE_COLUMNS, (participation_id, user_id))


async def read_current_challenge(
    ctx: TenantContext,
    participation_id: UUID | str,
    state: list[dict[str, Any]] | None = None,
) -> ChallengeView | None:
    """The challenge the participant has to answer now (None once the test is over), read in
    the caller's tenant transaction.

    It is stored, not recomputed: resuming shows exactly the challenge shown before. One
    query, or none when the caller made `current_challenge_read` of this participation and
    of `ctx`'s person in this transaction and passes its rows as `state`; a timed challenge
    shown for the first time also records when (its clock starts).
    """
    user_id = participant_id(ctx)
    rows = (
        await fetch(_CURRENT_SQL, ctx.tenant_id, uuid_or_404(participation_id), user_id)
        if state is None
        else state
    )
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


async def extend_time(
    ctx: TenantContext, participation_id: UUID | str, challenge_id: str
) -> ChallengeView:
    """Give more time on the current timed challenge (WCAG 2.2.1): what was left plus its
    whole time again (`extended_seconds_left`), recorded on the database's clock by moving
    the moment the challenge counts as shown, so that an answer within the new time is not
    late. Read and written in the caller's tenant transaction; a challenge that is not the
    current one, or not timed, or whose time is up already (`time_is_up`), is a
    `Conflict`."""
    user_id = participant_id(ctx)
    lock = _STATE.format(answers="", join="", lock="FOR UPDATE OF p")
    rows = await fetch(lock, ctx.tenant_id, uuid_or_404(participation_id), user_id)
    if not rows:
        raise NotFound()
    row = rows[0]
    _check_state(row)
    if row["status"] != "started" or row["current_challenge_id"] is None:
        raise Conflict("This test is finished.")
    if challenge_id != row["current_challenge_id"]:
        raise Conflict("This is not the current question.")
    bank = frozen_bank(row["bank_version"])
    timer = bank.challenge_by_id[challenge_id].timer_seconds
    if timer is None:
        raise Conflict("This question is not timed.")
    shown = 0.0 if row["seconds_shown"] is None else float(row["seconds_shown"])
    if time_is_up(timer, shown):
        raise Conflict(TIME_UP_MESSAGE)
    left = extended_seconds_left(timer, shown)
    # shown `timer - left` seconds ago (negative: in the future), on the transaction's clock
    await execute(
        """UPDATE assessment SET current_shown_at = now() - make_interval(secs => $4)
           WHERE tenant_id = $1 AND participation_id = $2 AND current_challenge_id = $3""",
        ctx.tenant_id,
        row["id"],
        challenge_id,
        float(timer) - left,
    )
    the_plan = assessment.plan(bank, row["profile_snapshot"])
    return _view(
        bank,
        the_plan,
        row["id"],
        challenge_id,
        row["answered"] + 1,
        row["locale"],
        float(timer) - left,
    )


@dataclass(frozen=True)
class AnswerInputs:
    """What an answer reads before its transaction, from per-process caches (`prepare_answer`):
    the challenges selection skips and the exposure ledgers."""

    withdrawn: frozenset[str]
    ledgers: dict[str, StoredLedger]


async def prepare_answer() -> AnswerInputs:
    """The caches an answer needs, read outside any transaction (each opens its own when its
    copy is stale, a few times a minute at most): call it before `record_answer`'s."""
    return AnswerInputs(withdrawn=await withdrawn_challenges(), ledgers=await exposure_ledgers())


async def answer(
    ctx: TenantContext,
    participation_id: UUID | str,
    challenge_id: str,
    value: Any = None,
    *,
    skipped: bool = False,
) -> AnswerOutcome:
    """`record_answer` in a tenant transaction of its own."""
    inputs = await prepare_answer()  # cached: no query on most answers
    async with tenant_transaction(ctx):
        return await record_answer(
            ctx, participation_id, challenge_id, value, skipped=skipped, inputs=inputs
        )


async def record_answer(
    ctx: TenantContext,
    participation_id: UUID | str,
    challenge_id: str,
    value: Any = None,
    *,
    skipped: bool = False,
    inputs: AnswerInputs,
    state: list[dict[str, Any]] | None = None,
) -> AnswerOutcome:
    """Record the participant's answer to the current challenge and move on.

    `value` is the chosen index (single choice), the chosen indices (multiple choice) or the
    text (short text); `skipped` records "I don't know" (a wrong answer). An answer to any
    other challenge than the current one — a second submission included — is a `Conflict`
    and records nothing; the database's unique keys back this up. When the engine stops, the
    participation completes and its result is stored in the same statement.

    Read and written in the caller's tenant transaction; `inputs` from `prepare_answer`,
    read before it. Statements per answer, whatever the length of the test: one SELECT
    (state and answers, row locked), one write (answer and state; on the last answer also the
    completion and the result); `answer` adds BEGIN, the two SET LOCAL of the tenant
    transaction and COMMIT. `state`: the rows of `answer_state_read` of this participation
    and of `ctx`'s person, when the caller made it in this transaction (no SELECT here then).
    """
    user_id = participant_id(ctx)
    rows = (
        await fetch(_ANSWER_STATE_SQL, ctx.tenant_id, uuid_or_404(participation_id), user_id)
        if state is None
        else state
    )
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
    shown = row["seconds_shown"]
    late = is_late(
        challenge.timer_seconds, None if shown is None else float(shown), skipped=skipped
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
        inputs.withdrawn,
        ledger_for(bank, inputs.ledgers),
        _resume(row),
    )
    after = step.resume(position)
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
        None if after is None else after.to_bytes(),
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
