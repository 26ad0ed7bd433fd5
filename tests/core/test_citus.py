"""On a Citus cluster (`make test-citus`), the migrations leave every tenant-owned table
distributed by `tenant_id` and co-located, and every global table a reference table; on a
single PostgreSQL, nothing is distributed and the suite says which it ran on."""

from __future__ import annotations

import asyncpg

from core import citus
from tests.conftest import CITUS_WORKERS


async def _catalog(owner_url: str) -> tuple[bool, list[asyncpg.Record], list[str], set[str]]:
    conn = await asyncpg.connect(owner_url)
    try:
        on_citus = await citus.has_citus(conn)
        tables = [
            row["relname"]
            for row in await conn.fetch(
                """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"""
            )
        ]
        tenant_owned = {
            row["table_name"]
            for row in await conn.fetch(
                """SELECT table_name FROM information_schema.columns
                   WHERE table_schema = 'public' AND column_name = 'tenant_id'"""
            )
        }
        placed = (
            await conn.fetch(
                """SELECT table_name::text AS name, citus_table_type AS kind,
                          distribution_column AS column, colocation_id
                   FROM citus_tables"""
            )
            if on_citus
            else []
        )
    finally:
        await conn.close()
    return on_citus, placed, tables, tenant_owned


async def test_the_suite_runs_on_the_database_it_was_asked_for(owner_url: str) -> None:
    on_citus, _, _, _ = await _catalog(owner_url)
    assert on_citus == bool(CITUS_WORKERS)


async def test_every_table_is_placed_on_citus_by_its_tenant_or_as_a_reference(
    owner_url: str,
) -> None:
    on_citus, placed, tables, tenant_owned = await _catalog(owner_url)
    if not on_citus:
        assert placed == []  # a single node: nothing to place
        assert tenant_owned
        return
    by_name = {row["name"]: row for row in placed}
    ours = [table for table in tables if table not in citus.LOCAL_TABLES]
    assert sorted(set(ours) - set(by_name)) == []
    distributed = {name: row for name, row in by_name.items() if name in tenant_owned}
    assert {row["kind"] for row in distributed.values()} == {"distributed"}
    assert {row["column"] for row in distributed.values()} == {"tenant_id"}
    assert len({row["colocation_id"] for row in distributed.values()}) == 1
    references = {name: row for name, row in by_name.items() if name not in tenant_owned}
    assert {row["kind"] for row in references.values()} == {"reference"}
    assert "organization" in references


async def test_distributing_again_changes_nothing(owner_url: str) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        if await citus.has_citus(conn):
            assert await citus.distribute(conn) == []
        else:
            assert not CITUS_WORKERS
    finally:
        await conn.close()
