"""An index for the API's member list, paged by the keyset (created_at, id) within a tenant."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.database import DB

ID = "2026-11-29T04:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership keyset index"

SQL = "CREATE INDEX membership_joined ON membership (tenant_id, created_at, id);"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    async def run() -> None:
        await DB.current_transaction.get().connection.execute(SQL)

    manager.add_raw(run)
    return manager
