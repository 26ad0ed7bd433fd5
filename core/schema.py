"""SQL building blocks that migrations share, so every tenant table is protected alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.database import DB, RUNTIME_GROUP_ROLE

_CURRENT_TENANT = "nullif(current_setting('jalon.tenant_id', true), '')::uuid"
_CURRENT_USER = "nullif(current_setting('jalon.user_id', true), '')::uuid"


def tenant_table(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    """SQL that puts `table` (which has `tenant_id`) under forced row-level security.

    The policy admits a row only when its `tenant_id` is the transaction's tenant, for reads
    and writes alike, and the runtime group gets `privileges` on it.
    """
    return f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {table}
    USING (tenant_id = {_CURRENT_TENANT})
    WITH CHECK (tenant_id = {_CURRENT_TENANT});
GRANT {privileges} ON {table} TO {RUNTIME_GROUP_ROLE};
"""


def own_rows_readable(table: str, column: str = "user_id") -> str:
    """SQL letting the acting user (`jalon.user_id`) read their own rows in any tenant."""
    return f"""
CREATE POLICY own_rows ON {table} FOR SELECT
    USING ({column} = {_CURRENT_USER});
"""


def global_table(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    """SQL granting the runtime group `privileges` on a global (not tenant-owned) table."""
    return f"GRANT {privileges} ON {table} TO {RUNTIME_GROUP_ROLE};\n"


def append_only(table: str) -> str:
    """SQL that makes `table` refuse UPDATE and DELETE, whoever asks."""
    return f"""
CREATE OR REPLACE FUNCTION jalon_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION jalon_refuse_change();
"""


def sql_migration(
    migration_id: str, app_name: str, description: str, sql: str
) -> Callable[[], Awaitable[MigrationManager]]:
    """A Piccolo `forwards()` that runs `sql` (hand-written, ADR 0002) in the migration's
    transaction: `forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)`."""

    async def forwards() -> MigrationManager:
        manager = MigrationManager(
            migration_id=migration_id, app_name=app_name, description=description
        )

        async def run() -> None:
            current = DB.current_transaction.get()
            assert current is not None, "Piccolo runs migrations in a transaction"
            await current.connection.execute(sql)

        manager.add_raw(run)
        return manager

    return forwards
