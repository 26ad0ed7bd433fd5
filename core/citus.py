"""Distribution on Citus: every tenant-owned table sharded by `tenant_id`, co-located, and every
global table a reference table (a copy on each node), done by `jalon migrate` after the
migrations when the database has the `citus` extension (ADR 0002, docs/scaling.md).

Tables are told apart by their columns: a table with `tenant_id` is tenant-owned (the schema
rules guarantee it is keyed and filtered by it), any other is global. Piccolo's own bookkeeping
table stays on the coordinator. The step is idempotent: tables already distributed are left
alone, so a migration that adds a table gets it distributed on the next `jalon migrate`.

Citus refuses to distribute a table whose foreign keys point at tables it does not manage yet,
so the foreign keys of the tables being distributed are dropped first and added back once every
table is placed, all in one transaction: a failure leaves the schema as it was.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

#: Piccolo's migration bookkeeping: the coordinator's alone.
LOCAL_TABLES = frozenset({"migration"})
#: Every tenant-owned table is co-located with this one (any would do; the first made).
ANCHOR = "audit_event"


async def has_citus(conn: asyncpg.Connection) -> bool:
    """Whether the database runs Citus (its extension is created)."""
    return bool(await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))


async def _tables(conn: asyncpg.Connection) -> tuple[list[str], set[str], set[str]]:
    """(every table of ours, the tenant-owned ones, those Citus already manages)."""
    tables = [
        row["relname"]
        for row in await conn.fetch(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"""
        )
        if row["relname"] not in LOCAL_TABLES
    ]
    tenant_owned = {
        row["table_name"]
        for row in await conn.fetch(
            """SELECT table_name FROM information_schema.columns
               WHERE table_schema = 'public' AND column_name = 'tenant_id'"""
        )
    }
    placed = {
        row["name"]
        for row in await conn.fetch(
            "SELECT logicalrelid::regclass::text AS name FROM pg_dist_partition"
        )
    }
    return tables, tenant_owned, placed


async def distribute(conn: asyncpg.Connection) -> list[str]:
    """Place every table Citus does not manage yet (reference or distributed by tenant, see the
    module's documentation), as the owner; what was placed, as `reference:t` or
    `distributed:t`."""
    tables, tenant_owned, placed = await _tables(conn)
    todo = [table for table in tables if table not in placed]
    if not todo:
        return []
    foreign_keys = await conn.fetch(
        """SELECT con.conname, con.conrelid::regclass::text AS owner,
                  pg_get_constraintdef(con.oid) AS definition
           FROM pg_constraint con
           WHERE con.contype = 'f' AND (con.conrelid::regclass::text = ANY($1::text[])
                 OR con.confrelid::regclass::text = ANY($1::text[]))
           ORDER BY con.conrelid::regclass::text, con.conname""",
        todo,
    )
    anchor = ANCHOR if ANCHOR in placed else None
    done: list[str] = []
    async with conn.transaction():
        # Foreign keys to reference tables are checked on each node, one after the other.
        await conn.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
        # The append-only triggers (audit log, report events) run on the shards as they are.
        await conn.execute("SET LOCAL citus.enable_unsafe_triggers TO on")
        # Names and definitions below come from the catalog of our own schema, not from input.
        for key in foreign_keys:
            await conn.execute(f'ALTER TABLE {key["owner"]} DROP CONSTRAINT "{key["conname"]}"')
        for table in todo:
            if table not in tenant_owned:
                await conn.execute("SELECT create_reference_table($1)", table)
                done.append(f"reference:{table}")
        tenants = sorted(t for t in todo if t in tenant_owned)
        if anchor is None and ANCHOR in tenants:
            tenants.remove(ANCHOR)
            tenants.insert(0, ANCHOR)
        for table in tenants:
            if anchor is None:
                await conn.execute("SELECT create_distributed_table($1, 'tenant_id')", table)
                anchor = table
            else:
                await conn.execute(
                    "SELECT create_distributed_table($1, 'tenant_id', colocate_with => $2)",
                    table,
                    anchor,
                )
            done.append(f"distributed:{table}")
        for key in foreign_keys:
            await conn.execute(
                f'ALTER TABLE {key["owner"]} ADD CONSTRAINT "{key["conname"]}" {key["definition"]}'
            )
    log.info("citus: placed %s", ", ".join(done))
    return done


def _in_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def join_workers(coordinator_url: str, worker_urls: list[str]) -> None:
    """Make the coordinator's database (already created, and propagated to the workers by
    `citus.enable_create_database_propagation`) a cluster: the extension on every node, the
    coordinator told where it and its workers are. For tests, benchmarks and rehearsals; an
    operator runs the same statements once (docs/scaling.md)."""
    database = urlsplit(coordinator_url).path.lstrip("/")
    for worker in worker_urls:
        conn = await asyncpg.connect(_in_database(worker, database))
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
        finally:
            await conn.close()
    coordinator = await asyncpg.connect(coordinator_url)
    try:
        await coordinator.execute("CREATE EXTENSION IF NOT EXISTS citus")
        here = urlsplit(coordinator_url)
        await coordinator.execute(
            "SELECT citus_set_coordinator_host($1, $2)", here.hostname, here.port or 5432
        )
        for worker in worker_urls:
            node = urlsplit(worker)
            await coordinator.execute(
                "SELECT citus_add_node($1, $2)", node.hostname, node.port or 5432
            )
    finally:
        await coordinator.close()
