"""Invoices: numbering, invoices and credit notes, their lines, payments and dunning notices.

- `invoice_number` is global (a Citus reference table): one gapless counter per issuer (the
  selling entity) and year, shared by every tenant, incremented in the issuing transaction.
  The runtime role holds UPDATE on it (the upsert's lock needs it anyway on Citus).
- An issued invoice is never edited: a trigger refuses changes to what it says (number,
  amounts, parties, lines) once it has left `draft`; it is voided by a credit note. Only its
  status, payment fields and gateway reference move on.
- `payment` is append-only.
"""

from core.schema import append_only, global_table, sql_migration, tenant_table

ID = "2026-12-03T14:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "invoices, credit notes, payments, numbering, dunning"

SQL = f"""
CREATE TABLE invoice_number (
    issuer text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 32),
    year integer NOT NULL CHECK (year BETWEEN 2000 AND 9999),
    last integer NOT NULL CHECK (last >= 0),
    PRIMARY KEY (issuer, year)
);
{global_table("invoice_number", "SELECT, INSERT, UPDATE")}

CREATE TABLE invoice (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    subscription_id uuid,
    kind text NOT NULL DEFAULT 'invoice' CHECK (kind IN ('invoice', 'credit_note')),
    credits_invoice_id uuid,
    status text NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    -- what makes a draft once only (a period's invoice, say): the job that bills may run twice
    billing_key text,
    issuer text NOT NULL,
    year integer,
    number text,
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    subtotal bigint NOT NULL DEFAULT 0,
    tax_total bigint NOT NULL DEFAULT 0,
    total bigint NOT NULL DEFAULT 0 CHECK (total = subtotal + tax_total),
    amount_paid bigint NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    collection_method text NOT NULL DEFAULT 'send_invoice'
        CHECK (collection_method IN ('automatic', 'send_invoice')),
    period_start timestamptz,
    period_end timestamptz,
    issued_at timestamptz,
    due_on date,
    paid_at timestamptz,
    voided_at timestamptz,
    po_number text NOT NULL DEFAULT '' CHECK (length(po_number) <= 64),
    buyer jsonb NOT NULL DEFAULT '{{}}',
    seller jsonb NOT NULL DEFAULT '{{}}',
    tax_treatment text NOT NULL DEFAULT 'standard'
        CHECK (tax_treatment IN ('standard', 'reverse_charge', 'out_of_scope')),
    tax_note text NOT NULL DEFAULT '',
    gateway text NOT NULL DEFAULT 'manual' CHECK (gateway IN ('manual', 'stripe')),
    gateway_invoice_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, issuer, number),
    UNIQUE (tenant_id, billing_key),
    UNIQUE (tenant_id, gateway, gateway_invoice_id),
    FOREIGN KEY (tenant_id, subscription_id) REFERENCES subscription (tenant_id, id),
    FOREIGN KEY (tenant_id, credits_invoice_id) REFERENCES invoice (tenant_id, id),
    CHECK ((kind = 'credit_note') = (credits_invoice_id IS NOT NULL)),
    CHECK ((status = 'draft') = (number IS NULL)),
    CHECK ((number IS NULL) = (issued_at IS NULL) AND (number IS NULL) = (year IS NULL))
);
CREATE INDEX invoice_recent ON invoice (tenant_id, created_at DESC, id DESC);
CREATE INDEX invoice_open_due ON invoice (tenant_id, due_on) WHERE status = 'open';
{tenant_table("invoice")}

CREATE TABLE invoice_line (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    invoice_id uuid NOT NULL,
    position integer NOT NULL CHECK (position >= 0),
    kind text NOT NULL CHECK (kind IN
        ('subscription', 'seat_pack', 'license', 'proration', 'overage', 'adjustment')),
    description text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    quantity integer NOT NULL CHECK (quantity BETWEEN 0 AND 1000000),
    unit_amount bigint NOT NULL,
    amount bigint NOT NULL,
    -- VAT in basis points: 2000 is 20 %
    tax_rate integer NOT NULL CHECK (tax_rate BETWEEN 0 AND 10000),
    tax_amount bigint NOT NULL,
    period_start timestamptz,
    period_end timestamptz,
    -- set when the invoice is issued: from then on the line is what the invoice says
    locked boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, invoice_id, position),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoice (tenant_id, id)
);
{tenant_table("invoice_line")}

-- The charges waiting for an invoice (B1's table) name the invoice that took them.
ALTER TABLE pending_charge ADD CONSTRAINT pending_charge_invoice
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoice (tenant_id, id);

CREATE TABLE payment (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    invoice_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    method text NOT NULL CHECK (method IN ('bank_transfer', 'card', 'sepa_debit')),
    reference text NOT NULL DEFAULT '' CHECK (length(reference) <= 140),
    received_on date NOT NULL,
    recorded_by uuid REFERENCES user_account (id),
    recorded_by_label text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoice (tenant_id, id)
);
-- the same transfer (its bank reference) is recorded once
CREATE UNIQUE INDEX payment_reference ON payment (tenant_id, invoice_id, method, reference)
    WHERE reference <> '';
{tenant_table("payment", "SELECT, INSERT")}
{append_only("payment")}

-- Reminders and notices sent, so that a sweep run twice sends nothing twice. `subject` is what
-- the notice is about: an invoice's id, or a subscription's past-due episode.
CREATE TABLE dunning_notice (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    subject text NOT NULL,
    step text NOT NULL,
    invoice_id uuid,
    sent_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, subject, step),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoice (tenant_id, id)
);
{tenant_table("dunning_notice", "SELECT, INSERT")}

CREATE OR REPLACE FUNCTION jalon_invoice_issued_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is issued: it cannot be deleted', OLD.number;
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.number, NEW.issuer, NEW.year, NEW.kind, NEW.credits_invoice_id, NEW.currency,
        NEW.subtotal, NEW.tax_total, NEW.total, NEW.issued_at, NEW.due_on, NEW.po_number,
        NEW.buyer, NEW.seller, NEW.tax_treatment, NEW.tax_note, NEW.period_start,
        NEW.period_end, NEW.subscription_id
    ) IS DISTINCT FROM (
        OLD.number, OLD.issuer, OLD.year, OLD.kind, OLD.credits_invoice_id, OLD.currency,
        OLD.subtotal, OLD.tax_total, OLD.total, OLD.issued_at, OLD.due_on, OLD.po_number,
        OLD.buyer, OLD.seller, OLD.tax_treatment, OLD.tax_note, OLD.period_start,
        OLD.period_end, OLD.subscription_id
    ) THEN
        RAISE EXCEPTION 'invoice % is issued: issue a credit note instead of editing it',
            OLD.number;
    END IF;
    IF OLD.status <> 'draft' AND NEW.status = 'draft' THEN
        RAISE EXCEPTION 'invoice % is issued: it cannot become a draft again', OLD.number;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoice_issued_is_final BEFORE UPDATE OR DELETE ON invoice
    FOR EACH ROW EXECUTE FUNCTION jalon_invoice_issued_is_final();

CREATE OR REPLACE FUNCTION jalon_invoice_line_locked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.locked AND (TG_OP = 'DELETE' OR NEW IS DISTINCT FROM OLD) THEN
        RAISE EXCEPTION 'the lines of an issued invoice cannot change';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoice_line_locked BEFORE UPDATE OR DELETE ON invoice_line
    FOR EACH ROW EXECUTE FUNCTION jalon_invoice_line_locked();
"""

forwards = sql_migration(ID, "billing", DESCRIPTION, SQL)
