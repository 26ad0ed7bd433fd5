"""Staff roles: `support` joins superadmin, account manager and content editor.

The roles are `tenants.permissions.StaffRole`; this keeps the table's check in step with it.
"""

from core.schema import sql_migration

ID = "2026-12-03T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "staff role support"

SQL = """
ALTER TABLE staff_member DROP CONSTRAINT staff_member_role_check;
ALTER TABLE staff_member ADD CONSTRAINT staff_member_role_check
    CHECK (role IN ('superadmin', 'account_manager', 'support', 'content_editor'));
"""

forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
