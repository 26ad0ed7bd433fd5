"""Billing's catalogue and each tenant's subscription and billing details.

`plan` and `plan_price` are global (the catalogue, Citus reference tables); `subscription`
and `billing_profile` are tenant-owned, one row per tenant at most. A tenant with no
subscription is not billed. `pending_charge` holds amounts decided between two invoices
(proration of a mid-period change on the manual gateway) until an invoice takes them.
"""

from core.schema import global_table, sql_migration, tenant_table

ID = "2026-12-03T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "billing plans, prices, subscriptions and billing profiles"

SQL = f"""
CREATE TABLE plan (
    id uuid PRIMARY KEY,
    code text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_-]{{0,63}}$'),
    kind text NOT NULL CHECK (kind IN ('per_seat', 'seat_pack', 'license')),
    names jsonb NOT NULL,
    descriptions jsonb NOT NULL DEFAULT '{{}}',
    interval text NOT NULL CHECK (interval IN ('month', 'year')),
    trial_days integer NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 366),
    overage_policy text NOT NULL CHECK (overage_policy IN ('block', 'bill', 'warn')),
    included_seats integer CHECK (included_seats BETWEEN 0 AND 1000000),
    pack_seats integer CHECK (pack_seats BETWEEN 1 AND 1000000),
    pack_validity_months integer CHECK (pack_validity_months BETWEEN 1 AND 120),
    retired_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
{global_table("plan")}

CREATE TABLE plan_price (
    plan_id uuid NOT NULL REFERENCES plan (id),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    category text NOT NULL DEFAULT 'standard'
        CHECK (category IN ('standard', 'public', 'reduced', 'full')),
    unit_amount bigint NOT NULL CHECK (unit_amount >= 0),
    overage_unit_amount bigint CHECK (overage_unit_amount >= 0),
    PRIMARY KEY (plan_id, currency, category)
);
{global_table("plan_price")}

CREATE TABLE subscription (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    plan_id uuid NOT NULL REFERENCES plan (id),
    status text NOT NULL
        CHECK (status IN ('trialing', 'active', 'past_due', 'suspended', 'canceled')),
    quantity integer NOT NULL CHECK (quantity BETWEEN 0 AND 1000000),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    price_category text NOT NULL DEFAULT 'standard',
    current_period_start timestamptz NOT NULL,
    current_period_end timestamptz NOT NULL,
    trial_end timestamptz,
    collection_method text NOT NULL DEFAULT 'send_invoice'
        CHECK (collection_method IN ('automatic', 'send_invoice')),
    net_terms_days integer NOT NULL DEFAULT 30 CHECK (net_terms_days BETWEEN 0 AND 365),
    po_number text NOT NULL DEFAULT '' CHECK (length(po_number) <= 64),
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    proration text NOT NULL DEFAULT 'prorate' CHECK (proration IN ('prorate', 'none')),
    gateway text NOT NULL DEFAULT 'manual' CHECK (gateway IN ('manual', 'stripe')),
    gateway_customer_id text,
    gateway_subscription_id text,
    gateway_synced_at timestamptz,
    past_due_since timestamptz,
    status_changed_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id),
    CHECK (current_period_end > current_period_start)
);
CREATE INDEX subscription_gateway ON subscription (gateway_subscription_id)
    WHERE gateway_subscription_id IS NOT NULL;
{tenant_table("subscription")}

CREATE TABLE billing_profile (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    legal_name text NOT NULL DEFAULT '' CHECK (length(legal_name) <= 200),
    address_line1 text NOT NULL DEFAULT '' CHECK (length(address_line1) <= 200),
    address_line2 text NOT NULL DEFAULT '' CHECK (length(address_line2) <= 200),
    postal_code text NOT NULL DEFAULT '' CHECK (length(postal_code) <= 20),
    city text NOT NULL DEFAULT '' CHECK (length(city) <= 100),
    country char(2) NOT NULL CHECK (country ~ '^[A-Z]{{2}}$'),
    billing_email text NOT NULL DEFAULT '' CHECK (length(billing_email) <= 254),
    vat_number text NOT NULL DEFAULT '' CHECK (length(vat_number) <= 20),
    buyer_kind text NOT NULL DEFAULT 'business'
        CHECK (buyer_kind IN ('business', 'public', 'individual')),
    siret text NOT NULL DEFAULT '' CHECK (length(siret) <= 14),
    chorus_service_code text NOT NULL DEFAULT '' CHECK (length(chorus_service_code) <= 100),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id)
);
{tenant_table("billing_profile")}

CREATE TABLE pending_charge (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    subscription_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('proration', 'overage', 'other')),
    description text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    quantity integer NOT NULL DEFAULT 1,
    amount bigint NOT NULL,
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    invoice_id uuid,
    invoiced_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, subscription_id) REFERENCES subscription (tenant_id, id)
);
CREATE INDEX pending_charge_open ON pending_charge (tenant_id, subscription_id)
    WHERE invoiced_at IS NULL;
{tenant_table("pending_charge")}
"""

forwards = sql_migration(ID, "billing", DESCRIPTION, SQL)
