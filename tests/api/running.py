"""Run the application's lifespan on the test's own event loop, as an ASGI server would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
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


def asgi_transport(app: Litestar) -> httpx.ASGITransport:
    """A transport calling `app` in-process, on the test's event loop, from 127.0.0.1."""
    # httpx types the ASGI callable with plain mappings; Litestar's takes its own scope types.
    return httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))  # type: ignore[arg-type]
