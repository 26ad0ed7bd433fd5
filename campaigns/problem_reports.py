"""Problem reports on challenges (ADR 0013).

A participant reports a problem on a challenge of their own test (unclear statement, wrong
answer key, broken media, accessibility). The report is the tenant's data (`challenge_report`:
locale, answer given, comment); in the same transaction the global, anonymous
`challenge_flag` of the challenge is updated, and once enough distinct participants reported
it within the window, the challenge is withdrawn from selection for every tenant until a
content editor reviews it. Selection reads the withdrawn set through a short process cache,
so the answer path costs no extra query.

Content editors (staff) triage across tenants with `list_flags`, `mark_reviewed` and
`retire` (the command line), or their back-office forms `review_reported`, `retire_reported`
and `restore_reported` (the same statements, with the staff member's reason in their
trail); the back office also retires a challenge of the bank nobody reported, from its preview
(the flag is then made without report dates), and reads its state with `challenge_triage`.
Once their staff role is checked, they read the reports' comments across tenants through
`triage_report_samples`, a `SECURITY DEFINER` function of the owner role that returns the
latest comments and nothing else (ADR 0024); no setting opens `challenge_report`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from campaigns import assessment
from campaigns.access import participant_id
from campaigns.content import current_bank, frozen_bank
from campaigns.participation.rules import refuse_if_archived
from core.database import after_commit, execute, fetch, global_transaction, tenant_transaction
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.i18n import N_
from core.ids import uuid_or_404
from core.settings import get_settings
from core.validation import clean_multiline
from tenants import audit
from tenants.context import StaffContext, TenantContext
from tenants.permissions import StaffPermission, staff_roles_with
from tenants.staff import with_reason
from tenants.staff_trail import record_staff_action

#: What a participant can report, in the order the form offers them.
CATEGORIES = ("unclear_statement", "wrong_answer_key", "broken_media", "accessibility")
COMMENT_MAX_LENGTH = 1000
#: How long a process trusts its copy of the withdrawn set (changes made here clear it).
CACHE_SECONDS = 60.0
#: Staff roles that triage reports.
TRIAGE_ROLES = tuple(sorted(staff_roles_with(StaffPermission.CONTENT_TRIAGE)))
SAMPLE_COMMENTS = 3

NOT_SERVED_MESSAGE = "This question is not part of your test."


# --- the withdrawn set, cached per process ------------------------------------------------

_cache: tuple[float, frozenset[str]] | None = None
#: bumped by every change of a flag in this process, so a read that overlapped one is not kept
_generation = 0


def forget_withdrawn() -> None:
    """Drop this process's copy of the withdrawn set: the next read asks the database."""
    global _cache, _generation
    _cache = None
    _generation += 1


async def withdrawn_challenges() -> frozenset[str]:
    """Ids of the challenges selection must skip (withdrawn pending review, or retired).

    Read from the database at most once per `CACHE_SECONDS` per process, so the answer path
    pays nothing; another process sees a change within that delay, this one at once. Call it
    outside a transaction (it opens its own when the copy is stale).
    """
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < CACHE_SECONDS:
        return _cache[1]
    generation = _generation
    async with global_transaction():
        rows = await fetch(
            "SELECT challenge_id FROM challenge_flag WHERE status IN ('withdrawn', 'retired')"
        )
    withdrawn = frozenset(row["challenge_id"] for row in rows)
    if generation == _generation:  # no change committed meanwhile in this process
        _cache = (now, withdrawn)
    return withdrawn


def _forget_after_commit() -> None:
    # Cleared now and again after commit: a read between the two would cache the old set.
    forget_withdrawn()

    async def clear() -> None:
        forget_withdrawn()

    after_commit(clear)


# --- participants: reporting --------------------------------------------------------------


@dataclass(frozen=True)
class ReportOutcome:
    """What a report did: `recorded` is False when this participant had already reported the
    challenge (their first report stands); `withdrawn` says the challenge is now out."""

    recorded: bool
    withdrawn: bool


_SERVED_SQL = """
SELECT p.id, p.status, p.learner_id, c.status AS campaign_status, c.bank_version,
       s.locale, s.current_challenge_id, a.id AS answer_id, a.value AS answer_value,
       a.correct AS answer_correct, u.email_verified AS verified
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
JOIN user_account u ON u.id = l.user_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
LEFT JOIN assessment s ON s.tenant_id = $1 AND s.participation_id = p.id
LEFT JOIN answer a ON a.tenant_id = $1 AND a.participation_id = p.id
    AND a.challenge_id = $4
WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3
"""

_INSERT_REPORT = """
INSERT INTO challenge_report (tenant_id, id, participation_id, learner_id, challenge_id,
    locale, category, comment, answer, answer_submitted, answer_correct)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)
ON CONFLICT (tenant_id, learner_id, challenge_id) DO NOTHING
RETURNING id
"""

# The upsert locks the flag's row: concurrent reports of one challenge (from any tenant)
# queue here, so each counts the events the previous ones committed. Citus refuses now() in
# an upsert's SET clause and in a CASE of an UPDATE: the upsert takes the time from EXCLUDED
# (the column's default), the count from the event's own time ($4, the database's clock).
# A flag made by a retirement from the preview has no report dates: the first report sets both.
_UPSERT_FLAG = """
INSERT INTO challenge_flag (challenge_id) VALUES ($1)
ON CONFLICT (challenge_id) DO UPDATE SET last_reported_at = EXCLUDED.last_reported_at,
    first_reported_at = coalesce(challenge_flag.first_reported_at, EXCLUDED.first_reported_at)
"""

_COUNT_AND_WITHDRAW = """
WITH recent AS (
    SELECT count(*)::int AS n FROM challenge_flag_event e, challenge_flag f
    WHERE f.challenge_id = $1 AND e.challenge_id = $1
      AND e.reported_at > $4::timestamptz - make_interval(days => $3)
      AND e.reported_at > coalesce(f.reviewed_at, '-infinity'))
UPDATE challenge_flag f SET recent_reports = recent.n,
    status = CASE WHEN f.status IN ('open', 'reviewed') AND recent.n >= $2
                  THEN 'withdrawn' ELSE f.status END,
    withdrawn_at = CASE WHEN f.status IN ('open', 'reviewed') AND recent.n >= $2
                        THEN $4::timestamptz ELSE f.withdrawn_at END
FROM recent WHERE f.challenge_id = $1
RETURNING f.status, f.withdrawn_at = $4::timestamptz AS just_withdrawn
"""


def _clean_category(category: str | None) -> str:
    if category not in CATEGORIES:
        raise Invalid("Choose what the problem is.", field="category")
    return category


def _answer_given(
    row: Mapping[str, Any], challenge_id: str, answer: Any
) -> tuple[Any, bool, bool | None]:
    """(answer, submitted, correct): the stored answer of an answered challenge, else the
    answer in progress when it has the challenge's shape (else none)."""
    if row["answer_id"] is not None:
        value = None if row["answer_value"] is None else json.loads(row["answer_value"])
        return value, True, row["answer_correct"]
    if answer is None or answer == "" or answer == []:
        return None, False, None
    challenge = frozen_bank(row["bank_version"]).challenge_by_id[challenge_id]
    try:
        value, correct = assessment.check_answer(challenge, row["locale"], answer)
    except Invalid:
        return None, False, None
    return value, False, correct


async def report_problem(
    ctx: TenantContext,
    participation_id: UUID | str,
    challenge_id: str,
    category: str | None,
    comment: str | None = "",
    answer: Any = None,
) -> ReportOutcome:
    """Record the participant's report of a problem on `challenge_id`, a challenge of their
    own participation: the current one, or one they answered (anything else is `NotFound`).

    `category` is one of `CATEGORIES`; `comment` is optional, 1,000 characters at most.
    The answer stored with the report is the one recorded for an answered challenge, else
    `answer` (the answer in progress) when it has the right shape. One report per learner
    and challenge: a second one records nothing and says so (`recorded=False`). The report
    is audited in the organization's log (without the comment); when the reporter's email is
    verified, the challenge's global flag is updated in the same transaction and, at
    `report_threshold` distinct reports within `report_window_days`, the challenge is
    withdrawn from selection everywhere (unverified reports are kept but not counted).
    """
    user_id = participant_id(ctx)
    category = _clean_category(category)
    comment = clean_multiline(comment, "comment", max_length=COMMENT_MAX_LENGTH)
    challenge_id = str(challenge_id or "")
    settings = get_settings()
    async with tenant_transaction(ctx):
        rows = await fetch(
            _SERVED_SQL, ctx.tenant_id, uuid_or_404(participation_id), user_id, challenge_id
        )
        if not rows:
            raise NotFound()
        row = rows[0]
        refuse_if_archived(row["campaign_status"])
        current = row["status"] == "started" and row["current_challenge_id"] == challenge_id
        if row["locale"] is None or not (current or row["answer_id"] is not None):
            raise NotFound(NOT_SERVED_MESSAGE)
        value, submitted, correct = _answer_given(row, challenge_id, answer)
        inserted = await fetch(
            _INSERT_REPORT,
            ctx.tenant_id,
            uuid4(),
            row["id"],
            row["learner_id"],
            challenge_id,
            row["locale"],
            category,
            comment,
            None if value is None else json.dumps(value),
            submitted,
            correct,
        )
        if not inserted:
            return ReportOutcome(recorded=False, withdrawn=False)
        await audit.record(
            ctx,
            "challenge.reported",
            "challenge",
            challenge_id,
            category=category,
            locale=row["locale"],
            participation=str(row["id"]),
        )
        if not row["verified"]:
            # Stored for the editors, but not counted towards withdrawal: accounts made on the
            # spot with made-up addresses must not take a challenge out for every tenant.
            return ReportOutcome(recorded=True, withdrawn=False)
        await execute(_UPSERT_FLAG, challenge_id)
        events = await fetch(
            """INSERT INTO challenge_flag_event (id, challenge_id, locale, category)
               VALUES ($1, $2, $3, $4) RETURNING reported_at""",
            uuid4(),
            challenge_id,
            row["locale"],
            category,
        )
        flags = await fetch(
            _COUNT_AND_WITHDRAW,
            challenge_id,
            settings.report_threshold,
            settings.report_window_days,
            events[0]["reported_at"],
        )
        if flags[0]["just_withdrawn"]:
            _forget_after_commit()
    return ReportOutcome(recorded=True, withdrawn=flags[0]["status"] in ("withdrawn", "retired"))


# --- content editors: triage --------------------------------------------------------------


@dataclass(frozen=True)
class SampleReport:
    """One report's content as a content editor reads it: no person, no organization."""

    locale: str
    category: str
    comment: str
    answer: Any
    answer_submitted: bool
    answer_correct: bool | None
    created_at: datetime


@dataclass(frozen=True)
class Flag:
    """A reported challenge: its state, and the reports since its last review."""

    challenge_id: str
    status: str
    recent_reports: int
    #: none for a challenge retired from its preview before anybody reported it
    first_reported_at: datetime | None
    last_reported_at: datetime | None
    withdrawn_at: datetime | None
    reviewed_at: datetime | None
    reviewed_by: UUID | None
    retired_at: datetime | None
    #: reports since the last review, per category and per locale
    categories: dict[str, int] = field(default_factory=dict)
    locales: dict[str, int] = field(default_factory=dict)
    #: the latest comments (non-empty) since the last review, newest first
    samples: tuple[SampleReport, ...] = ()


async def _require_triage(staff_user_id: UUID) -> None:
    """`Forbidden` unless the person is a content editor or superadmin (in the open
    transaction); the caller may then read reports across tenants through
    `triage_report_samples`, the only way to (ADR 0024)."""
    rows = await fetch(
        """SELECT 1 FROM staff_member
           WHERE user_id = $1 AND disabled_at IS NULL AND role = ANY($2::text[])""",
        staff_user_id,
        list(TRIAGE_ROLES),
    )
    if not rows:
        raise Forbidden()


_FLAGS_SQL = """
SELECT f.*,
       coalesce((SELECT jsonb_object_agg(category, n) FROM (
           SELECT e.category, count(*) AS n FROM challenge_flag_event e
           WHERE e.challenge_id = f.challenge_id
             AND e.reported_at > coalesce(f.reviewed_at, '-infinity')
           GROUP BY e.category) c), '{}') AS categories,
       coalesce((SELECT jsonb_object_agg(locale, n) FROM (
           SELECT e.locale, count(*) AS n FROM challenge_flag_event e
           WHERE e.challenge_id = f.challenge_id
             AND e.reported_at > coalesce(f.reviewed_at, '-infinity')
           GROUP BY e.locale) l), '{}') AS locales
FROM challenge_flag f
WHERE ($1::text IS NULL OR f.status = $1)
ORDER BY CASE f.status WHEN 'withdrawn' THEN 0 WHEN 'open' THEN 1 WHEN 'reviewed' THEN 2
         ELSE 3 END, f.recent_reports DESC, f.last_reported_at DESC NULLS LAST,
         f.challenge_id
LIMIT $2
"""

# The owner's `triage_report_samples` (migration `campaigns_2026_12_04t04_00_00_000000`, ADR
# 0024): the commented reports of the listed challenges since their last review, newest first,
# from every tenant, without who or where. On Citus the window (per challenge, across tenants)
# runs on the coordinator over the rows the shards return.
_SAMPLES_SQL = """
SELECT challenge_id, locale, category, comment, answer, answer_submitted, answer_correct,
       created_at
FROM triage_report_samples($1::text[], $2)
"""

STATUSES = ("open", "withdrawn", "reviewed", "retired")


async def list_flags(
    staff_user_id: UUID, status: str | None = None, limit: int = 100
) -> list[Flag]:
    """Reported challenges for content editors, withdrawn first, then open, reviewed and
    retired; with the reports since the last review per category and locale, and up to three
    recent comments each (from every tenant, without who or where). Three queries whatever
    the number of flags. `Forbidden` unless `staff_user_id` is a content editor."""
    if status is not None and status not in STATUSES:
        raise Invalid("Unknown status.", field="status")
    if not 1 <= limit <= 1000:
        raise Invalid("Ask for between 1 and {max} items per page.", field="limit", max=1000)
    async with global_transaction(user_id=staff_user_id):
        await _require_triage(staff_user_id)
        rows = await fetch(_FLAGS_SQL, status, limit)
        samples = await fetch(_SAMPLES_SQL, [r["challenge_id"] for r in rows], SAMPLE_COMMENTS)
    by_challenge: dict[str, list[SampleReport]] = {}
    for s in samples:
        by_challenge.setdefault(s["challenge_id"], []).append(
            SampleReport(
                locale=s["locale"],
                category=s["category"],
                comment=s["comment"],
                answer=None if s["answer"] is None else json.loads(s["answer"]),
                answer_submitted=s["answer_submitted"],
                answer_correct=s["answer_correct"],
                created_at=s["created_at"],
            )
        )
    return [
        Flag(
            challenge_id=r["challenge_id"],
            status=r["status"],
            recent_reports=r["recent_reports"],
            first_reported_at=r["first_reported_at"],
            last_reported_at=r["last_reported_at"],
            withdrawn_at=r["withdrawn_at"],
            reviewed_at=r["reviewed_at"],
            reviewed_by=r["reviewed_by"],
            retired_at=r["retired_at"],
            categories=dict(json.loads(r["categories"])),
            locales=dict(json.loads(r["locales"])),
            samples=tuple(by_challenge.get(r["challenge_id"], ())),
        )
        for r in rows
    ]


_REVIEW_SQL = """
UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(), reviewed_by = $2,
    recent_reports = 0, retired_at = NULL
WHERE challenge_id = $1 RETURNING status"""

# The back office's review leaves a retired challenge alone: bringing one back is
# `restore_reported`, which asks for a reason.
_REVIEW_UNRETIRED_SQL = """
UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(), reviewed_by = $2,
    recent_reports = 0
WHERE challenge_id = $1 AND status <> 'retired' RETURNING status"""

RETIRED_NOT_REVIEWED = N_(
    "This challenge is retired: restore it, with a reason, to serve it again."
)

_RETIRE_SQL = """
UPDATE challenge_flag SET status = 'retired', retired_at = now(),
    reviewed_at = now(), reviewed_by = $2, recent_reports = 0
WHERE challenge_id = $1 RETURNING status"""

# The same for a challenge of the bank, reported or not: the flag is made, without report
# dates, when nobody reported it. The times come from EXCLUDED (now() in VALUES): Citus
# refuses now() in an upsert's SET clause.
_RETIRE_ANY_SQL = """
INSERT INTO challenge_flag (challenge_id, status, recent_reports, first_reported_at,
    last_reported_at, retired_at, reviewed_at, reviewed_by)
VALUES ($1, 'retired', 0, NULL, NULL, now(), now(), $2)
ON CONFLICT (challenge_id) DO UPDATE SET status = 'retired', recent_reports = 0,
    retired_at = EXCLUDED.retired_at, reviewed_at = EXCLUDED.reviewed_at,
    reviewed_by = EXCLUDED.reviewed_by
RETURNING status"""

# Restoring is the review of a retired challenge alone: anything else is not found.
_RESTORE_SQL = """
UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(), reviewed_by = $2,
    recent_reports = 0, retired_at = NULL
WHERE challenge_id = $1 AND status = 'retired' RETURNING status"""


async def _set_status(
    staff_user_id: UUID,
    challenge_id: str,
    sql: str,
    staff: StaffContext | None = None,
    action: str = "",
) -> str:
    """Apply `sql` to the flag as a content editor; with `staff` (the back office), the staff
    trail records `action` in the same transaction."""
    async with global_transaction(user_id=staff_user_id):
        await _require_triage(staff_user_id)
        rows = await fetch(sql, challenge_id, staff_user_id)
        if not rows and sql is _REVIEW_UNRETIRED_SQL:
            retired = await fetch(
                "SELECT 1 FROM challenge_flag WHERE challenge_id = $1 AND status = 'retired'",
                challenge_id,
            )
            if retired:
                raise Conflict(RETIRED_NOT_REVIEWED)
        if not rows:
            raise NotFound()
        if staff is not None:
            await record_staff_action(
                staff, action, "challenge", challenge_id, status=rows[0]["status"]
            )
        _forget_after_commit()
    status: str = rows[0]["status"]
    return status


async def mark_reviewed(staff_user_id: UUID, challenge_id: str) -> str:
    """A content editor has looked at the challenge (and fixed the bank if need be): it is
    selected again, retired or not, and its count of recent reports starts again from zero.
    `NotFound` for a challenge nobody reported."""
    return await _set_status(staff_user_id, challenge_id, _REVIEW_SQL)


async def retire(staff_user_id: UUID, challenge_id: str) -> str:
    """A content editor retires the challenge: selection skips it for good (until marked
    reviewed). `NotFound` for a challenge nobody reported."""
    return await _set_status(staff_user_id, challenge_id, _RETIRE_SQL)


# --- the back office: the same rules, with the staff member's reason in their trail ----------


@dataclass(frozen=True)
class Triage:
    """Where a challenge stands, as its preview says: `status` is one of `STATUSES`."""

    status: str
    withdrawn_at: datetime | None
    retired_at: datetime | None

    @property
    def served(self) -> bool:
        """Whether selection serves the challenge (`withdrawn_challenges` says the same)."""
        return self.status not in ("withdrawn", "retired")


def _editor(staff: StaffContext) -> UUID:
    staff.require(StaffPermission.CONTENT_TRIAGE)
    if staff.user_id is None:
        raise Forbidden()
    return staff.user_id


async def challenge_triage(staff: StaffContext, challenge_id: str) -> Triage | None:
    """The challenge's triage state, read now (not through the withdrawn set's cache); none
    for a challenge nobody reported or retired. `Forbidden` unless a content editor."""
    editor = _editor(staff)
    async with global_transaction(user_id=editor):
        await _require_triage(editor)
        rows = await fetch(
            "SELECT status, withdrawn_at, retired_at FROM challenge_flag WHERE challenge_id = $1",
            challenge_id,
        )
    return Triage(**dict(rows[0])) if rows else None


async def review_reported(staff: StaffContext, challenge_id: str, reason: str = "") -> str:
    """`mark_reviewed` from the back office, recorded in the staff trail
    (`content.challenge.reviewed`, with the reason when one is given), except that a retired
    challenge is not reviewed (`Conflict`): `restore_reported` brings it back, with the
    reason it requires. (The command line's `jalon reports review`, which records no reason
    for anything, still undoes its `jalon reports retire`.)"""
    editor = _editor(staff)
    if reason.strip():
        staff = with_reason(staff, reason)
    return await _set_status(
        editor, challenge_id, _REVIEW_UNRETIRED_SQL, staff, "content.challenge.reviewed"
    )


async def retire_reported(staff: StaffContext, challenge_id: str, reason: str) -> str:
    """`retire` from the back office, for any challenge of the bank in use, reported or not
    (the flag is made when there is none), and for a reported one the bank no longer holds
    (frozen campaigns may still serve it); `NotFound` for any other id. A reason is required;
    recorded in the staff trail (`content.challenge.retired`). Undone by `restore_reported`."""
    editor = _editor(staff)
    staff = with_reason(staff, reason)
    sql = _RETIRE_ANY_SQL if challenge_id in current_bank().challenge_by_id else _RETIRE_SQL
    return await _set_status(editor, challenge_id, sql, staff, "content.challenge.retired")


async def restore_reported(staff: StaffContext, challenge_id: str, reason: str) -> str:
    """Undo a retirement: the challenge is reviewed, and selected again. A reason is required;
    recorded in the staff trail (`content.challenge.restored`). `NotFound` unless the challenge
    is retired."""
    editor = _editor(staff)
    staff = with_reason(staff, reason)
    return await _set_status(
        editor, challenge_id, _RESTORE_SQL, staff, "content.challenge.restored"
    )
