"""Piccolo tables of the billing package. The tables themselves are made by hand-written SQL
migrations (ADR 0002: composite keys, row-level security); these classes name them for
Piccolo's app registry."""

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    Boolean,
    Date,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from core.database import DB


class Plan(Table, tablename="plan", db=DB):
    id = UUID(primary_key=True)
    code = Text()
    kind = Text()
    names = JSONB()
    descriptions = JSONB(default={})
    interval = Text()
    trial_days = Integer(default=0)
    overage_policy = Text()
    included_seats = Integer(null=True, default=None)
    pack_seats = Integer(null=True, default=None)
    pack_validity_months = Integer(null=True, default=None)
    retired_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class PlanPrice(Table, tablename="plan_price", db=DB):
    # The key in SQL is (plan_id, currency, category); Piccolo wants one column.
    plan_id = UUID(primary_key=True)
    currency = Varchar(length=3)
    category = Text(default="standard")
    unit_amount = BigInt()
    overage_unit_amount = BigInt(null=True, default=None)


class Subscription(Table, tablename="subscription", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    plan_id = UUID()
    status = Text()
    quantity = Integer()
    currency = Varchar(length=3)
    price_category = Text(default="standard")
    current_period_start = Timestamptz()
    current_period_end = Timestamptz()
    trial_end = Timestamptz(null=True, default=None)
    collection_method = Text(default="send_invoice")
    net_terms_days = Integer(default=30)
    po_number = Text(default="")
    cancel_at_period_end = Boolean(default=False)
    proration = Text(default="prorate")
    gateway = Text(default="manual")
    gateway_customer_id = Text(null=True, default=None)
    gateway_subscription_id = Text(null=True, default=None)
    gateway_synced_at = Timestamptz(null=True, default=None)
    past_due_since = Timestamptz(null=True, default=None)
    status_changed_at = Timestamptz()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class BillingProfile(Table, tablename="billing_profile", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    legal_name = Text(default="")
    address_line1 = Text(default="")
    address_line2 = Text(default="")
    postal_code = Text(default="")
    city = Text(default="")
    country = Varchar(length=2)
    billing_email = Text(default="")
    vat_number = Text(default="")
    buyer_kind = Text(default="business")
    siret = Text(default="")
    chorus_service_code = Text(default="")
    updated_at = Timestamptz()


class PendingCharge(Table, tablename="pending_charge", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    subscription_id = UUID()
    kind = Text()
    description = Text()
    quantity = Integer(default=1)
    amount = BigInt()
    currency = Varchar(length=3)
    period_start = Timestamptz()
    period_end = Timestamptz()
    created_at = Timestamptz()
    invoice_id = UUID(null=True, default=None)
    invoiced_at = Timestamptz(null=True, default=None)


class InvoiceNumber(Table, tablename="invoice_number", db=DB):
    # The key in SQL is (issuer, year); Piccolo wants one column.
    issuer = Text(primary_key=True)
    year = Integer()
    last = Integer()


class Invoice(Table, tablename="invoice", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    subscription_id = UUID(null=True, default=None)
    kind = Text(default="invoice")
    credits_invoice_id = UUID(null=True, default=None)
    status = Text(default="draft")
    billing_key = Text(null=True, default=None)
    issuer = Text()
    year = Integer(null=True, default=None)
    number = Text(null=True, default=None)
    currency = Varchar(length=3)
    subtotal = BigInt(default=0)
    tax_total = BigInt(default=0)
    total = BigInt(default=0)
    amount_paid = BigInt(default=0)
    collection_method = Text(default="send_invoice")
    period_start = Timestamptz(null=True, default=None)
    period_end = Timestamptz(null=True, default=None)
    issued_at = Timestamptz(null=True, default=None)
    due_on = Date(null=True, default=None)
    paid_at = Timestamptz(null=True, default=None)
    voided_at = Timestamptz(null=True, default=None)
    po_number = Text(default="")
    buyer = JSONB(default={})
    seller = JSONB(default={})
    tax_treatment = Text(default="standard")
    tax_note = Text(default="")
    gateway = Text(default="manual")
    gateway_invoice_id = Text(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class InvoiceLine(Table, tablename="invoice_line", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    invoice_id = UUID()
    position = Integer()
    kind = Text()
    description = Text()
    quantity = Integer()
    unit_amount = BigInt()
    amount = BigInt()
    tax_rate = Integer()
    tax_amount = BigInt()
    period_start = Timestamptz(null=True, default=None)
    period_end = Timestamptz(null=True, default=None)
    locked = Boolean(default=False)


class Payment(Table, tablename="payment", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    invoice_id = UUID()
    amount = BigInt()
    currency = Varchar(length=3)
    method = Text()
    reference = Text(default="")
    received_on = Date()
    recorded_by = UUID(null=True, default=None)
    recorded_by_label = Text(default="")
    created_at = Timestamptz()


class DunningNotice(Table, tablename="dunning_notice", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    subject = Text()
    step = Text()
    invoice_id = UUID(null=True, default=None)
    sent_at = Timestamptz()


class SeatPack(Table, tablename="seat_pack", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    seats = Integer()
    starts_on = Date()
    ends_on = Date()
    category = Text(default="standard")
    reference = Text(default="")
    added_by = Text()
    added_by_user_id = UUID(null=True, default=None)
    created_at = Timestamptz()
    removed_at = Timestamptz(null=True, default=None)


class SeatUsage(Table, tablename="seat_usage", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    period_start = Timestamptz()
    learner_id = UUID()
    campaign_id = UUID()
    consumed_at = Timestamptz()
    overage = Boolean(default=False)


class SeatBalance(Table, tablename="seat_balance", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    period_start = Timestamptz()
    used = Integer(default=0)
    overage = Integer(default=0)
    #: overage seats an invoice (Jalon's, or a Stripe invoice item) already charges
    overage_billed = Integer(default=0)
    capacity = Integer(default=0)
    overage_policy = Text()
    alert_80_used = Integer(null=True, default=None)
    alert_100_used = Integer(null=True, default=None)
    refused = Integer(default=0)
    refusal_mailed_on = Date(null=True, default=None)
    refusal_mail_refused = Integer(null=True, default=None)
    updated_at = Timestamptz()


class GatewayEvent(Table, tablename="gateway_event", db=DB):
    # The key in SQL is (gateway, event_id); Piccolo wants one column.
    event_id = Varchar(length=255, primary_key=True)
    gateway = Text()
    type = Text()
    created_at = Timestamptz()
    payload = JSONB()
    received_at = Timestamptz()
    processed_at = Timestamptz(null=True, default=None)
    outcome = Text(default="")
    organization_id = UUID(null=True, default=None)
    attempts = Integer(default=0)


class GatewayCustomer(Table, tablename="gateway_customer", db=DB):
    # The key in SQL is (gateway, customer_id).
    customer_id = Varchar(length=255, primary_key=True)
    gateway = Text()
    organization_id = UUID()
    created_at = Timestamptz()
