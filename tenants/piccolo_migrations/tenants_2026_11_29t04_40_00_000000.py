"""An index for the API's member list, paged by the keyset (created_at, id) within a tenant."""

from core.schema import sql_migration

ID = "2026-11-29T04:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership keyset index"

SQL = "CREATE INDEX membership_joined ON membership (tenant_id, created_at, id);"


forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
