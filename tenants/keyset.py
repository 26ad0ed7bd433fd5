"""Keyset pagination cursors: the (timestamp, id) of the last row of a page, made opaque.

A cursor is URL-safe as it is (no `+`, `/` or `=`), so clients may pass it back unencoded.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from core.errors import Invalid


def encode_cursor(stamp: datetime, ident: UUID) -> str:
    """The cursor that resumes a listing right after the row (`stamp`, `ident`)."""
    raw = f"{stamp.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (timestamp, id) a cursor names; None for no cursor, `Invalid` for a forged one."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp_text, _, ident_text = raw.partition("|")
        stamp, ident = datetime.fromisoformat(stamp_text), UUID(ident_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid("This page link is not valid.", field="cursor") from None
    if stamp.tzinfo is None:
        raise Invalid("This page link is not valid.", field="cursor")
    return stamp, ident
