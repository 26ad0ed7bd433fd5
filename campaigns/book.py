"""The book of business, campaigns' half: assessments started and completed per day across
every tenant, for the back office's dashboard (read in `tenants.book.dangerously_open_book`'s
transaction, through the owner's `SECURITY DEFINER` function `book_assessments_per_day`, ADR
0024).

An assessment is started when its participation is created (`participation.created_at`) and
completed when the participant finished it (`completed_at`); days are UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from core.database import fetch
from tenants.book import dangerously_open_book
from tenants.context import StaffContext

#: How many days the dashboard shows, today included.
DAYS = 30


@dataclass(frozen=True)
class DayActivity:
    """Assessments started and completed on one UTC day."""

    day: date
    started: int
    completed: int


async def dangerously_assessments_per_day(
    staff: StaffContext, at: datetime | None = None, days: int = DAYS
) -> list[DayActivity]:
    """Every day of the last `days` up to `at` (now by default), oldest first, with the
    assessments started and completed that day in every tenant (zeros included)."""
    today = (at or datetime.now(UTC)).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(today + timedelta(days=1), time(), UTC)
    async with dangerously_open_book(staff):
        rows = await fetch("SELECT what, day, n FROM book_assessments_per_day($1, $2)", start, end)
    counts: dict[tuple[str, date], int] = {(row["what"], row["day"]): row["n"] for row in rows}
    return [
        DayActivity(
            day=(day := first + timedelta(days=offset)),
            started=counts.get(("started", day), 0),
            completed=counts.get(("completed", day), 0),
        )
        for offset in range(days)
    ]
