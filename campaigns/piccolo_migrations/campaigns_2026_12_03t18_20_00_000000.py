"""The back office's book of business (issue 12): staff read a few tenant tables across tenants.

The dashboard and the tenants list count and list every tenant's subscription, seats, invoices,
members and participations: a sweep of one transaction per tenant (10,000 of them) is no way to
draw a page. `staff_book` admits SELECT of these rows, in a transaction with no tenant set, when
the transaction-local setting `jalon.book` is `tenants`; only `tenants.book.dangerously_open_book`
sets it, once it has checked in the same transaction that the acting user is a staff member
whose role reads tenants, in a READ ONLY transaction (like `jalon.triage` for the problem
reports and `jalon.sweep` for the webhook sweep). No subquery in the policy (Citus).

It lives in the campaigns app, the last to migrate, because it names tables of tenants, billing
and campaigns (Piccolo runs each app's migrations in turn).
"""

from core.schema import sql_migration

ID = "2026-12-03T18:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "staff read the book of business"

_NO_TENANT = "nullif(current_setting('jalon.tenant_id', true), '') IS NULL"
_TABLES = (
    "membership",
    "subscription",
    "seat_pack",
    "seat_balance",
    "invoice",
    "invoice_line",
    "participation",
)

SQL = "".join(
    f"""
CREATE POLICY staff_book ON {table} FOR SELECT
    USING ({_NO_TENANT} AND current_setting('jalon.book', true) = 'tenants');
"""
    for table in _TABLES
)

forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
