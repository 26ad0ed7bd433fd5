"""A person's sessions can be ended everywhere at once (ADR 0027): `sessions_valid_after`,
set when they change their password (or reset it), is compared with the moment each of
their sessions signed in; an older session is signed out on its next request. Sessions live
in Redis (or files) under random ids with no index by person, so the account carries the
cut-off instead. `user_account` is a global table (a Citus reference table): no tenant rule
applies."""

from core.schema import sql_migration

ID = "2026-12-04T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "user_account sessions_valid_after"

SQL = """
ALTER TABLE user_account ADD COLUMN sessions_valid_after timestamptz;
"""

forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
