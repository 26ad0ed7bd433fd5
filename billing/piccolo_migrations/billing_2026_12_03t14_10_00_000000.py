"""The seat ledger: seat packs, the seats learners consume per period, and each period's
balance (the row that makes the seat check race-free).

- `seat_pack`: prepaid seats valid from `starts_on` to `ends_on` (both days included, UTC);
  a removed pack keeps its row (`removed_at`) so the usage page and the audit log still
  name it.
- `seat_usage`: one row per learner per subscription period (the period's start), written
  when the learner starts their first participation of the period in a seat-consuming
  campaign. `learner_id` and `campaign_id` have no foreign key: learners and campaigns
  live in the campaigns app, migrated after billing.
- `seat_balance`: one row per tenant and period. Consuming a seat is one upsert of this row
  whose `ON CONFLICT … DO UPDATE … WHERE used < capacity` (for the `block` policy) runs
  under the row's lock: concurrent starts of one tenant serialize on it, on the tenant's
  shard, and the last seat goes once. It also keeps the alert bookkeeping: the `used` count
  at which the 80 % and 100 % alerts went (once each per period), the refusals, and the day
  the admins were last mailed about one.
"""

from core.schema import sql_migration, tenant_table

ID = "2026-12-03T14:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "seat packs, seat usage per period and the period's seat balance"

SQL = f"""
CREATE TABLE seat_pack (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    seats integer NOT NULL CHECK (seats > 0 AND seats <= 1000000),
    starts_on date NOT NULL,
    ends_on date NOT NULL,
    category text NOT NULL DEFAULT 'standard'
        CHECK (category IN ('standard', 'public', 'reduced', 'full')),
    reference text NOT NULL DEFAULT '' CHECK (length(reference) <= 100),
    added_by text NOT NULL CHECK (length(added_by) BETWEEN 1 AND 200),
    added_by_user_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    removed_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    CHECK (ends_on >= starts_on)
);
CREATE INDEX seat_pack_valid ON seat_pack (tenant_id, starts_on, ends_on)
    WHERE removed_at IS NULL;
{tenant_table("seat_pack", "SELECT, INSERT, UPDATE")}

CREATE TABLE seat_usage (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    period_start timestamptz NOT NULL,
    learner_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    consumed_at timestamptz NOT NULL,
    overage boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, period_start, learner_id)
);
CREATE INDEX seat_usage_by_time ON seat_usage (tenant_id, period_start, consumed_at);
{tenant_table("seat_usage", "SELECT, INSERT")}

CREATE TABLE seat_balance (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    period_start timestamptz NOT NULL,
    used integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    overage integer NOT NULL DEFAULT 0 CHECK (overage >= 0),
    capacity integer NOT NULL DEFAULT 0 CHECK (capacity >= 0),
    overage_policy text NOT NULL CHECK (overage_policy IN ('block', 'bill', 'warn')),
    alert_80_used integer,
    alert_100_used integer,
    refused integer NOT NULL DEFAULT 0 CHECK (refused >= 0),
    refusal_mailed_on date,
    refusal_mail_refused integer,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, period_start)
);
{tenant_table("seat_balance", "SELECT, INSERT, UPDATE")}
"""

forwards = sql_migration(ID, "billing", DESCRIPTION, SQL)
