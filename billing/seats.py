"""The seat ledger: seat packs, the seats learners consume, the overage policies, the 80 % and
100 % alerts, and what the console shows of it all.

A tenant without a subscription is not billed: nothing is counted and nothing is refused. With
one, a learner consumes one seat of the subscription's current period when they start their
first participation of the period in a seat-consuming campaign; starting again, resuming or
joining a second campaign in the same period consumes nothing more.

The capacity of a period is the plan's own allowance (a per-seat plan: the subscription's
quantity; a licence: its included seats, or the subscription's quantity when more were
bought; a seat-pack plan: none) plus the seats of every pack
valid on the day (UTC). Beyond it, the plan's overage policy decides: `block` refuses the
participant, `warn` lets them in and shows the admins a banner, `bill` lets them in and counts
an overage seat that the next invoice charges (`unbilled_overage`, `mark_overage_billed`).

The check and the consumption are one SQL statement (`_CONSUME`): an upsert of the period's
`seat_balance` row whose update runs under the row's lock with `used < capacity` in its WHERE
(for `block`), so concurrent starts of one tenant serialize on that row and the last seat goes
once. Two starts by the same learner are already serialized earlier, by the participation
start's learner upsert, which locks the learner's row until commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from billing.subscriptions import IN_GOOD_STANDING, joined
from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.i18n import N_, translate
from core.ids import uuid_or_404
from core.mail import queue_mail
from core.settings import get_settings
from tenants import audit
from tenants.context import StaffContext, TenantContext
from tenants.permissions import Permission, StaffPermission

#: The most seats one pack may hold.
MAX_PACK_SEATS = 1_000_000
#: A pack is valid at most this long.
MAX_PACK_DAYS = 10 * 366
PACK_CATEGORIES = ("standard", "public", "reduced", "full")

SEATS_EXHAUSTED = N_(
    "This organization has no seat left for new participants. Its administrators have been "
    "told; please try again later."
)
NOT_TAKING_PARTICIPANTS = N_(
    "This organization's campaigns are not taking new participants at the moment. Please "
    "contact the organization."
)
BAD_PACK_SEATS = N_("A seat pack holds a whole number of seats between 1 and {high}.")
BAD_PACK_DATES = N_("A seat pack ends on or after the day it starts, within ten years.")
BAD_PACK_CATEGORY = N_("Unknown price category.")
BAD_PACK_REFERENCE = N_("A reference has at most 100 characters.")


class SeatVerdict(StrEnum):
    """What starting a participation did to the seat ledger."""

    #: the tenant is not billed (no subscription): nothing counted
    NOT_BILLED = "not_billed"
    #: the learner already holds a seat this period: nothing more counted
    ALREADY_COUNTED = "already_counted"
    #: a seat within the capacity
    CONSUMED = "consumed"
    #: a seat beyond the capacity, let in under the `warn` policy
    WARNED = "warned"
    #: a seat beyond the capacity, let in and billed under the `bill` policy
    OVERAGE = "overage"
    #: no seat left under the `block` policy: the participant is refused
    REFUSED = "refused"


@dataclass(frozen=True)
class SeatOutcome:
    """The verdict of one seat check, with the period's figures after it."""

    verdict: SeatVerdict
    period_start: datetime | None = None
    policy: str | None = None
    used: int | None = None
    capacity: int | None = None
    #: the 80 % and 100 % thresholds this consumption crossed first in the period
    crossed_80: bool = False
    crossed_100: bool = False

    @property
    def admitted(self) -> bool:
        return self.verdict is not SeatVerdict.REFUSED


class SeatsExhausted(Forbidden):
    """A new participant refused: no seat left under the `block` policy (403)."""

    def __init__(self, outcome: SeatOutcome) -> None:
        super().__init__(SEATS_EXHAUSTED)
        self.outcome = outcome


# --- the check at the start of a participation ---------------------------------------------

#: The subscription's status, as a scalar subquery a caller's statement may select
#: (`$1` is the tenant): the participation start reads it with the campaign, at no cost of
#: its own, to know whether the tenant is billed at all and still takes participants.
SUBSCRIPTION_STATUS_SQL = "SELECT s.status FROM subscription s WHERE s.tenant_id = $1"

_GOOD_STANDING_SQL = ", ".join(f"'{status}'" for status in sorted(IN_GOOD_STANDING))


def _capacity_sql(day: str) -> str:
    """The seats of the period for the subscription `s` of plan `p`: the plan's allowance
    plus the packs valid on `day` (a date expression). `$1` is the tenant."""
    return f"""(CASE p.kind WHEN 'per_seat' THEN s.quantity
                  WHEN 'license' THEN greatest(s.quantity, coalesce(p.included_seats, 0))
                  ELSE 0 END
        + coalesce((SELECT sum(k.seats) FROM seat_pack k
                    WHERE k.tenant_id = $1 AND k.removed_at IS NULL
                      AND k.starts_on <= {day} AND k.ends_on >= {day}), 0))::integer"""  # noqa: S608 - constant


def refuse_unless_taking_participants(subscription_status: str | None) -> None:
    """Raise `Forbidden` when the tenant's subscription (its status, None when it has none)
    closes its campaigns to new participants: suspended or canceled. Participants already
    under way are not asked (they resume)."""
    if subscription_status is not None and subscription_status not in IN_GOOD_STANDING:
        raise Forbidden(NOT_TAKING_PARTICIPANTS)


# The whole check in one statement ($1 tenant, $2 learner, $3 campaign, $4 time, $5 day,
# $6 a new balance id, $7 a new usage id). `sub`: the billed subscription and its capacity;
# `counted`: the learner's seat of the period, if any; `balance`: the period's row, inserted
# or incremented under its lock, refused by the WHERE when full under `block`; `usage`: the
# learner's seat. The alert columns keep the `used` count at which each threshold was first
# reached: a consumption whose `used` equals it crossed it. No volatile function anywhere
# (Citus): the time and the ids are parameters.
_CONSUME = f"""
WITH sub AS (
    SELECT s.current_period_start AS period_start, p.overage_policy AS policy,
           {_capacity_sql("$5::date")} AS capacity
    FROM subscription s JOIN plan p ON p.id = s.plan_id
    WHERE s.tenant_id = $1 AND s.status IN ({_GOOD_STANDING_SQL})),
counted AS (
    SELECT u.id FROM seat_usage u JOIN sub ON u.period_start = sub.period_start
    WHERE u.tenant_id = $1 AND u.learner_id = $2),
balance AS (
    INSERT INTO seat_balance AS b (tenant_id, id, period_start, used, overage, capacity,
        overage_policy, alert_80_used, alert_100_used, updated_at)
    SELECT $1, $6, sub.period_start, 1, (sub.capacity < 1)::integer, sub.capacity, sub.policy,
        CASE WHEN sub.capacity > 0 AND 5 >= sub.capacity * 4 THEN 1 END,
        CASE WHEN sub.capacity > 0 AND 1 >= sub.capacity THEN 1 END, $4
    FROM sub
    WHERE NOT EXISTS (SELECT 1 FROM counted) AND (sub.capacity > 0 OR sub.policy <> 'block')
    ON CONFLICT (tenant_id, period_start) DO UPDATE SET
        used = b.used + 1,
        overage = b.overage + (b.used >= EXCLUDED.capacity)::integer,
        capacity = EXCLUDED.capacity,
        overage_policy = EXCLUDED.overage_policy,
        alert_80_used = coalesce(b.alert_80_used, CASE WHEN EXCLUDED.capacity > 0
            AND (b.used + 1) * 5 >= EXCLUDED.capacity * 4 THEN b.used + 1 END),
        alert_100_used = coalesce(b.alert_100_used, CASE WHEN EXCLUDED.capacity > 0
            AND b.used + 1 >= EXCLUDED.capacity THEN b.used + 1 END),
        updated_at = EXCLUDED.updated_at
    WHERE b.used < EXCLUDED.capacity OR EXCLUDED.overage_policy <> 'block'
    RETURNING b.period_start, b.used, b.alert_80_used, b.alert_100_used),
usage AS (
    INSERT INTO seat_usage (tenant_id, id, period_start, learner_id, campaign_id,
        consumed_at, overage)
    SELECT $1, $7, balance.period_start, $2, $3, $4, balance.used > sub.capacity
    FROM balance JOIN sub ON sub.period_start = balance.period_start
    ON CONFLICT (tenant_id, period_start, learner_id) DO NOTHING
    RETURNING id)
SELECT sub.period_start, sub.policy, sub.capacity,
       EXISTS (SELECT 1 FROM counted) AS counted,
       balance.used, balance.alert_80_used, balance.alert_100_used
FROM sub LEFT JOIN balance ON balance.period_start = sub.period_start
"""  # noqa: S608 - constant clauses


def _verdict(row: dict[str, Any]) -> SeatOutcome:
    used: int | None = row["used"]
    figures: dict[str, Any] = {
        "period_start": row["period_start"],
        "policy": row["policy"],
        "capacity": row["capacity"],
    }
    if row["counted"]:
        return SeatOutcome(SeatVerdict.ALREADY_COUNTED, **figures)
    if used is None:
        return SeatOutcome(SeatVerdict.REFUSED, **figures)
    verdict = SeatVerdict.CONSUMED
    if used > row["capacity"]:
        verdict = SeatVerdict.OVERAGE if row["policy"] == "bill" else SeatVerdict.WARNED
    return SeatOutcome(
        verdict,
        used=used,
        crossed_80=row["alert_80_used"] == used,
        crossed_100=row["alert_100_used"] == used,
        **figures,
    )


async def consume_seat(
    ctx: TenantContext, learner_id: UUID, campaign_id: UUID, at: datetime
) -> SeatOutcome:
    """Count `learner_id`'s seat of the current period for a participation starting at `at`
    in the seat-consuming campaign `campaign_id`, inside the caller's open transaction.

    One statement checks and consumes; a second runs only when the consumption crosses the
    80 % or 100 % alert, to mail the tenant's admins (once each per period). The caller
    refuses the participant when the verdict is `REFUSED` (`SeatsExhausted`) and must hold the
    learner's row locked (the participation start does), so that two starts by one learner do
    not both count. A tenant with no subscription in good standing gets `NOT_BILLED`.
    """
    rows = await fetch(
        _CONSUME,
        ctx.tenant_id,
        learner_id,
        campaign_id,
        at,
        at.astimezone(UTC).date(),
        uuid4(),
        uuid4(),
    )
    if not rows:
        return SeatOutcome(SeatVerdict.NOT_BILLED)
    outcome = _verdict(rows[0])
    if outcome.crossed_100:
        await _mail_admins(
            ctx, _ALERT_100_SUBJECT, _ALERT_100_BODY, used=outcome.used, capacity=outcome.capacity
        )
    elif outcome.crossed_80:
        await _mail_admins(
            ctx, _ALERT_80_SUBJECT, _ALERT_80_BODY, used=outcome.used, capacity=outcome.capacity
        )
    return outcome


# --- mail to the tenant's admins -----------------------------------------------------------

_ALERT_80_SUBJECT = N_("{organization}: 80% of your seats are used")
_ALERT_80_BODY = N_(
    "Hello {name},\n\n{organization} has used {used} of its {capacity} seats for the current "
    "period. When none are left, the plan's overage policy applies.\n\nSeat usage: {link}\n"
)
_ALERT_100_SUBJECT = N_("{organization}: all your seats are used")
_ALERT_100_BODY = N_(
    "Hello {name},\n\n{organization} has used all of its {capacity} seats for the current "
    "period. Add seats to keep welcoming new participants.\n\nSeat usage: {link}\n"
)
_REFUSED_SUBJECT = N_("{organization}: a participant was turned away, no seat left")
_REFUSED_BODY = N_(
    "Hello {name},\n\nA participant could not start a campaign of {organization} today: all of "
    "its {capacity} seats for the current period are used ({refused} turned away so far this "
    "period). Add seats so that new participants can start.\n\nSeat usage: {link}\n"
)

_ADMINS = """
SELECT u.email, u.name, u.locale FROM membership m JOIN user_account u ON u.id = m.user_id
WHERE m.tenant_id = $1 AND m.role IN ('owner', 'admin') AND u.is_active
ORDER BY u.email
"""


async def _mail_admins(ctx: TenantContext, subject: str, body: str, **figures: Any) -> None:
    """Mail `subject` and `body` to each of the tenant's admins and owners in their language,
    with `figures`, the organization, their name and the usage page's link as parameters."""
    link = f"{get_settings().base_url}/o/{ctx.tenant.slug}/billing/usage"
    for admin in await fetch(_ADMINS, ctx.tenant_id):
        params = {"organization": ctx.tenant.name, "name": admin["name"], "link": link, **figures}
        locale = admin["locale"]
        await queue_mail(
            admin["email"],
            translate(locale, subject, **params),
            translate(locale, body, **params),
            zone=ctx.tenant.timezone,
        )


# The refusal rolls the participation start back, mail included; it is recorded afterwards
# in a transaction of its own: the count of refusals, and the admins mailed once a day at most
# (`refusal_mail_refused` keeps the refusal count of the day's mail: equal to `refused`, this
# refusal is the day's first). Creates the period's row if no seat was ever consumed.
_RECORD_REFUSAL = """
INSERT INTO seat_balance AS b (tenant_id, id, period_start, capacity, overage_policy, refused,
    refusal_mailed_on, refusal_mail_refused, updated_at)
VALUES ($1, $2, $3, $4, $5, 1, $6, 1, $7)
ON CONFLICT (tenant_id, period_start) DO UPDATE SET
    refused = b.refused + 1,
    refusal_mail_refused = CASE WHEN b.refusal_mailed_on IS DISTINCT FROM EXCLUDED.refusal_mailed_on
        THEN b.refused + 1 ELSE b.refusal_mail_refused END,
    refusal_mailed_on = EXCLUDED.refusal_mailed_on,
    updated_at = EXCLUDED.updated_at
RETURNING refused, refusal_mail_refused
"""


async def record_refusal(ctx: TenantContext, outcome: SeatOutcome, at: datetime) -> bool:
    """After a participant was refused for want of seats (and the start rolled back): count
    the refusal and, for the first refusal of the day (UTC), mail the tenant's admins. Opens
    its own transaction. True when the admins were mailed."""
    if outcome.period_start is None or outcome.policy is None or outcome.capacity is None:
        return False
    async with tenant_transaction(ctx):
        rows = await fetch(
            _RECORD_REFUSAL,
            ctx.tenant_id,
            uuid4(),
            outcome.period_start,
            outcome.capacity,
            outcome.policy,
            at.astimezone(UTC).date(),
            at,
        )
        refused: int = rows[0]["refused"]
        if rows[0]["refusal_mail_refused"] != refused:
            return False
        await _mail_admins(
            ctx, _REFUSED_SUBJECT, _REFUSED_BODY, capacity=outcome.capacity, refused=refused
        )
    return True


# --- seat packs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeatPackFields:
    """What an account manager states of a new pack: its seats, its first and last valid
    days (the last defaults to 12 months later, less a day), its price category and their
    reference (an order, a quote)."""

    seats: int
    starts_on: date
    ends_on: date | None = None
    category: str = "standard"
    reference: str = ""


@dataclass(frozen=True)
class SeatPack:
    """Prepaid seats, valid from `starts_on` to `ends_on`, both days included."""

    id: UUID
    seats: int
    starts_on: date
    ends_on: date
    category: str
    reference: str
    added_by: str
    created_at: datetime

    def valid_on(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


def _pack(row: dict[str, Any]) -> SeatPack:
    return SeatPack(
        id=row["id"],
        seats=row["seats"],
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        category=row["category"],
        reference=row["reference"],
        added_by=row["added_by"],
        created_at=row["created_at"],
    )


def _one_year_on(day: date) -> date:
    try:
        return day.replace(year=day.year + 1) - timedelta(days=1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def check_pack(fields: SeatPackFields) -> SeatPackFields:
    """The pack's fields checked, its end day filled in; `Invalid` on the first fault."""
    if (
        isinstance(fields.seats, bool)
        or not isinstance(fields.seats, int)
        or not 1 <= fields.seats <= MAX_PACK_SEATS
    ):
        raise Invalid(BAD_PACK_SEATS, field="seats", high=MAX_PACK_SEATS)
    ends_on = fields.ends_on or _one_year_on(fields.starts_on)
    if not fields.starts_on <= ends_on <= fields.starts_on + timedelta(days=MAX_PACK_DAYS):
        raise Invalid(BAD_PACK_DATES, field="ends_on")
    if fields.category not in PACK_CATEGORIES:
        raise Invalid(BAD_PACK_CATEGORY, field="category")
    reference = fields.reference.strip()
    if len(reference) > 100:
        raise Invalid(BAD_PACK_REFERENCE, field="reference")
    return replace(fields, ends_on=ends_on, reference=reference)


def _as_staff(ctx: TenantContext, staff: StaffContext) -> TenantContext:
    staff.require(StaffPermission.BILLING_MANAGE)
    # The audit log names the staff member, not whoever the tenant context was made for.
    return replace(ctx, actor=staff.actor)


async def add_seat_pack(
    ctx: TenantContext, staff: StaffContext, fields: SeatPackFields
) -> SeatPack:
    """Add a pack of seats to the tenant, by an account manager (`staff`, who needs the
    billing permission and is recorded as having added it); audited as
    `billing.seat_pack.added`."""
    acting = _as_staff(ctx, staff)
    fields = check_pack(fields)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """INSERT INTO seat_pack (tenant_id, id, seats, starts_on, ends_on, category,
                   reference, added_by, added_by_user_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *""",
            ctx.tenant_id,
            uuid4(),
            fields.seats,
            fields.starts_on,
            fields.ends_on,
            fields.category,
            fields.reference,
            (staff.actor.label or staff.role)[:200],
            staff.user_id,
        )
        pack = _pack(rows[0])
        await audit.record(
            acting,
            "billing.seat_pack.added",
            "seat_pack",
            pack.id,
            seats=pack.seats,
            starts_on=pack.starts_on.isoformat(),
            ends_on=pack.ends_on.isoformat(),
            category=pack.category,
            reference=pack.reference,
        )
    return pack


async def remove_seat_pack(
    ctx: TenantContext, staff: StaffContext, pack_id: UUID | str, *, at: datetime
) -> None:
    """Withdraw a pack (a mistake, a refund): its seats no longer count from `at`; seats
    already consumed stay consumed. The row stays, marked removed; audited as
    `billing.seat_pack.removed`. 404 alike for an unknown pack and another tenant's."""
    acting = _as_staff(ctx, staff)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """UPDATE seat_pack SET removed_at = $3
               WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL RETURNING *""",
            ctx.tenant_id,
            uuid_or_404(pack_id),
            at,
        )
        if not rows:
            raise NotFound()
        pack = _pack(rows[0])
        await audit.record(
            acting, "billing.seat_pack.removed", "seat_pack", pack.id, seats=pack.seats
        )


PACK_SEATS_IN_USE = N_(
    "{used} seats are already used this period and only {left} would be left without this "
    "pack: it cannot be removed before the period ends."
)


async def withdraw_seat_pack(
    ctx: TenantContext, staff: StaffContext, pack_id: UUID | str, *, at: datetime
) -> SeatPack:
    """`remove_seat_pack`, refused (`Conflict`, nothing written) when the seats already
    consumed in the current period would exceed the capacity left without the pack on `at`:
    those seats were used, and withdrawing their pack would leave them unpaid. The pack
    removed; 404 alike for an unknown pack, one removed already and another tenant's."""
    acting = _as_staff(ctx, staff)
    wanted = uuid_or_404(pack_id)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT * FROM seat_pack WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL
               FOR UPDATE""",
            ctx.tenant_id,
            wanted,
        )
        if not rows:
            raise NotFound()
        pack = _pack(rows[0])
        day = at.astimezone(UTC).date()
        summary = await _read_summary(ctx, at)
        if summary is not None and pack.valid_on(day):
            left = summary.capacity - pack.seats
            if summary.used > left:
                raise Conflict(PACK_SEATS_IN_USE, used=summary.used, left=max(left, 0))
        await execute(
            "UPDATE seat_pack SET removed_at = $3 WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            pack.id,
            at,
        )
        await audit.record(
            acting, "billing.seat_pack.removed", "seat_pack", pack.id, seats=pack.seats
        )
    return pack


# --- what the console reads ----------------------------------------------------------------


@dataclass(frozen=True)
class SeatSummary:
    """The seats of the subscription's current period."""

    period_start: datetime
    period_end: datetime
    status: str
    plan_kind: str
    policy: str
    capacity: int
    used: int
    #: seats consumed beyond the capacity (`warn` and `bill`)
    overage: int
    #: participants turned away for want of seats (`block`)
    refused: int

    @property
    def remaining(self) -> int:
        return max(self.capacity - self.used, 0)

    @property
    def percent_used(self) -> int:
        """Used seats in percent of the capacity (rounded down; 100 with no capacity)."""
        return self.used * 100 // self.capacity if self.capacity else 100


_SUMMARY = f"""
SELECT s.current_period_start, s.current_period_end, s.status, p.kind, p.overage_policy,
       {_capacity_sql("$2::date")} AS capacity,
       coalesce(b.used, 0) AS used, coalesce(b.overage, 0) AS overage,
       coalesce(b.refused, 0) AS refused
FROM subscription s JOIN plan p ON p.id = s.plan_id
LEFT JOIN seat_balance b ON b.tenant_id = $1 AND b.period_start = s.current_period_start
WHERE s.tenant_id = $1
"""  # noqa: S608 - constant clauses


def _summary(row: dict[str, Any]) -> SeatSummary:
    return SeatSummary(
        period_start=row["current_period_start"],
        period_end=row["current_period_end"],
        status=row["status"],
        plan_kind=row["kind"],
        policy=row["overage_policy"],
        capacity=row["capacity"],
        used=row["used"],
        overage=row["overage"],
        refused=row["refused"],
    )


async def _read_summary(ctx: TenantContext, at: datetime) -> SeatSummary | None:
    rows = await fetch(_SUMMARY, ctx.tenant_id, at.astimezone(UTC).date())
    return _summary(rows[0]) if rows else None


async def usage_summary(ctx: TenantContext, at: datetime | None = None) -> SeatSummary | None:
    """Seats used, capacity, remaining and policy of the current period at `at` (now by
    default); None when the tenant has no subscription (it is not billed). Needs the
    billing-read permission."""
    ctx.require(Permission.BILLING_READ)
    async with tenant_transaction(ctx):
        return await _read_summary(ctx, at or datetime.now(UTC))


@dataclass(frozen=True)
class SeatBanner:
    """What the console tells the tenant's admins of their seats on every page."""

    message: str
    params: dict[str, Any]


WARN_BANNER = N_(
    "Your organization uses {used} seats of the {capacity} it has for this period: add seats "
    "to stay within your plan."
)
BLOCK_BANNER = N_(
    "All {capacity} seats of this period are used: new participants are turned away until "
    "you add seats."
)
SUSPENDED_BANNER = N_(
    "Your subscription is suspended: campaigns take no new participants. Settle the unpaid "
    "invoices to reactivate it."
)

_BANNER = """
SELECT s.status, b.used, b.capacity, b.overage_policy, b.refused
FROM subscription s
LEFT JOIN seat_balance b ON b.tenant_id = $1 AND b.period_start = s.current_period_start
WHERE s.tenant_id = $1
"""


async def banner(ctx: TenantContext) -> SeatBanner | None:
    """The seat banner for the tenant's admins (None for anyone else, and when all is well):
    over capacity under `warn`, full with participants turned away under `block`, or the
    subscription suspended. One statement, in the caller's transaction or its own."""
    if not ctx.can(Permission.BILLING_READ):
        return None
    async with joined(ctx):
        rows = await fetch(_BANNER, ctx.tenant_id)
    if not rows:
        return None
    row = rows[0]
    if row["status"] == "suspended":
        return SeatBanner(SUSPENDED_BANNER, {})
    if row["used"] is None:
        return None
    figures = {"used": row["used"], "capacity": row["capacity"]}
    if row["overage_policy"] == "warn" and row["used"] > row["capacity"]:
        return SeatBanner(WARN_BANNER, figures)
    if row["overage_policy"] == "block" and row["refused"] and row["used"] >= row["capacity"]:
        return SeatBanner(BLOCK_BANNER, figures)
    return None


@dataclass(frozen=True)
class SeatDay:
    """Seats used by the end of a day of the period (in the organization's time zone)."""

    day: date
    consumed: int
    used: int


@dataclass(frozen=True)
class SeatUsageReport:
    """The usage page: the period's figures, its seats day by day, the packs."""

    summary: SeatSummary
    days: list[SeatDay]
    packs: list[SeatPack]


_DAILY = """
SELECT (u.consumed_at AT TIME ZONE $3)::date AS day, count(*)::integer AS consumed
FROM seat_usage u WHERE u.tenant_id = $1 AND u.period_start = $2
GROUP BY 1 ORDER BY 1
"""

_PACKS = """
SELECT * FROM seat_pack WHERE tenant_id = $1 AND removed_at IS NULL
ORDER BY starts_on DESC, created_at DESC, id
"""


def daily_usage(
    counts: dict[date, int], first: date, last: date, *, before: int = 0
) -> list[SeatDay]:
    """Every day from `first` to `last` with the seats consumed that day (`counts`) and the
    running total (from `before`, what earlier days counted)."""
    days: list[SeatDay] = []
    used = before
    day = first
    while day <= last:
        consumed = counts.get(day, 0)
        used += consumed
        days.append(SeatDay(day, consumed, used))
        day += timedelta(days=1)
    return days


async def usage_report(ctx: TenantContext, at: datetime | None = None) -> SeatUsageReport | None:
    """The usage page's figures at `at` (now by default): the current period's summary, its
    seats used day by day up to today (or the period's end), and the tenant's packs; None
    without a subscription. Needs the billing-read permission."""
    ctx.require(Permission.BILLING_READ)
    now = at or datetime.now(UTC)
    zone: ZoneInfo = ctx.tenant.zone
    async with tenant_transaction(ctx):
        summary = await _read_summary(ctx, now)
        if summary is None:
            return None
        daily = await fetch(_DAILY, ctx.tenant_id, summary.period_start, zone.key)
        packs = await fetch(_PACKS, ctx.tenant_id)
    first = summary.period_start.astimezone(zone).date()
    last = min(now, summary.period_end - timedelta(microseconds=1)).astimezone(zone).date()
    counts = {row["day"]: row["consumed"] for row in daily}
    before = sum(n for day, n in counts.items() if day < first)
    return SeatUsageReport(
        summary,
        daily_usage(counts, first, max(first, last), before=before),
        [_pack(r) for r in packs],
    )


# --- what invoicing reads ------------------------------------------------------------------


@dataclass(frozen=True)
class SeatOverage:
    """The seats consumed beyond the capacity in a period, which the `bill` policy charges;
    `billed`: those of the period an invoice already charged (`unbilled_overage`)."""

    period_start: datetime
    seats: int
    billed: int = 0


# The ledger's own period rows: a period is the one its seats were consumed in (the
# subscription's `current_period_start` then), whatever its length.
_UNBILLED = """
SELECT period_start, overage - overage_billed AS seats, overage_billed AS billed
FROM seat_balance
WHERE tenant_id = $1 AND period_start < $2 AND overage_policy = 'bill'
  AND overage > overage_billed
ORDER BY period_start
"""


async def unbilled_overage(
    ctx: TenantContext, before: datetime, *, lock: bool = False
) -> list[SeatOverage]:
    """The overage seats not billed yet of every period that began before `before` (the start
    of the period being invoiced, or the end of the last one at cancellation) under the
    `bill` policy, oldest first, in the caller's transaction or its own. Read from the
    ledger's period rows rather than by working out the previous period's dates, so that a
    period of any length (a month clamped to its last day, a trial, a period begun early by
    "invoice me") is found, and a period skipped by an earlier invoice is not lost. With
    `lock`, the rows stay locked until the transaction ends (an invoice taking them)."""
    sql = _UNBILLED + (" FOR UPDATE" if lock else "")
    async with joined(ctx):
        rows = await fetch(sql, ctx.tenant_id, before)
    return [SeatOverage(row["period_start"], row["seats"], row["billed"]) for row in rows]


async def mark_overage_billed(ctx: TenantContext, owed: list[SeatOverage]) -> int:
    """Record that `owed` (from `unbilled_overage`) is billed, in the caller's transaction or
    its own: each period's count moves on by its seats, unless another run recorded it first
    (the count is no longer the one read). How many periods were recorded."""
    recorded = 0
    async with joined(ctx):
        for overage in owed:
            rows = await fetch(
                """UPDATE seat_balance SET overage_billed = overage_billed + $3
                   WHERE tenant_id = $1 AND period_start = $2 AND overage_billed = $4
                   RETURNING id""",
                ctx.tenant_id,
                overage.period_start,
                overage.seats,
                overage.billed,
            )
            recorded += len(rows)
    return recorded
