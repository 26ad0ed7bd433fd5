"""The mail the code under test sent, read from the outbox (the database's `mail_message`,
which the development outbox page shows): the bodies sent to an address, and the links in
the latest one, as paths to request."""

from __future__ import annotations

import re

from core import database


async def mails_to(address: str) -> list[str]:
    """The bodies of the mail sent to `address`, oldest first."""
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT body_text FROM mail_message WHERE to_address = $1 ORDER BY created_at, id",
            address,
        )
    return [row["body_text"] for row in rows]


async def last_link(address: str, path: str) -> str:
    """The path (and query) of the link in the latest mail to `address` whose path matches
    `path`, a regular expression such as r"/login/link/\\S+": the instance's address
    (JALON_BASE_URL) cut off. Fails when that mail has no such link."""
    bodies = await mails_to(address)
    assert bodies, f"no mail to {address}"
    match = re.search(r"https?://[^/\s]+(" + path + ")", bodies[-1])
    assert match, bodies[-1]
    return match.group(1)
