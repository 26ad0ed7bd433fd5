"""Inviting an organization's learners to a campaign by mail, and reminding them.

`invite_learners` records one `campaign_invitation` per learner of the organization (or of
one group) who has an email address, was not invited to this campaign yet and has not
finished it, in the request's transaction, and enqueues `mail_campaign_invitations`: the
mails are written by that job (through the mail outbox, `core.mail`), never inside the
request. The job marks each invitation `mailed_at` in the transaction that writes its mail,
so a job run twice (a re-relay, ADR 0025) mails once.

`send_invitation_reminders`, hourly, mails a reminder to those invited who have not finished
once a reminder day they were given (days after the invitation) has come: a reminder day is
marked sent in the transaction that writes its mail, so each is sent at most once, and
several due at once (the worker was down) make one mail. Nobody who finished is reminded,
nor anyone of a campaign that no longer takes participants.

Mails speak the learner's language when they have an account (its language), else the
campaign's first language, and carry the campaign's link and the organization's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from campaigns.access import require_manager, require_reader
from campaigns.campaign_fields import last_open_day
from campaigns.service import access_campaign
from core.database import SystemScope, execute, fetch, tenant_transaction
from core.errors import Conflict, Invalid, TooManyRequests
from core.i18n import LOCALES, translate
from core.ids import uuid_or_404
from core.jobs import enqueue, every, job
from core.l10n import format_day, zone_named
from core.mail import queue_mail
from core.ratelimit import RateLimiter, job_limiter
from core.settings import get_settings
from tenants import audit
from tenants.context import TenantContext
from tenants.organizations import dangerously_sweep_tenants

#: The reminder days the form offers (days after the invitation); both ticked by default.
REMINDER_CHOICES = (3, 7)
#: Invitations mailed per transaction of the job.
CHUNK = 200

NOT_OPEN_MESSAGE = "Open the campaign before inviting learners: its link does not work yet."
UNKNOWN_GROUP_MESSAGE = "No learner is in this group."
BAD_REMINDER_MESSAGE = "Choose reminders among the days offered."
MAIL_QUOTA_MESSAGE = (
    "Your organization may send {cap} invitation and reminder mails a day and has {left} left "
    "today: this invitation would send {count}. Invite a group, or try again tomorrow."
)
#: How long a day's count of mails is kept (its key names the day).
QUOTA_WINDOW_SECONDS = 2 * 24 * 3600


def daily_mail_cap(organization_status: str) -> int:
    """Invitation and reminder mails an organization may send a day (UTC): fewer in trial
    (settings `invitation_mails_per_day`, `invitation_mails_per_day_trial`)."""
    settings = get_settings()
    if organization_status == "trial":
        return settings.invitation_mails_per_day_trial
    return settings.invitation_mails_per_day


def quota_key(tenant_id: UUID) -> str:
    """The rate limiter's key of the organization's invitation and reminder mails today."""
    return f"invitation-mails:{tenant_id}:{datetime.now(UTC).date().isoformat()}"


@dataclass(frozen=True)
class Audience:
    """Who an invitation to a campaign would reach, for the form to say before sending."""

    #: learners of the organization (or of the group)
    learners: int
    #: of them, those with no email address (they cannot be invited)
    without_email: int
    #: of them, those already invited to this campaign
    already_invited: int
    #: of them, those who have finished this campaign
    finished: int

    @property
    def to_invite(self) -> int:
        """How many the invitation would mail now."""
        return max(self.learners - self.without_email - self.already_invited - self.finished, 0)


@dataclass(frozen=True)
class InvitationSent:
    """What an invitation request did."""

    invited: int
    audience: Audience


@dataclass(frozen=True)
class LearnerInvitation:
    """A learner's invitation to a campaign, and the reminders it asked for and sent."""

    invited_at: datetime
    mailed_at: datetime | None
    reminder_days: tuple[int, ...]
    reminders: tuple[tuple[int, datetime], ...]


def _has_finished(campaign: str, learner: str) -> str:
    """SQL (of the tenant `$1`): the learner `learner` (an alias of `learner`) has finished
    the campaign `campaign` (an SQL expression), as this learner or under an account of the
    same address that was not verified when its test started (so it did not claim the
    imported learner). One rule for whom the invitation counts, invites and reminds."""
    return f"""EXISTS (SELECT 1 FROM participation p
          JOIN learner lp ON lp.tenant_id = $1 AND lp.id = p.learner_id
          WHERE p.tenant_id = $1 AND p.campaign_id = {campaign} AND p.status <> 'started'
            AND (lp.id = {learner}.id OR lower(lp.email) = lower({learner}.email)))"""  # noqa: S608 - constant clauses


#: SQL (of the tenant `$1`): the campaign `c` still takes participants, so its link works.
_TAKES_PARTICIPANTS = "c.status = 'active' AND (c.closes_at IS NULL OR c.closes_at > now())"

_AUDIENCE = f"""
SELECT count(*) AS learners,
       count(*) FILTER (WHERE l.email IS NULL) AS without_email,
       count(*) FILTER (WHERE l.email IS NOT NULL AND EXISTS (
           SELECT 1 FROM campaign_invitation i WHERE i.tenant_id = $1
               AND i.campaign_id = $2 AND i.learner_id = l.id)) AS already_invited,
       count(*) FILTER (WHERE l.email IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM campaign_invitation i WHERE i.tenant_id = $1
               AND i.campaign_id = $2 AND i.learner_id = l.id)
           AND {_has_finished("$2", "l")}) AS finished
FROM learner l
WHERE l.tenant_id = $1 AND ($3::text IS NULL OR $3 = ANY(l.groups))
"""  # noqa: S608 - constant clauses

_INVITE = f"""
INSERT INTO campaign_invitation (tenant_id, id, campaign_id, learner_id, invited_by,
    reminder_days)
SELECT l.tenant_id, md5($2::uuid::text || l.id::text)::uuid, $2::uuid, l.id, $4::uuid,
    $5::integer[]
FROM learner l
WHERE l.tenant_id = $1 AND l.email IS NOT NULL AND ($3::text IS NULL OR $3 = ANY(l.groups))
  AND NOT {_has_finished("$2::uuid", "l")}
ON CONFLICT (tenant_id, campaign_id, learner_id) DO NOTHING
RETURNING id
"""  # noqa: S608 - constant clauses


def _audience(row: Mapping[str, Any]) -> Audience:
    return Audience(
        learners=int(row["learners"]),
        without_email=int(row["without_email"]),
        already_invited=int(row["already_invited"]),
        finished=int(row["finished"]),
    )


def _clean_group(group: str | None) -> str | None:
    group = (group or "").strip()
    return group or None


def clean_reminder_days(values: Sequence[str]) -> list[int]:
    """The reminder days ticked on the form, among `REMINDER_CHOICES`; `Invalid` otherwise."""
    days: set[int] = set()
    for value in values:
        try:
            day = int(value)
        except ValueError:
            raise Invalid(BAD_REMINDER_MESSAGE, field="reminders") from None
        if day not in REMINDER_CHOICES:
            raise Invalid(BAD_REMINDER_MESSAGE, field="reminders")
        days.add(day)
    return sorted(days)


async def invitation_audience(
    ctx: TenantContext, campaign_id: UUID | str, group: str | None = None
) -> Audience:
    """Who inviting the organization's learners (or `group`'s) to the campaign would reach;
    `NotFound` for another tenant's campaign."""
    require_reader(ctx)
    async with tenant_transaction(ctx):
        campaign, _ = await access_campaign(ctx, campaign_id)
        rows = await fetch(_AUDIENCE, ctx.tenant_id, campaign.id, _clean_group(group))
    return _audience(rows[0])


async def invite_learners(
    ctx: TenantContext,
    campaign_id: UUID | str,
    *,
    group: str | None = None,
    reminder_days: Sequence[int] = REMINDER_CHOICES,
    limiter: RateLimiter,
) -> InvitationSent:
    """Invite the organization's learners (or those of `group`) to an open campaign: one
    invitation per learner with an email address who was not invited yet and has not
    finished it, mailed by a job after commit, with reminders `reminder_days` days later.
    Recorded in the audit log. `Conflict` unless the campaign is open; `Invalid` for a group
    nobody is in; `TooManyRequests` when the mails would pass the organization's daily cap
    (`daily_mail_cap`, counted by `limiter` with the reminders), nothing invited."""
    require_manager(ctx)
    chosen = _clean_group(group)
    days = sorted({int(day) for day in reminder_days})
    if any(day not in REMINDER_CHOICES for day in days):
        raise Invalid(BAD_REMINDER_MESSAGE, field="reminders")
    async with tenant_transaction(ctx):
        campaign, _ = await access_campaign(ctx, campaign_id)
        if campaign.status != "active":
            raise Conflict(NOT_OPEN_MESSAGE)
        audience = _audience((await fetch(_AUDIENCE, ctx.tenant_id, campaign.id, chosen))[0])
        if chosen is not None and audience.learners == 0:
            raise Invalid(UNKNOWN_GROUP_MESSAGE, field="group")
        key, count = quota_key(ctx.tenant_id), audience.to_invite
        if count:
            # Taken first (atomic in Redis, so two requests cannot both fit), given back when
            # over the cap or when the invitation does not happen.
            used = await limiter.hit(key, QUOTA_WINDOW_SECONDS, count)
            cap = daily_mail_cap(ctx.tenant.status)
            if used > cap:
                await limiter.hit(key, QUOTA_WINDOW_SECONDS, -count)
                left = max(cap - (used - count), 0)
                raise TooManyRequests(MAIL_QUOTA_MESSAGE, cap=cap, left=left, count=count)
        try:
            rows = await fetch(_INVITE, ctx.tenant_id, campaign.id, chosen, ctx.user_id, days)
        except BaseException:
            if count:
                await limiter.hit(key, QUOTA_WINDOW_SECONDS, -count)
            raise
        if len(rows) != count:  # learners invited or imported meanwhile: count what is sent
            await limiter.hit(key, QUOTA_WINDOW_SECONDS, len(rows) - count)
        if rows:
            await audit.record(
                ctx,
                "campaign.learners_invited",
                "campaign",
                campaign.id,
                campaign=campaign.name,
                group=chosen or "",
                invited=len(rows),
                reminder_days=days,
            )
            enqueue(
                "mail_campaign_invitations",
                str(ctx.tenant_id),
                str(campaign.id),
                job_id=f"campaign-invitations:{campaign.id}:{uuid4()}",
            )
    return InvitationSent(invited=len(rows), audience=audience)


async def learner_invitation(
    ctx: TenantContext, campaign_id: UUID | str, learner_id: UUID | str, email: str | None = None
) -> LearnerInvitation | None:
    """The learner's invitation to the campaign, if they were invited: theirs, else one sent
    to their address (an account not verified when its test started does not claim the
    imported learner). Call it for a campaign and learner reached through their accessors."""
    require_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT i.invited_at, i.mailed_at, i.reminder_days, i.reminded_days, i.reminded_at
               FROM campaign_invitation i
               JOIN learner l ON l.tenant_id = $1 AND l.id = i.learner_id
               WHERE i.tenant_id = $1 AND i.campaign_id = $2
                 AND (l.id = $3 OR lower(l.email) = lower($4))
               ORDER BY l.id = $3 DESC, i.invited_at LIMIT 1""",
            ctx.tenant_id,
            uuid_or_404(campaign_id),
            uuid_or_404(learner_id),
            email,
        )
    if not rows:
        return None
    row = rows[0]
    return LearnerInvitation(
        invited_at=row["invited_at"],
        mailed_at=row["mailed_at"],
        reminder_days=tuple(row["reminder_days"]),
        reminders=tuple(zip(row["reminded_days"], row["reminded_at"], strict=True)),
    )


# --- the mails -------------------------------------------------------------------------------

_RECIPIENTS = """
SELECT i.id, l.name, l.email, u.locale AS user_locale, c.name AS campaign, c.code, c.locales,
       c.closes_at, o.name AS organization, o.timezone
FROM campaign_invitation i
JOIN learner l ON l.tenant_id = $1 AND l.id = i.learner_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = i.campaign_id
JOIN organization o ON o.id = i.tenant_id
LEFT JOIN user_account u ON u.id = l.user_id
WHERE i.tenant_id = $1 AND i.id = ANY($2::uuid[]) AND l.email IS NOT NULL
"""


def mail_locale(user_locale: str | None, campaign_locales: Sequence[str]) -> str:
    """The language of a learner's mail: their account's when they have one Jalon speaks,
    else the campaign's first language."""
    if user_locale in LOCALES:
        return str(user_locale)
    return str(campaign_locales[0]) if campaign_locales else get_settings().default_locale


async def _queue(row: Mapping[str, Any], *, reminder: bool) -> None:
    locale = mail_locale(row["user_locale"], row["locales"])
    params = {
        "name": row["name"],
        "organization": row["organization"],
        "campaign": row["campaign"],
        "link": get_settings().campaign_link(row["code"]),
        "code": row["code"],
    }
    if reminder:
        subject = translate(locale, "Reminder: {organization} invites you to a test", **params)
        body = translate(
            locale,
            "Hello {name},\n\n{organization} invited you to take the test “{campaign}”, and "
            "you have not finished it yet. Open this link to start or to carry on where you "
            "stopped:\n{link}\n\nYou can also type the code {code} at the address of the "
            "link.\n\nIf you have finished it since, ignore this message.",
            **params,
        )
    else:
        subject = translate(locale, "{organization} invites you to a test", **params)
        body = translate(
            locale,
            "Hello {name},\n\n{organization} invites you to take the test “{campaign}”. "
            "Open this link to start:\n{link}\n\nYou can also type the code {code} at the "
            "address of the link. You can stop and come back later with the same link.",
            **params,
        )
    if row["closes_at"] is not None:
        # The last day it is open, in the organization's zone: what its organizers typed.
        last_day = last_open_day(row["closes_at"], zone_named(row["timezone"]))
        body += "\n\n" + translate(
            locale,
            "The test is open until {day} inclusive.",
            day=format_day(last_day, locale, width="long"),
        )
    await queue_mail(row["email"], subject, body, zone=row["timezone"])


#: Marks a chunk of the campaign's invitations mailed, only while the campaign still takes
#: participants (closed, archived or past its end between the request and the job: its link
#: is dead, nobody is mailed; the invitations wait, unmailed, unreminded).
_MARK_MAILED = f"""
UPDATE campaign_invitation SET mailed_at = now()
WHERE tenant_id = $1 AND id IN (
    SELECT i.id FROM campaign_invitation i
    JOIN campaign c ON c.tenant_id = $1 AND c.id = i.campaign_id
    WHERE i.tenant_id = $1 AND i.campaign_id = $2 AND i.mailed_at IS NULL
      AND {_TAKES_PARTICIPANTS}
    ORDER BY i.invited_at, i.id LIMIT $3 FOR UPDATE OF i SKIP LOCKED)
RETURNING id
"""  # noqa: S608 - a constant clause


@job
async def mail_campaign_invitations(ctx: dict[str, Any], tenant_id: str, campaign_id: str) -> int:
    """Write the invitation mail of each invitation to the campaign not mailed yet, marking
    it mailed in the same transaction (a second run mails nobody twice). How many."""
    scope = SystemScope(UUID(tenant_id))
    total = 0
    while True:
        async with tenant_transaction(scope):
            marked = await fetch(_MARK_MAILED, scope.tenant_id, UUID(campaign_id), CHUNK)
            if not marked:
                return total
            rows = await fetch(_RECIPIENTS, scope.tenant_id, [row["id"] for row in marked])
            for row in rows:
                await _queue(row, reminder=False)
            total += len(rows)


_DUE_REMINDERS = f"""
UPDATE campaign_invitation i
-- one moment per day sent (two days due at once make one mail, written now): the two
-- arrays stay in step (now() in a plain SET, not in a CASE or an upsert: Citus allows it)
SET reminded_days = i.reminded_days || due.days,
    reminded_at = i.reminded_at || array_fill(now(), ARRAY[cardinality(due.days)])
FROM (
    SELECT d.id, array_agg(d.day ORDER BY d.day) AS days
    FROM (SELECT i2.id, i2.campaign_id, i2.learner_id, i2.invited_at, i2.reminded_days,
                 unnest(i2.reminder_days) AS day
          FROM campaign_invitation i2
          WHERE i2.tenant_id = $1 AND i2.mailed_at IS NOT NULL) d
    JOIN campaign c ON c.tenant_id = $1 AND c.id = d.campaign_id
    JOIN learner li ON li.tenant_id = $1 AND li.id = d.learner_id
    WHERE NOT d.day = ANY(d.reminded_days)
      AND d.invited_at + make_interval(days => d.day) <= now()
      AND {_TAKES_PARTICIPANTS}
      AND NOT {_has_finished("d.campaign_id", "li")}
    GROUP BY d.id
    LIMIT $2
) due
WHERE i.tenant_id = $1 AND i.id = due.id
  -- again on the row as it is now: a run that waited for another's lock sees its days
  AND NOT (i.reminded_days && due.days)
RETURNING i.id
"""  # noqa: S608 - constant clauses


async def _remind_tenant(tenant_id: UUID, limiter: RateLimiter) -> int:
    """Inside the tenant's transaction (the sweep's): mark the due reminders sent and write
    one mail per invitation that had any. One run at a time per organization (arq's cron can
    start two at once): the second waits here, then sees what the first marked. Within the
    organization's daily cap of invitation and reminder mails (`daily_mail_cap`, counted by
    `limiter`): reminders over it wait, unmarked, for a later run."""
    await execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('invitation-reminders:' || $1::text, 0))",
        str(tenant_id),
    )
    found = await fetch("SELECT status FROM organization WHERE id = $1", tenant_id)
    cap = daily_mail_cap(str(found[0]["status"]) if found else "trial")
    key = quota_key(tenant_id)
    total = 0
    while True:
        room = min(CHUNK, cap - await limiter.count(key))
        if room <= 0:
            return total
        marked = await fetch(_DUE_REMINDERS, tenant_id, room)
        if not marked:
            return total
        await limiter.hit(key, QUOTA_WINDOW_SECONDS, len(marked))
        rows = await fetch(_RECIPIENTS, tenant_id, [row["id"] for row in marked])
        for row in rows:
            await _queue(row, reminder=True)
        total += len(rows)


@every(minutes=60)
async def send_invitation_reminders(ctx: dict[str, Any]) -> int:
    """Mail the reminders that are due, in every organization; how many were written. Run
    twice, it mails nobody twice; each organization within its daily cap."""
    limiter = job_limiter(ctx)

    async def remind(tenant_id: UUID) -> int:
        return await _remind_tenant(tenant_id, limiter)

    return await dangerously_sweep_tenants(remind)
