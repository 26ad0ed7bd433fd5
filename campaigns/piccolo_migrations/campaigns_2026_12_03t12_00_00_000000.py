"""Policies Citus accepts: no subquery in a row-level-security policy (ADR 0002).

- "My results" no longer reads participations, results and campaigns across tenants through
  `own_rows` policies with subqueries: it finds the person's organizations through their
  learner rows (`learner.own_rows`, a plain column test), then reads each organization's rows in
  that organization's own transaction, under the tenant policy alone. The three policies go.
- Content editors read problem reports across tenants through `content_triage`, which now asks
  for the transaction-local setting `jalon.triage`, set by `campaigns.problem_reports` once it
  has checked, in the same transaction, that the acting user is a content editor (like
  `jalon.sweep` for the webhook sweep). Before, the policy itself read `staff_member`.
- `campaign_code` is a reference table on Citus, which locks its rows for an upsert: the
  runtime role needs UPDATE on it. No policy admits an UPDATE, so none can change a row.
"""

from core.schema import sql_migration

ID = "2026-12-03T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "policies without subqueries"

_NO_TENANT = "nullif(current_setting('jalon.tenant_id', true), '') IS NULL"

SQL = f"""
DROP POLICY own_rows ON participation;
DROP POLICY own_rows ON result;
DROP POLICY own_rows ON campaign;
DROP POLICY content_triage ON challenge_report;
CREATE POLICY content_triage ON challenge_report FOR SELECT
    USING ({_NO_TENANT} AND current_setting('jalon.triage', true) = 'challenge_report');
GRANT UPDATE ON campaign_code TO jalon_runtime;
"""

forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
