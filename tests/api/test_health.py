"""Liveness and readiness probes, for load balancers and orchestrators."""

from __future__ import annotations

import dataclasses
import os
import socket

import httpx

from api.app import create_app
from core.settings import Settings
from tests.api.running import asgi_transport, running


async def test_healthz_answers_without_touching_anything(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    if os.environ.get("REDIS_URL"):
        assert body["redis"] == "ok"
    else:
        assert "redis" not in body


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_readyz_says_unavailable_when_redis_is_down(db: str, settings: Settings) -> None:
    down = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    async with running(create_app(down)) as app:
        transport = asgi_transport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "unavailable"}


async def test_readyz_is_ready_while_every_pooled_connection_is_lent(
    client: httpx.AsyncClient,
) -> None:
    """A busy instance is not a broken one: readiness asks the database on a connection of
    its own, so a peak that lends every pooled connection does not take it out of rotation."""
    from core.database import DB

    pool = DB.pool
    assert pool is not None
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        response = await client.get("/readyz")
    finally:
        for connection in held:
            await pool.release(connection)
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
