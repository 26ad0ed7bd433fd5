"""Checking the back office's string path parameters (a plan's code, a gateway and its event
id, a challenge's id) before any query: a value outside its format names nothing, so it is a
404, never a database error (PostgreSQL's text cannot hold NUL, and asyncpg refuses it)."""

from __future__ import annotations

import re

from core.errors import NotFound

#: A gateway's name (`billing.gateways.GATEWAYS`: "manual", "stripe").
GATEWAY = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: A gateway's event id (Stripe's `evt_…`; the column holds 255 characters).
GATEWAY_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,255}")
#: A bank's challenge id: printable, no control character, at most 200 characters (the
#: length the problem-report tables accept).
CHALLENGE_ID = re.compile(r"[^\x00-\x1f\x7f/]{1,200}")


def path_token(value: str, pattern: re.Pattern[str]) -> str:
    """`value` if the whole of it matches `pattern`; `NotFound` otherwise."""
    if not pattern.fullmatch(value):
        raise NotFound()
    return value
