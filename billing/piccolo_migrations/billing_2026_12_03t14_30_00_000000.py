"""Billing's payment-gateway tables: the inbound webhook inbox and the customer map.

Both are global (Citus reference tables): a webhook arrives before Jalon knows its tenant,
so the inbox cannot be tenant-owned, and the customer map is how the tenant is found. The
map's tenant column is `organization_id`, not `tenant_id`, on purpose: a `tenant_id` column
would make Citus distribute the table by it, and the lookup by customer is tenantless.

- `gateway_event`: one row per gateway event id (Stripe's `evt_…`), written by the webhook
  endpoint (`ON CONFLICT DO NOTHING`: a redelivery stores nothing twice) and marked
  processed by the job that applies it. It holds the verified payload and nothing secret.
- `gateway_customer`: (gateway, customer id) → organization, written when Jalon creates the
  customer on the gateway; an event about a customer not in it is ignored.
"""

from core.schema import global_table, sql_migration

ID = "2026-12-03T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "billing gateway webhook inbox and customer map"

SQL = f"""
CREATE TABLE gateway_event (
    gateway text NOT NULL CHECK (gateway IN ('stripe')),
    event_id text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    type text NOT NULL CHECK (length(type) BETWEEN 1 AND 255),
    created_at timestamptz NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    outcome text NOT NULL DEFAULT '' CHECK (length(outcome) <= 500),
    organization_id uuid REFERENCES organization (id),
    PRIMARY KEY (gateway, event_id)
);
CREATE INDEX gateway_event_pending ON gateway_event (received_at) WHERE processed_at IS NULL;
{global_table("gateway_event", "SELECT, INSERT, UPDATE")}

CREATE TABLE gateway_customer (
    gateway text NOT NULL CHECK (gateway IN ('stripe')),
    customer_id text NOT NULL CHECK (length(customer_id) BETWEEN 1 AND 255),
    organization_id uuid NOT NULL REFERENCES organization (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway, customer_id),
    UNIQUE (gateway, organization_id)
);
{global_table("gateway_customer", "SELECT, INSERT, UPDATE")}
"""

forwards = sql_migration(ID, "billing", DESCRIPTION, SQL)
