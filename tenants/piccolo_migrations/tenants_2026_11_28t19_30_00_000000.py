"""Organizations, users, memberships, invitations, audit log, API tokens, staff.

Hand-written SQL (ADR 0002): composite primary keys `(tenant_id, id)` and composite foreign
keys keep the schema distributable by `tenant_id` on Citus; Piccolo's tables declare `id`.
"""

from core.schema import append_only, global_table, own_rows_readable, sql_migration, tenant_table

ID = "2026-11-28T19:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenancy and identity"

SQL = f"""
CREATE TABLE organization (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{{0,46}}[a-z0-9])?$'),
    kind text NOT NULL
        CHECK (kind IN ('company', 'local_authority', 'foreign_agency', 'school', 'other')),
    country char(2) NOT NULL CHECK (country ~ '^[A-Z]{{2}}$'),
    default_locale text NOT NULL DEFAULT 'fr',
    timezone text NOT NULL DEFAULT 'Europe/Paris',
    currency char(3) NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{{3}}$'),
    status text NOT NULL DEFAULT 'trial'
        CHECK (status IN ('trial', 'active', 'suspended', 'closed')),
    siret text CHECK (siret ~ '^[0-9]{{14}}$'),
    vat_number text CHECK (vat_number ~ '^[A-Z]{{2}}[0-9A-Z]{{2,13}}$'),
    parent_id uuid REFERENCES organization (id),
    logo_data_url text CHECK (length(logo_data_url) <= 140000),
    brand_colour text CHECK (brand_colour ~ '^#[0-9a-f]{{6}}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organization_slug_key ON organization (slug);
{global_table("organization", "SELECT, INSERT, UPDATE")}

CREATE TABLE user_account (
    id uuid PRIMARY KEY,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    locale text NOT NULL DEFAULT 'fr',
    password_hash text,
    email_verified boolean NOT NULL DEFAULT false,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
CREATE UNIQUE INDEX user_account_email_key ON user_account (lower(email));
{global_table("user_account", "SELECT, INSERT, UPDATE")}

CREATE TABLE user_token (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES user_account (id) ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose IN ('password_reset', 'magic_link')),
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX user_token_user ON user_token (user_id);
{global_table("user_token")}

CREATE TABLE staff_member (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL UNIQUE REFERENCES user_account (id),
    role text NOT NULL CHECK (role IN ('account_manager', 'content_editor', 'superadmin')),
    created_at timestamptz NOT NULL DEFAULT now()
);
{global_table("staff_member", "SELECT, INSERT, UPDATE")}

CREATE TABLE membership (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    user_id uuid NOT NULL REFERENCES user_account (id),
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_id)
);
-- "My organizations" is the one query that crosses tenants (through the own_rows policy).
CREATE INDEX membership_user ON membership (user_id);
{tenant_table("membership")}
{own_rows_readable("membership")}

CREATE TABLE invitation (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash bytea NOT NULL,
    invited_by uuid REFERENCES user_account (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    last_sent_at timestamptz NOT NULL DEFAULT now(),
    send_count integer NOT NULL DEFAULT 1,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES user_account (id),
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash)
);
CREATE UNIQUE INDEX invitation_pending_email ON invitation (tenant_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
{tenant_table("invitation")}

CREATE TABLE audit_event (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_user_id uuid REFERENCES user_account (id),
    actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'api_token', 'staff', 'system')),
    actor_label text NOT NULL DEFAULT '',
    action text NOT NULL,
    target_type text NOT NULL DEFAULT '',
    target_id text NOT NULL DEFAULT '',
    ip inet,
    user_agent text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_event_recent ON audit_event (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX audit_event_action ON audit_event (tenant_id, action, occurred_at DESC);
{tenant_table("audit_event", "SELECT, INSERT")}
{append_only("audit_event")}

CREATE TABLE api_token (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix text NOT NULL,
    token_hash bytea NOT NULL,
    scopes text[] NOT NULL,
    created_by uuid REFERENCES user_account (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash)
);
{tenant_table("api_token")}
"""


forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
