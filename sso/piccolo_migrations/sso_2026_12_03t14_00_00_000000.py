"""Identity-provider connections: one row per OIDC or SAML connection of an organization.

`settings` holds what is not secret (issuer, client id, scopes, endpoints cached from
discovery; SAML metadata…); `secret` holds the one secret (OIDC client secret, SAML SP private
key) as AES-GCM ciphertext from `core.secrets`, never in clear.
"""

from core.schema import sql_migration, tenant_table

ID = "2026-12-03T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sso connections"

SQL = f"""
CREATE TABLE sso_connection (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    protocol text NOT NULL CHECK (protocol IN ('oidc', 'saml')),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    enabled boolean NOT NULL DEFAULT false,
    settings jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(settings) = 'object'),
    secret bytea,
    role_mapping jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(role_mapping) = 'object'),
    default_role text NOT NULL DEFAULT 'member' CHECK (default_role IN ('admin', 'member')),
    external_id_claim text NOT NULL DEFAULT '' CHECK (length(external_id_claim) <= 200),
    allow_idp_initiated boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX sso_connection_listing ON sso_connection (tenant_id, created_at, id);
{tenant_table("sso_connection")}
"""

forwards = sql_migration(ID, "sso", DESCRIPTION, SQL)
