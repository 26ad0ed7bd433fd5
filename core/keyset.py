"""Keyset pagination cursors, made opaque: the position of a page's edge row.

`pack`/`unpack` carry any few text parts (the last may hold anything, `|` included);
`encode_cursor`/`decode_cursor` the usual (timestamp, id) pair; `parse_stamp` reads a
timestamp part. A cursor is URL-safe as it is (no `+`, `/` or `=`), so clients may pass it
back unencoded; a forged or mangled one is `Invalid` ("This page link is not valid.").
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from datetime import UTC, datetime
from uuid import UUID

from core.errors import Invalid

#: The longest cursor accepted (a few parts: a name, a timestamp, an id).
MAX_LENGTH = 1000


def _refused() -> Invalid:
    return Invalid("This page link is not valid.", field="cursor")


def pack(*parts: str) -> str:
    """An opaque cursor of `parts`; only the last may contain `|`."""
    raw = "|".join(parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack(cursor: str | None, count: int) -> list[str] | None:
    """The `count` parts of a cursor, None for no cursor; `Invalid` for a forged one (wrong
    shape, or control characters: nothing we write has them)."""
    if not cursor:
        return None
    if len(cursor) > MAX_LENGTH:
        raise _refused()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _refused() from None
    parts = raw.split("|", count - 1)
    if len(parts) != count or any(unicodedata.category(ch).startswith("C") for ch in raw):
        raise _refused()
    return parts


def parse_stamp(text: str) -> datetime:
    """A cursor's timestamp, in UTC as the database compares it; `Invalid` unless it is an
    aware ISO timestamp that converts (a forged date at the calendar's edge does not)."""
    try:
        stamp = datetime.fromisoformat(text)
        if stamp.tzinfo is None:
            raise _refused()
        return stamp.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _refused() from None


def parse_id(text: str) -> UUID:
    """A cursor's row id; `Invalid` unless it is a UUID."""
    try:
        return UUID(text)
    except ValueError:
        raise _refused() from None


def encode_cursor(stamp: datetime, ident: UUID) -> str:
    """The cursor that resumes a listing right after the row (`stamp`, `ident`)."""
    return pack(stamp.isoformat(), str(ident))


def decode_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (timestamp, id) a cursor names; None for no cursor, `Invalid` for a forged one."""
    parts = unpack(cursor, 2)
    if parts is None:
        return None
    return parse_stamp(parts[0]), parse_id(parts[1])
