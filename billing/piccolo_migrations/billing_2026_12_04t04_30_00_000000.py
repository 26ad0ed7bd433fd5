"""The seat ledger remembers which overage seats were billed.

`seat_balance.overage_billed` counts the overage seats of the period that an invoice already
charges: Jalon's own invoice (manual gateway: the next period's invoice, or the final one at
cancellation) or a Stripe invoice item. What is owed is `overage - overage_billed` of every
finished period under the `bill` policy, found from the ledger's own rows (keyed by the
period's start) rather than by working out the previous period's dates, so periods of any
length are billed, each seat once. Overage seats that an invoice already carries (an
`overage` line of the period) count as billed, so no period is billed twice.
"""

from core.schema import sql_migration

ID = "2026-12-04T04:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "billing seat ledger: overage seats billed per period"

SQL = """
ALTER TABLE seat_balance ADD COLUMN overage_billed integer NOT NULL DEFAULT 0
    CHECK (overage_billed >= 0);
UPDATE seat_balance b SET overage_billed = b.overage
WHERE b.overage > 0 AND EXISTS (
    SELECT 1 FROM invoice_line l
    WHERE l.tenant_id = b.tenant_id AND l.kind = 'overage' AND l.period_start = b.period_start);
"""

forwards = sql_migration(ID, "billing", DESCRIPTION, SQL)
