"""Keyset cursors: opaque, URL-safe, and anything forged is a 4xx, never a crash."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from core import keyset
from core.errors import Invalid


def test_parts_round_trip_and_the_last_may_hold_the_separator() -> None:
    cursor = keyset.pack("n", "Dupont | Marie")
    assert all(ch.isalnum() or ch in "-_" for ch in cursor)
    assert keyset.unpack(cursor, 2) == ["n", "Dupont | Marie"]
    assert keyset.unpack(None, 2) is None
    stamp, ident = datetime(2026, 12, 1, 9, 30, tzinfo=UTC), uuid4()
    assert keyset.decode_cursor(keyset.encode_cursor(stamp, ident)) == (stamp, ident)


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!!",
        keyset.pack("only one part"),
        keyset.pack("a\x00", str(uuid4())),  # nothing we write holds control characters
        keyset.pack("2026-12-01T09:30:00", str(uuid4())),  # no time zone
        keyset.pack("0001-01-01T00:00:00+14:00", str(uuid4())),  # beyond the calendar in UTC
        keyset.pack("2026-12-01T09:30:00+00:00", "1234"),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
        "A" * (keyset.MAX_LENGTH + 1),
    ],
)
def test_a_forged_cursor_is_refused_with_a_message(cursor: str) -> None:
    with pytest.raises(Invalid) as caught:
        keyset.decode_cursor(cursor)
    assert (caught.value.field, caught.value.message) == ("cursor", "This page link is not valid.")
