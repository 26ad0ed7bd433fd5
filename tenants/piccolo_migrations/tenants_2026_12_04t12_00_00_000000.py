"""API tokens keep the first characters of their secret part (`hint`), so that the console
tells them apart: `prefix` holds `jalon_` and the start of the organization's id, the same for
every token of an organization. Tokens issued before have none (only a digest of the secret
is stored, so it cannot be recovered): the console says so."""

from core.schema import sql_migration

ID = "2026-12-04T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "api_token hint"

SQL = """
ALTER TABLE api_token ADD COLUMN hint text;
"""

forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
