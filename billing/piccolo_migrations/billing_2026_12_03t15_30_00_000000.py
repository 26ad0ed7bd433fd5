"""The webhook inbox counts failed attempts: an event that fails every time is set aside.

`attempts` counts the processing attempts of an event that failed (an exception: a Stripe
read that failed, a payload Jalon cannot apply). After `billing.inbox.MAX_ATTEMPTS` the
event is a dead letter: `processed_at` is set and `outcome` says "dead letter after N
attempts: <the last error>", so the sweep stops queueing it and newer events are never
starved; an operator finds them with `outcome LIKE 'dead letter%'`.
"""

from core.schema import sql_migration

ID = "2026-12-03T15:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "billing gateway webhook inbox: failed attempts and dead letters"

SQL = """
ALTER TABLE gateway_event ADD COLUMN attempts int NOT NULL DEFAULT 0 CHECK (attempts >= 0);
"""

forwards = sql_migration(ID, "billing", DESCRIPTION, SQL)
