"""Closing the database pool never hangs on a connection that was borrowed and not returned
(a stuck task must not hang a shutdown, nor a test that reconnects the pool)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from core import database


async def test_closing_the_pool_does_not_wait_forever_for_a_borrowed_connection(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "CLOSE_GRACE_SECONDS", 0.2)
    pool = database.DB.pool
    assert pool is not None
    borrowed = await pool.acquire()  # as a task that never gives it back would
    try:
        await asyncio.wait_for(database.close_pool(), timeout=10)
        assert database.DB.pool is None
        with pytest.raises(asyncpg.InterfaceError):  # the borrowed one was taken back, closed
            await borrowed.fetch("SELECT 1")
    finally:
        database.configure(db, pool_size=5)
        await database.start_pool()
    async with database.global_transaction():  # the suite's pool works again
        assert await database.fetch("SELECT 1 AS one") == [{"one": 1}]
