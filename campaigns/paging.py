"""Keyset paging, shared by the listings of `campaigns.campaign_listing` and
`campaigns.learner_listing`: the `Page` they return, the page size limits, the cursors that
go both ways, and the query builder that reads one page.

A listing is a keyset page: rows in a fixed order, `limit` at a time, resumed from an opaque
cursor that names the boundary row (its timestamp and id), newest first. A page costs one
query, whatever `limit` is. Design: docs/adr/0015-paged-listings-and-cursors.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from core import keyset
from core.database import fetch
from core.errors import Invalid

#: Items per page unless asked otherwise, and the most a page holds.
DEFAULT_LIMIT = 50
MAX_LIMIT = 100

_FORWARD, _BACKWARD = "n", "p"

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: pass `next_cursor` back for the following page (None on the
    last), `previous_cursor` for the one before (None on the first)."""

    items: list[T]
    next_cursor: str | None
    previous_cursor: str | None


@dataclass(frozen=True)
class Cursor:
    """A position in a listing: the sort key of the boundary row, and which way to go."""

    direction: str
    stamp: datetime
    ident: UUID


def encode_cursor(direction: str, stamp: datetime, ident: UUID) -> str:
    """The opaque, URL-safe text of a cursor."""
    return keyset.pack(direction, stamp.isoformat(), str(ident))


def decode_cursor(cursor: str | None) -> Cursor | None:
    """The position a cursor names; None for none, `Invalid` for a forged or mangled one."""
    parts = keyset.unpack(cursor, 3)
    if parts is None:
        return None
    direction, stamp, ident = parts
    if direction not in (_FORWARD, _BACKWARD):
        raise Invalid("This page link is not valid.", field="cursor")
    return Cursor(direction, keyset.parse_stamp(stamp), keyset.parse_id(ident))


def check_limit(limit: int) -> int:
    """`limit` when it is between 1 and `MAX_LIMIT`; `Invalid` otherwise."""
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise Invalid("Ask for between 1 and {max} items per page.", field="limit", max=MAX_LIMIT)
    return limit


class Query:
    """Bound parameters and WHERE conditions of one listing, numbered as they are added."""

    def __init__(self, *args: Any) -> None:
        self.args: list[Any] = list(args)
        self.conditions: list[str] = []

    def param(self, value: Any) -> str:
        """Bind `value`; its placeholder (`$n`) to write in a condition."""
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, condition: str) -> None:
        """Add a condition, joined to the others with AND."""
        self.conditions.append(condition)

    @property
    def clause(self) -> str:
        """The conditions, each after an AND, to follow a WHERE that has one already."""
        return "".join(f" AND {condition}" for condition in self.conditions)


async def keyset_page(
    select: str,
    query: Query,
    key: tuple[str, str],
    cursor: Cursor | None,
    limit: int,
    build: Callable[[Mapping[str, Any]], T],
    stamp_of: str,
) -> Page[T]:
    """Run `select` (which ends with a WHERE clause and takes `{resume}`, `{order}` and
    `{limit}`) for one page, newest first by `key` (a timestamp column, then an id column).

    Going back reads the rows just newer than the cursor in ascending order and flips them;
    when fewer than a page remain before it, the first page is read instead (two queries)."""
    stamp_col, id_col = key

    def run(at: Cursor | None) -> tuple[str, list[Any]]:
        q = Query(*query.args)
        q.conditions = list(query.conditions)
        backward = at is not None and at.direction == _BACKWARD
        if at is not None:
            op = ">" if backward else "<"
            q.where(f"({stamp_col}, {id_col}) {op} ({q.param(at.stamp)}, {q.param(at.ident)})")
        order = "ASC" if backward else "DESC"
        sql = select.format(
            resume=q.clause,
            order=f"{stamp_col} {order}, {id_col} {order}",
            limit=q.param(limit + 1),
        )
        return sql, q.args

    sql, args = run(cursor)
    rows = await fetch(sql, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    if cursor is not None and cursor.direction == _BACKWARD:
        if not more and len(rows) < limit:
            sql, args = run(None)
            rows = (await fetch(sql, *args))[: limit + 1]
            has_next, has_previous = len(rows) > limit, False
            rows = rows[:limit]
        else:
            rows.reverse()
            has_next, has_previous = True, more
    else:
        has_next, has_previous = more, cursor is not None
    items = [build(row) for row in rows]
    if not rows:
        return Page(items, None, None)
    first, last = rows[0], rows[-1]
    return Page(
        items,
        encode_cursor(_FORWARD, last[stamp_of], last["id"]) if has_next else None,
        encode_cursor(_BACKWARD, first[stamp_of], first["id"]) if has_previous else None,
    )
