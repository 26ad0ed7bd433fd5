"""Memberships can be suspended: a directory (SCIM) deactivating a person keeps their
membership and its history but stops them acting in the organization
(`tenants.organizations.member_context` refuses a suspended member)."""

from core.schema import sql_migration

ID = "2026-12-03T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership suspended_at"

SQL = """
ALTER TABLE membership ADD COLUMN suspended_at timestamptz;
"""

forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
