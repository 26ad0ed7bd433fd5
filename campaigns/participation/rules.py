"""The rules of a participation, as pure functions: no I/O, no database, and no clock of their
own (the caller passes `now` and the seconds a challenge has been shown).

They raise the participant's errors (`NotFound`, `Gone`, `Conflict`) with the messages the
pages show, so the use cases of this package (and a participant's problem reports,
`campaigns.problem_reports`) state each rule once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from core.errors import Conflict, Gone, NotFound

UNKNOWN_CODE_MESSAGE = "No campaign has this code. Check it and try again."
CLOSED_MESSAGE = "This campaign is closed."
#: Seconds past a timed challenge's limit still accepted (the page's round trip).
TIMER_GRACE_SECONDS = 5
#: A participant may ask for more time on a timed challenge (WCAG 2.2.1, "Timing Adjustable":
#: extend the limit with a simple action, at least ten times); each request adds the
#: challenge's whole time again, up to this many times its time left at once.
TIMER_EXTENSION_CAP = 10


# --- whether a campaign takes participants ---------------------------------------------------


def refuse_unless_accepting(
    status: str, opens_at: datetime | None, closes_at: datetime | None, now: datetime
) -> None:
    """Raise unless a campaign in `status`, open from `opens_at` until `closes_at`, takes a new
    participation at `now`: a draft is `NotFound` (like an unknown code), a closed or archived
    one or one past its end is `Gone`, one not open yet a `Conflict` with its opening date."""
    if status == "draft":
        raise NotFound(UNKNOWN_CODE_MESSAGE)
    if status != "active":
        raise Gone(CLOSED_MESSAGE)
    if opens_at is not None and opens_at > now:
        raise Conflict("This campaign opens on {date}.", date=opens_at.date().isoformat())
    if closes_at is not None and closes_at <= now:
        raise Gone("This campaign has ended.")


def refuse_if_archived(status: str) -> None:
    """Raise `Gone` when a campaign in `status` is archived: its participants no longer reach
    their participations (to resume, answer, share or report a problem), whereas a closed
    campaign still lets them finish and share what they started."""
    if status == "archived":
        raise Gone(CLOSED_MESSAGE)


# --- retakes ---------------------------------------------------------------------------------


def returns_latest(latest_status: str | None, *, retake: bool) -> bool:
    """Whether starting hands back the participant's latest participation (status
    `latest_status`, None when they have none) rather than a new one: a started one is always
    resumed, a finished one is returned unless `retake` asks for another attempt."""
    return latest_status is not None and (latest_status == "started" or not retake)


def refuse_retake_unless_due(
    *, allowed: bool, completed_at: datetime, delay_days: int, now: datetime
) -> None:
    """Raise a `Conflict` unless a participant whose last attempt completed at `completed_at`
    may try again at `now`: the campaign must allow retakes, and `delay_days` whole days must
    have passed (the error gives the date from which they may)."""
    if not allowed:
        raise Conflict("This campaign does not allow another attempt.")
    again = completed_at + timedelta(days=delay_days)
    if again > now:
        raise Conflict("You can try again from {date}.", date=again.date().isoformat())


# --- the test's language ---------------------------------------------------------------------


def choose_locale(asked: str | None, account: str | None, offered: Sequence[str]) -> str:
    """The language of a new test: `asked` (the page's) when the campaign offers it, else the
    participant's `account` language if offered, else the campaign's first language."""
    candidates = [x for x in (asked, account) if x and x in offered]
    return candidates[0] if candidates else str(offered[0])


# --- timed challenges ------------------------------------------------------------------------


def seconds_left(timer_seconds: int | None, seconds_shown: float | None) -> int | None:
    """The whole seconds left to answer a challenge with `timer_seconds` (None: not timed) that
    a page first showed `seconds_shown` seconds ago (None: not shown yet, the full time)."""
    if timer_seconds is None:
        return None
    return max(0, timer_seconds - math.floor(seconds_shown or 0.0))


#: Why more time is refused once the time (and its grace) has run out.
TIME_UP_MESSAGE = "The time for this question is up."


def time_is_up(timer_seconds: int, seconds_shown: float) -> bool:
    """Whether a challenge of `timer_seconds` shown `seconds_shown` seconds ago is past its
    time and `TIMER_GRACE_SECONDS`: an answer now is late, and more time is refused (WCAG
    2.2.1 extends a limit before it runs out; afterwards it would turn a late answer into
    one on time)."""
    return seconds_shown > timer_seconds + TIMER_GRACE_SECONDS


def extended_seconds_left(timer_seconds: int, seconds_shown: float) -> float:
    """The seconds left after asking for more time, before it is up (`time_is_up`), on a
    challenge of `timer_seconds` shown `seconds_shown` seconds ago: what was left (nothing
    within the grace after the time) plus the whole time again, at most
    `TIMER_EXTENSION_CAP` times the time."""
    left = max(0.0, timer_seconds - seconds_shown)
    return min(left + timer_seconds, float(TIMER_EXTENSION_CAP * timer_seconds))


def is_late(timer_seconds: int | None, seconds_shown: float | None, *, skipped: bool) -> bool:
    """Whether an answer comes too late: the challenge is timed, a page showed it, and more
    than its time plus `TIMER_GRACE_SECONDS` (the network) has passed since. A skip is never
    late (it counts as wrong anyway)."""
    return (
        not skipped
        and timer_seconds is not None
        and seconds_shown is not None
        and time_is_up(timer_seconds, seconds_shown)
    )
