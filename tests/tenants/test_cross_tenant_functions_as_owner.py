"""The cross-tenant functions work where the owner is not a superuser, as in production
(ADR 0024): tables force row-level security on their owner too, so the owner's `SECURITY
DEFINER` functions read through the `owner_*` policies, and only them. The suite's owner is a
superuser, which row-level security never binds: this test migrates a database of its own
with a plain owner role, as `jalon migrate` does in production."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest

from core import database
from core.settings import Settings
from tests.conftest import CITUS_WORKERS

ROOT = Path(__file__).resolve().parents[2]
OWNER = f"jalon_test_owner_{os.getpid()}"
SCRATCH = f"jalon_test_plain_owner_{os.getpid()}"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(CITUS_WORKERS), reason="a second Citus database would need its workers joined"
    ),
]


@pytest.fixture
async def plain_owner(
    owner_url: str, settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """A database owned by a role that is neither superuser nor BYPASSRLS, migrated by it:
    its owner URL and its runtime URL."""
    server = database.with_database(owner_url, "postgres")
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE ROLE "{OWNER}" LOGIN NOSUPERUSER NOBYPASSRLS')
        await admin.execute(f'CREATE DATABASE "{SCRATCH}" OWNER "{OWNER}"')
        url = database.with_user(database.with_database(server, SCRATCH), OWNER, None)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "JALON_ENV": "development",
            "JALON_DATA_DIR": str(tmp_path),
        }
        subprocess.run(  # noqa: ASYNC221 - set-up, before anything is measured
            [sys.executable, "-m", "api.cli", "migrate"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        yield url, database.runtime_url(settings, url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{OWNER}"')
        await admin.close()


async def _tenant(owner: asyncpg.Connection, email: str) -> UUID:
    """An organization with one member and one due webhook delivery, written by the owner in
    the organization's own transaction (row-level security binds the owner)."""
    tenant, user, endpoint = uuid4(), uuid4(), uuid4()
    await owner.execute(
        """INSERT INTO organization (id, name, slug, kind, country)
           VALUES ($1, $2, $2, 'school', 'FR')""",
        tenant,
        f"t{tenant.hex[:12]}",
    )
    await owner.execute(
        "INSERT INTO user_account (id, email, name) VALUES ($1, $2, 'Someone')", user, email
    )
    async with owner.transaction():
        await owner.execute(f"SET LOCAL jalon.tenant_id = '{tenant}'")
        await owner.execute(
            "INSERT INTO membership (tenant_id, id, user_id, role) VALUES ($1, $2, $3, 'owner')",
            tenant,
            uuid4(),
            user,
        )
        await owner.execute(
            """INSERT INTO webhook_endpoint (tenant_id, id, url, events, secret)
               VALUES ($1, $2, 'https://hooks.example.org/in', ARRAY['ping'], $3)""",
            tenant,
            endpoint,
            "s" * 40,
        )
        await owner.execute(
            """INSERT INTO webhook_delivery
                   (tenant_id, id, endpoint_id, event_type, event_id, payload, next_attempt_at)
               VALUES ($1, $2, $3, 'ping', $4, '{}', now() - interval '1 minute')""",
            tenant,
            uuid4(),
            endpoint,
            uuid4(),
        )
    return tenant


async def test_the_functions_read_across_tenants_with_a_plain_owner(
    plain_owner: tuple[str, str],
) -> None:
    owner_url, runtime_url = plain_owner
    owner = await asyncpg.connect(owner_url)
    try:
        assert not await owner.fetchval(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        a = await _tenant(owner, "ada@a.example")
        b = await _tenant(owner, "bob@b.example")
        # The owner, outside its functions and with no tenant, reads only what its policies
        # admit: pending deliveries and the book's tables, no endpoint.
        assert await owner.fetchval("SELECT count(*) FROM webhook_endpoint") == 0
    finally:
        await owner.close()
    runtime = await asyncpg.connect(runtime_url)
    try:
        async with runtime.transaction():
            await runtime.execute("SET LOCAL jalon.sweep = 'webhook_delivery'")
            await runtime.execute("SET LOCAL jalon.book = 'tenants'")
            assert await runtime.fetch("SELECT 1 FROM webhook_delivery") == []
            assert await runtime.fetch("SELECT 1 FROM membership") == []
            due = await runtime.fetch("SELECT tenant_id FROM webhook_due_deliveries(10)")
            matched = await runtime.fetch("SELECT id FROM book_matching_tenants('%.example', NULL)")
            per_day = await runtime.fetch(
                "SELECT * FROM book_assessments_per_day(now() - interval '1 day', now())"
            )
            revenue = await runtime.fetch(
                "SELECT * FROM book_revenue(now() - interval '1 year', now())"
            )
    finally:
        await runtime.close()
    assert {row["tenant_id"] for row in due} == {a, b}
    assert {row["id"] for row in matched} == {a, b}
    assert per_day == []
    assert revenue == []
