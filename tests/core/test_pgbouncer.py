"""The runtime pool through PgBouncer in transaction mode (scripts/pgbouncer.sh, Debian's
pgbouncer installed by `make system`): server connections pass from tenant to tenant between
transactions, and no tenant's setting or rows follow them.

`make test-pgbouncer` runs the isolation and campaign suites this way; this test keeps the
point in `make test`, on a PgBouncer of its own on a free port, stopped at the end."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core import database
from core.database import SystemScope, fetch, global_transaction, tenant_transaction
from tests.conftest import TenantFixture

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pgbouncer.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pgbouncer(command: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), command, *args],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbouncer.sh {command}: {done.stderr}")
    return done.stdout.strip()


@pytest.fixture
async def through_pgbouncer(db: str) -> AsyncIterator[str]:
    """The shared pool reconnected through a PgBouncer of this test's own, then restored."""
    if shutil.which("pgbouncer", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbouncer is missing (make system installs it)")
        pytest.skip("pgbouncer is not installed (make system)")
    parts = urlsplit(db)
    if parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
        pytest.skip("PgBouncer fronts a TCP server here; the database is on a socket")
    directory = tempfile.mkdtemp(prefix="jalon-pgbouncer-")
    env = dict(
        os.environ,
        PGBOUNCER_PORT=str(_free_port()),
        PGBOUNCER_DIR=directory,
        PGBOUNCER_SERVER_HOST="127.0.0.1",
        PGBOUNCER_SERVER_PORT=str(parts.port),
        PGBOUNCER_POOL_SIZE="2",  # fewer server connections than clients: they are shared
        PGBOUNCER_USERS=parts.username or "",
    )
    _pgbouncer("start", env)
    try:
        via = urlsplit(_pgbouncer("url", env, parts.username or "", parts.path.lstrip("/")))
        url = f"postgresql://{via.netloc}{via.path}?{via.query}" if via.query else via.geturl()
        await database.close_pool()
        database.configure(url, pool_size=8)
        await database.start_pool()
        try:
            yield url
        finally:
            await database.close_pool()
            database.configure(db, pool_size=5)
            await database.start_pool()
    finally:
        _pgbouncer("stop", env)
        shutil.rmtree(directory, ignore_errors=True)


async def test_tenants_share_server_connections_and_nothing_else(
    through_pgbouncer: str, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    async def in_tenant(own: TenantFixture, other: TenantFixture) -> tuple[str, int, int]:
        async with tenant_transaction(SystemScope(own.id)):
            setting = await fetch("SELECT current_setting('jalon.tenant_id', true) AS t")
            mine = await fetch("SELECT count(*) AS n FROM membership WHERE tenant_id = $1", own.id)
            theirs = await fetch(
                "SELECT count(*) AS n FROM membership WHERE tenant_id = $1", other.id
            )
        return setting[0]["t"], mine[0]["n"], theirs[0]["n"]

    async def tenantless() -> str | None:
        async with global_transaction():
            rows = await fetch("SELECT current_setting('jalon.tenant_id', true) AS t")
        value: str | None = rows[0]["t"]
        return value

    for _ in range(5):
        work = [in_tenant(tenant_a, tenant_b), in_tenant(tenant_b, tenant_a), tenantless()] * 8
        results = await asyncio.gather(*work)
        for index, result in enumerate(results):
            if index % 3 == 2:
                assert result in (None, ""), "a tenant's setting outlived its transaction"
            else:
                own = tenant_a if index % 3 == 0 else tenant_b
                assert result == (str(own.id), 2, 0)
