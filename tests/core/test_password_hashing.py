"""Password hashing on a bounded pool of threads (ADR 0023): a storm of sign-ins waits its
turn instead of taking every core, and 64 MiB per hash, from the pages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from core import security
from core.settings import get_settings


@pytest.fixture
def hashing_threads() -> Iterator[None]:
    """The pool is set for a test and put back to the setting's size after it."""
    yield
    security.configure_hashing(get_settings().password_hash_threads)


@pytest.mark.parametrize("threads", [1, 2])
async def test_concurrent_hashes_never_exceed_the_threads(
    hashing_threads: None, threads: int
) -> None:
    security.configure_hashing(threads)
    security.hashing_peak(reset=True)
    hashes = await asyncio.gather(*(security.hash_password(f"secret {i}") for i in range(6)))
    checks = await asyncio.gather(
        *(security.verify_password(h, f"secret {i}") for i, h in enumerate(hashes)),
        security.verify_password(hashes[0], "wrong"),
        security.verify_password(None, "no account"),
    )
    assert checks == [True] * 6 + [False, False]
    assert 1 <= security.hashing_peak() <= threads


async def test_the_event_loop_keeps_running_while_hashes_queue(hashing_threads: None) -> None:
    # While a storm of hashes waits for the one thread, the loop still runs other work.
    security.configure_hashing(1)
    storm = asyncio.gather(*(security.hash_password("storm") for _ in range(4)))
    ticks = 0
    while not storm.done():
        ticks += 1
        await asyncio.sleep(0)
    await storm
    assert ticks > 4


async def test_a_cancelled_sign_in_leaves_the_queue(hashing_threads: None) -> None:
    security.configure_hashing(1)
    first = asyncio.ensure_future(security.hash_password("first"))
    waiting = asyncio.ensure_future(security.hash_password("waiting"))
    await asyncio.sleep(0)
    waiting.cancel()
    assert (await first).startswith("$argon2id$")
    with pytest.raises(asyncio.CancelledError):
        await waiting


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import load_settings

    monkeypatch.setenv("JALON_PASSWORD_HASH_THREADS", "3")
    assert load_settings().password_hash_threads == 3
    monkeypatch.setenv("JALON_PASSWORD_HASH_THREADS", "0")
    assert load_settings().password_hash_threads == 1


async def test_a_hash_of_older_parameters_verifies_and_is_rehashed_at_sign_in(db: str) -> None:
    """Accounts hashed with argon2-cffi's default (64 MiB, 3 passes, 4 lanes) still sign in,
    and leave with the parameters Jalon hashes with now (ADR 0023)."""
    from argon2 import PasswordHasher

    from core.database import execute, fetch, global_transaction
    from core.ratelimit import MemoryRateLimiter
    from tenants.accounts import authenticate, create_user

    user = await create_user("old.hash@example.org", "Old Hash", "an old password", "en")
    old = PasswordHasher().hash("an old password")
    assert security.needs_rehash(old)
    async with global_transaction():
        await execute("UPDATE user_account SET password_hash = $2 WHERE id = $1", user.id, old)
    account = await authenticate(
        "old.hash@example.org", "an old password", "127.0.0.1", MemoryRateLimiter(), get_settings()
    )
    assert account.id == user.id
    async with global_transaction():
        rows = await fetch("SELECT password_hash FROM user_account WHERE id = $1", user.id)
    stored = rows[0]["password_hash"]
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not security.needs_rehash(stored)
