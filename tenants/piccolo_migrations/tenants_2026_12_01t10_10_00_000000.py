"""Outgoing webhooks: each tenant's endpoints, and the outbox of their deliveries (ADR 0012).

Hand-written SQL (ADR 0002): both tables are tenant-owned, keyed `(tenant_id, id)`, the
delivery references its endpoint with a composite key, and both are under forced row-level
security.

One deliberate read across tenants: the sweep that re-queues due deliveries runs with no
tenant set. The `due_sweep` policy lets it SELECT deliveries only while no tenant is set and
`jalon.sweep` names this table; `tenants.webhooks.delivery.dangerously_due_deliveries` is the one
place that sets it, and reads ids only.
"""

from core.schema import sql_migration, tenant_table

ID = "2026-12-01T10:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outgoing webhooks"

SQL = f"""
CREATE TABLE webhook_endpoint (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    url text NOT NULL CHECK (length(url) BETWEEN 10 AND 2000 AND url ~ '^https?://'),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    events text[] NOT NULL CHECK (cardinality(events) > 0),
    secret text NOT NULL CHECK (length(secret) >= 32),
    enabled boolean NOT NULL DEFAULT true,
    created_by uuid REFERENCES user_account (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhook_endpoint_recent ON webhook_endpoint (tenant_id, created_at DESC, id DESC);
{tenant_table("webhook_endpoint")}

CREATE TABLE webhook_delivery (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    event_type text NOT NULL,
    event_id uuid NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz DEFAULT now(),
    last_attempt_at timestamptz,
    last_response_code integer,
    last_error text CHECK (length(last_error) <= 1000),
    last_duration_ms integer,
    redelivery_of uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoint (tenant_id, id)
        ON DELETE CASCADE,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
CREATE INDEX webhook_delivery_log
    ON webhook_delivery (tenant_id, endpoint_id, created_at DESC, id DESC);
-- The sweep's question, across tenants: which deliveries are due?
CREATE INDEX webhook_delivery_due ON webhook_delivery (next_attempt_at)
    WHERE status = 'pending';
{tenant_table("webhook_delivery")}
CREATE POLICY due_sweep ON webhook_delivery FOR SELECT USING (
    nullif(current_setting('jalon.tenant_id', true), '') IS NULL
    AND current_setting('jalon.sweep', true) = 'webhook_delivery');
"""


forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
