"""Starting a participation: a new one, the started one resumed, a retake, and a profiles
collection (completed at once from the learner's earlier results)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from billing import seats
from campaigns import assessment
from campaigns.access import participant_id
from campaigns.content import frozen_bank
from campaigns.directory_groups import kept_groups_sql
from campaigns.exposure import exposure_ledgers, ledger_for
from campaigns.participation.rules import (
    choose_locale,
    refuse_if_archived,
    refuse_retake_unless_due,
    refuse_unless_accepting,
    returns_latest,
)
from campaigns.participation.views import (
    ParticipationView,
    own_participation,
    participation_view,
)
from campaigns.problem_reports import withdrawn_challenges
from campaigns.profile_catalogue import ProfileSpec
from core.database import execute, fetch, tenant_transaction
from core.errors import Forbidden, Invalid, NotFound, Unauthenticated
from core.ids import uuid_or_404
from core.validation import clean_email, clean_text
from engine import Bank
from sso.scim import directory_learner_groups_sql, targeted_learner_groups_sql
from tenants.context import TenantContext


def _clean_external_id(value: str | None, fmt: str) -> str:
    if fmt == "email":
        return clean_email(value, "external_id")
    text = clean_text(value, "external_id", max_length=200)
    if fmt == "digits" and not re.fullmatch(r"[0-9]+", text):
        raise Invalid("Enter digits only.", field="external_id")
    return text


# The campaign row is key-share locked: a start waits for an edit of the campaign in progress
# (which locks it FOR UPDATE) and then reads its new profile, never a half-changed one.
# Every table is filtered on the tenant parameter itself, the lateral subquery too, so that
# Citus routes the statement (and its row lock) to the tenant's shard; the lateral is joined
# on a real condition rather than ON true, which Citus refuses beside the RLS conditions.
# It also reads the tenant's subscription status (billing's subquery): whether the tenant is
# billed at all, and still takes new participants, at no statement of its own.
_LATEST_PARTICIPATION = f"""
SELECT c.id AS campaign_id, c.status AS campaign_status, c.type, c.opens_at, c.closes_at,
       c.locales, c.profile_snapshot, c.bank_version, c.external_id_label,
       c.external_id_format, c.retake_allowed, c.retake_delay_days, c.sso_required,
       c.consumes_seat, ({seats.SUBSCRIPTION_STATUS_SQL}) AS subscription_status,
       l.id AS learner_id, p.id, p.attempt, p.status, p.external_id, p.created_at,
       p.completed_at, p.shared_at, r.theta, r.se, r.level, r.score, r.competences,
       r.mastered_skills, (SELECT u.locale FROM user_account u WHERE u.id = $3) AS user_locale
FROM campaign c
LEFT JOIN learner l ON l.tenant_id = $1 AND l.user_id = $3
LEFT JOIN LATERAL (
    SELECT * FROM participation p WHERE p.tenant_id = $1 AND p.campaign_id = c.id
        AND p.learner_id = l.id ORDER BY p.attempt DESC LIMIT 1) p ON p.tenant_id = $1
LEFT JOIN result r ON r.tenant_id = $1 AND r.participation_id = p.id
WHERE c.tenant_id = $1 AND c.id = $2 AND c.status <> 'draft'
FOR KEY SHARE OF c
"""  # noqa: S608 - constant clauses

#: The participant's learner row: theirs if they have one; else a learner the organization
#: imported with their verified email (claimed, so the import and the test are one person);
#: else a new one. One statement. The upsert's SET takes the time from EXCLUDED (the column's
#: default): Citus refuses now() in an upsert's SET clause. A new or claimed row is filed
#: under the learner groups the person's directory groups map to (`filed`, NULL for a person
#: the directory did not provision: a claimed row then keeps its groups), as
#: `campaigns.directory_groups` files it on every directory change since; an existing row
#: already is, and is not touched.
_UPSERT_LEARNER = f"""
WITH person AS (SELECT id, name, email, email_verified FROM user_account WHERE id = $3),
filed AS (SELECT {directory_learner_groups_sql("$1", "$3")} AS groups,
    {targeted_learner_groups_sql("$1")} AS targeted),
claimed AS (
    UPDATE learner l SET user_id = person.id, name = person.name, email = person.email,
        external_id = coalesce($4, l.external_id), updated_at = now(),
        groups = CASE WHEN filed.groups IS NULL THEN l.groups
            ELSE {kept_groups_sql("l.groups", "filed.targeted")} || filed.groups END
    FROM person, filed
    WHERE l.tenant_id = $1 AND l.id = (
        SELECT i.id FROM learner i
        WHERE i.tenant_id = $1 AND i.user_id IS NULL AND person.email_verified
            AND lower(i.email) = lower(person.email)
            AND NOT EXISTS (
                SELECT 1 FROM learner o WHERE o.tenant_id = $1 AND o.user_id = person.id)
        ORDER BY i.created_at, i.id LIMIT 1)
    RETURNING l.id),
upserted AS (
    INSERT INTO learner (tenant_id, id, user_id, name, email, external_id, groups)
    SELECT $1, $2, person.id, person.name, person.email, $4,
        coalesce(filed.groups, '{{}}'::text[])
    FROM person, filed
    WHERE NOT EXISTS (SELECT 1 FROM claimed)
    ON CONFLICT (tenant_id, user_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,
        external_id = coalesce(EXCLUDED.external_id, learner.external_id),
        updated_at = EXCLUDED.updated_at
    RETURNING id)
SELECT id FROM claimed UNION ALL SELECT id FROM upserted
"""  # noqa: S608 - constant clauses

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

    When the tenant is billed, a new participation needs its subscription in good standing
    and, in a seat-consuming campaign, a seat (`billing.seats.consume_seat`, in the same
    transaction): a refusal rolls the start back, then is recorded and told to the admins.
    """
    try:
        return await _start_or_resume(
            ctx,
            campaign_id,
            external_id=external_id,
            locale=locale,
            retake=retake,
            via_sso=via_sso,
        )
    except seats.SeatsExhausted as refused:
        await seats.record_refusal(ctx, refused.outcome, datetime.now(UTC))
        raise


async def _start_or_resume(
    ctx: TenantContext,
    campaign_id: UUID | str,
    *,
    external_id: str | None,
    locale: str | None,
    retake: bool,
    via_sso: bool,
) -> ParticipationView:
    user_id = participant_id(ctx)
    withdrawn = await withdrawn_challenges()  # cached: no query on most calls
    ledgers = await exposure_ledgers()  # cached likewise
    async with tenant_transaction(ctx):
        rows = await fetch(_LATEST_PARTICIPATION, ctx.tenant_id, uuid_or_404(campaign_id), user_id)
        if not rows:
            raise NotFound()
        row = rows[0]
        refuse_if_archived(row["campaign_status"])
        latest_status = None if row["id"] is None else row["status"]
        if returns_latest(latest_status, retake=retake):
            return participation_view(row, resumed=latest_status == "started")
        now = datetime.now(UTC)
        refuse_unless_accepting(row["campaign_status"], row["opens_at"], row["closes_at"], now)
        seats.refuse_unless_taking_participants(row["subscription_status"])
        if row["sso_required"] and not via_sso:
            raise Forbidden("This campaign asks you to sign in with your organization's account.")
        if row["id"] is not None:
            refuse_retake_unless_due(
                allowed=row["retake_allowed"],
                completed_at=row["completed_at"],
                delay_days=row["retake_delay_days"],
                now=now,
            )
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
        if row["consumes_seat"] and row["subscription_status"] is not None:
            # After the learner upsert, which holds the learner's row until commit: two
            # starts by one person cannot both count a seat.
            seat = await seats.consume_seat(ctx, learners[0]["id"], row["campaign_id"], now)
            if not seat.admitted:
                raise seats.SeatsExhausted(seat)
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
                   ON p.tenant_id = $1 AND p.id = a.participation_id
               WHERE a.tenant_id = $1 AND p.campaign_id = $2 AND p.learner_id = $3
                 AND p.attempt < $4""",
            ctx.tenant_id,
            row["campaign_id"],
            learners[0]["id"],
            attempt,
        )
        seen_before = [s["challenge_id"] for s in seen]
        chosen_locale = choose_locale(locale, row["user_locale"], row["locales"])
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
            return await own_participation(ctx, participation["id"], user_id)
    return participation_view(participation)


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
               ON p.tenant_id = $1 AND p.id = r.participation_id
           JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
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
    return await own_participation(ctx, participation["id"], ctx.actor.user_id)


async def _attempt(
    ctx: TenantContext, campaign_id: UUID, learner_id: UUID, attempt: int
) -> ParticipationView:
    rows = await fetch(
        """SELECT p.*, r.theta, r.se, r.level, r.score, r.competences, r.mastered_skills
           FROM participation p
           LEFT JOIN result r ON r.tenant_id = $1 AND r.participation_id = p.id
           WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND p.learner_id = $3
             AND p.attempt = $4""",
        ctx.tenant_id,
        campaign_id,
        learner_id,
        attempt,
    )
    return participation_view(rows[0], resumed=rows[0]["status"] == "started")
