"""The back office (issue 12): staff second factor, the staff audit trail, per-tenant features
and the retention of closed organizations.

- `staff_member` gains its TOTP seed (AES-GCM ciphertext from `core.secrets`, never in
  clear), when it was confirmed, the last time step accepted (a code is good once), the
  SHA-256 of the unused recovery codes, and `disabled_at` (a staff member is disabled, never
  deleted: the audit trail names them).
- `staff_audit`: every staff action, append-only. `organization_id` (not `tenant_id`: a global
  table, a reference table on Citus) names the tenant concerned, if any; the same action also
  lands in that tenant's own `audit_event`, by actor kind `staff`.
- `organization.features`: the per-tenant switches staff toggle (`tenants.features`).
- `organization.closed_at` and `delete_after`: a closed organization is kept for its
  retention period, then purged.
"""

from core.schema import append_only, global_table, sql_migration

ID = "2026-12-03T17:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "staff totp, staff audit, features, closing"

SQL = f"""
ALTER TABLE staff_member
    ADD COLUMN totp_secret bytea,
    ADD COLUMN totp_confirmed_at timestamptz,
    ADD COLUMN totp_last_step bigint,
    ADD COLUMN recovery_codes text[] NOT NULL DEFAULT '{{}}',
    ADD COLUMN disabled_at timestamptz;
ALTER TABLE staff_member ADD CONSTRAINT staff_member_confirmed_has_secret
    CHECK (totp_confirmed_at IS NULL OR totp_secret IS NOT NULL);

CREATE TABLE staff_audit (
    id uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    staff_user_id uuid,
    staff_label text NOT NULL,
    staff_role text NOT NULL DEFAULT '',
    action text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{{0,63}}$'),
    reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 1000),
    organization_id uuid,
    target_type text NOT NULL DEFAULT '',
    target_id text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{{}}',
    ip inet
);
CREATE INDEX staff_audit_by_time ON staff_audit (occurred_at DESC, id DESC);
CREATE INDEX staff_audit_by_organization ON staff_audit (organization_id, occurred_at DESC);
{append_only("staff_audit")}
{global_table("staff_audit", "SELECT, INSERT")}

ALTER TABLE organization
    ADD COLUMN features jsonb NOT NULL DEFAULT '{{}}'
        CHECK (jsonb_typeof(features) = 'object'),
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN delete_after date;
ALTER TABLE organization ADD CONSTRAINT organization_retention_after_closing
    CHECK (delete_after IS NULL OR closed_at IS NOT NULL);
"""

forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
