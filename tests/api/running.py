"""Run the application's lifespan on the test's own event loop, as an ASGI server would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[Litestar]:
    """Start `app` (its lifespan) and stop it on exit.

    The lifespan is entered and exited in one task of its own, so a session-scoped fixture,
    whose set-up and tear-down run in different tasks, can hold it.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold())
    await started.wait()
    try:
        yield app
    finally:
        stop.set()
        await task
