"""Verified email domains and the organization's sign-in policy.

`sso_domain` is an organization's claim on a domain: the token it publishes as a DNS TXT
record, and when the record was found. A domain is verified by one organization at most:
a unique index of a distributed table must include `tenant_id`, so the global
`verified_domain` (a reference table on Citus; its column is `organization_id`, not
`tenant_id`, so that it is not distributed) holds each verified domain once, written in the
transaction that verifies it. Home-realm discovery reads it before any tenant is known.

`sso_policy` is one row per organization that changed its policy: whether members must sign
in through SSO, and the one owner who keeps password access (break-glass).
"""

from core.schema import global_table, sql_migration, tenant_table

ID = "2026-12-03T14:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sso verified domains and sign-in policy"

SQL = f"""
CREATE TABLE sso_domain (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    domain text NOT NULL CHECK (length(domain) BETWEEN 3 AND 253 AND domain = lower(domain)),
    token text NOT NULL CHECK (length(token) BETWEEN 20 AND 100),
    verified_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, domain)
);
{tenant_table("sso_domain")}

CREATE TABLE verified_domain (
    domain text PRIMARY KEY CHECK (length(domain) BETWEEN 3 AND 253 AND domain = lower(domain)),
    organization_id uuid NOT NULL REFERENCES organization (id),
    verified_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX verified_domain_organization ON verified_domain (organization_id);
{global_table("verified_domain", "SELECT, INSERT, UPDATE, DELETE")}

CREATE TABLE sso_policy (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    sso_required_for_members boolean NOT NULL DEFAULT false,
    break_glass_user_id uuid REFERENCES user_account (id),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id)
);
{tenant_table("sso_policy")}
"""

forwards = sql_migration(ID, "sso", DESCRIPTION, SQL)
