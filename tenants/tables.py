"""Piccolo tables of the tenants package. The schema itself is the SQL of the migrations
(composite keys, row-level security); these classes mirror it for queries.

Global: Organization (the tenant itself), User, UserToken, SignupRequest, StaffMember.
Tenant-owned (row-level security on `tenant_id`): Membership, Invitation, AuditEvent, ApiToken,
WebhookEndpoint, WebhookDelivery. The `task` and `task_file` tables, created by a migration of
this package, are core's (`core.tables`).
"""

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    Boolean,
    Bytea,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from core.database import DB


class Organization(Table, tablename="organization", db=DB):
    id = UUID(primary_key=True)
    name = Text()
    slug = Text()
    kind = Text()
    country = Varchar(length=2)
    default_locale = Text(default="fr")
    timezone = Text(default="Europe/Paris")
    currency = Varchar(length=3, default="EUR")
    status = Text(default="trial")
    siret = Text(null=True, default=None)
    vat_number = Text(null=True, default=None)
    parent_id = UUID(null=True, default=None)
    logo_data_url = Text(null=True, default=None)
    brand_colour = Text(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class User(Table, tablename="user_account", db=DB):
    id = UUID(primary_key=True)
    email = Text()
    name = Text()
    locale = Text(default="fr")
    password_hash = Text(null=True, default=None)
    email_verified = Boolean(default=False)
    is_active = Boolean(default=True)
    created_at = Timestamptz()
    last_login_at = Timestamptz(null=True, default=None)
    #: sessions signed in before this moment are over (a password change, ADR 0027)
    sessions_valid_after = Timestamptz(null=True, default=None)


class UserToken(Table, tablename="user_token", db=DB):
    id = UUID(primary_key=True)
    user_id = UUID()
    purpose = Text()
    token_hash = Bytea()
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    #: the address an email verification token was sent to (it verifies that one only)
    email = Text(null=True, default=None)


class SignupRequest(Table, tablename="signup_request", db=DB):
    """What a person typed to sign up by link, until the link is followed (or expires)."""

    id = UUID(primary_key=True)
    token_hash = Bytea()
    email = Text()
    name = Text()
    locale = Text()
    created_at = Timestamptz()
    expires_at = Timestamptz()


class StaffMember(Table, tablename="staff_member", db=DB):
    id = UUID(primary_key=True)
    user_id = UUID()
    role = Text()
    created_at = Timestamptz()


class Membership(Table, tablename="membership", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID()
    role = Text()
    created_at = Timestamptz()
    suspended_at = Timestamptz(null=True, default=None)


class Invitation(Table, tablename="invitation", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    email = Text()
    role = Text()
    token_hash = Bytea()
    invited_by = UUID(null=True, default=None)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    last_sent_at = Timestamptz()
    send_count = Integer(default=1)
    accepted_at = Timestamptz(null=True, default=None)
    accepted_by = UUID(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class AuditEvent(Table, tablename="audit_event", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    occurred_at = Timestamptz()
    actor_user_id = UUID(null=True, default=None)
    actor_kind = Text()
    actor_label = Text(default="")
    action = Text()
    target_type = Text(default="")
    target_id = Text(default="")
    ip = Text(null=True, default=None)  # inet in SQL
    user_agent = Text(default="")
    details = JSONB(default={})


class ApiToken(Table, tablename="api_token", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    prefix = Text()
    hint = Text(null=True, default=None)
    token_hash = Bytea()
    scopes = Array(base_column=Text())
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz()
    expires_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class WebhookEndpoint(Table, tablename="webhook_endpoint", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    url = Text()
    description = Text(default="")
    events = Array(base_column=Text())
    secret = Text()
    enabled = Boolean(default=True)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class WebhookDelivery(Table, tablename="webhook_delivery", db=DB):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    endpoint_id = UUID()
    event_type = Text()
    event_id = UUID()
    payload = JSONB()
    status = Text(default="pending")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=None)
    last_attempt_at = Timestamptz(null=True, default=None)
    last_response_code = Integer(null=True, default=None)
    last_error = Text(null=True, default=None)
    last_duration_ms = Integer(null=True, default=None)
    redelivery_of = UUID(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    delivered_at = Timestamptz(null=True, default=None)
