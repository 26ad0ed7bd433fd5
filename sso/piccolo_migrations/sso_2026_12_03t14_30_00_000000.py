"""SCIM 2.0 provisioning: per-tenant SCIM bearer tokens (stored as SHA-256 digests), the
people a directory provisioned (`directory_user`, one per membership it manages), its groups
and their members, and the mapping of a group's name to a role in the organization.

Every table is tenant-owned (ADR 0002): primary key (tenant_id, id), unique constraints that
include tenant_id, composite foreign keys, forced row-level security.
"""

from core.schema import sql_migration, tenant_table

ID = "2026-12-03T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "scim tokens, directory users and groups, group role mapping"

SQL = f"""
CREATE TABLE scim_token (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix text NOT NULL,
    token_hash bytea NOT NULL,
    created_by uuid REFERENCES user_account (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash)
);
{tenant_table("scim_token", "SELECT, INSERT, UPDATE")}

CREATE TABLE directory_user (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    user_id uuid NOT NULL REFERENCES user_account (id),
    -- the SCIM userName: the person's email address, lower case
    user_name text NOT NULL CHECK (length(user_name) BETWEEN 3 AND 254),
    external_id text CHECK (length(external_id) <= 500),
    given_name text NOT NULL DEFAULT '' CHECK (length(given_name) <= 200),
    family_name text NOT NULL DEFAULT '' CHECK (length(family_name) <= 200),
    display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    -- the SCIM `emails` as the directory sent them: [{{"value", "type", "primary"}}]
    emails jsonb NOT NULL DEFAULT '[]',
    -- as the directory sent it; NULL when it said nothing (the person is then active)
    active boolean,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_id),
    UNIQUE (tenant_id, user_name)
);
CREATE INDEX directory_user_external_id ON directory_user (tenant_id, external_id);
{tenant_table("directory_user")}

CREATE TABLE directory_group (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    external_id text CHECK (length(external_id) <= 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, display_name)
);
{tenant_table("directory_group")}

CREATE TABLE directory_group_member (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    group_id uuid NOT NULL,
    directory_user_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, group_id, directory_user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES directory_group (tenant_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, directory_user_id) REFERENCES directory_user (tenant_id, id)
        ON DELETE CASCADE
);
CREATE INDEX directory_group_member_user
    ON directory_group_member (tenant_id, directory_user_id);
{tenant_table("directory_group_member", "SELECT, INSERT, DELETE")}

-- What a directory group means here: the role its members get (admin or member) and the
-- learner group participants are filed under. Keyed by the group's display name, so the
-- admin can set it before the directory first pushes the group.
CREATE TABLE directory_group_mapping (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    group_name text NOT NULL CHECK (length(group_name) BETWEEN 1 AND 200),
    role text NOT NULL CHECK (role IN ('admin', 'member')),
    learner_group text NOT NULL DEFAULT '' CHECK (length(learner_group) <= 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, group_name)
);
{tenant_table("directory_group_mapping")}
"""

forwards = sql_migration(ID, "sso", DESCRIPTION, SQL)
