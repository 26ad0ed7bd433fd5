"""SAML: the replay cache of assertion ids, and the responses received at an ACS, held for
the browser's next request.

`saml_assertion_seen` holds every assertion id accepted, per connection, until the assertion
expires: it must hold across processes and app instances, so it is in the database. An
assertion is accepted only if its row could be inserted.

`saml_response_received` holds a response POSTed to the assertion consumer service for a few
minutes. The IdP's POST is cross-site, so the browser does not send the session cookie
(SameSite=Lax); the ACS keeps the response and redirects to itself with GET, a top-level
navigation that does carry the cookie, where the response is checked against the session's
flow (InResponseTo) and consumed once.
"""

from core.schema import sql_migration, tenant_table

ID = "2026-12-03T14:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "saml replay cache and received responses"

SQL = f"""
CREATE TABLE saml_assertion_seen (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    connection_id uuid NOT NULL,
    assertion_id text NOT NULL CHECK (length(assertion_id) BETWEEN 1 AND 256),
    seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, connection_id, assertion_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connection (tenant_id, id)
        ON DELETE CASCADE
);
CREATE INDEX saml_assertion_seen_expiry ON saml_assertion_seen (tenant_id, expires_at);
{tenant_table("saml_assertion_seen", "SELECT, INSERT, DELETE")}

CREATE TABLE saml_response_received (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    connection_id uuid NOT NULL,
    saml_response text NOT NULL CHECK (length(saml_response) <= 1000000),
    relay_state text NOT NULL DEFAULT '' CHECK (length(relay_state) <= 200),
    received_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connection (tenant_id, id)
        ON DELETE CASCADE
);
CREATE INDEX saml_response_received_expiry ON saml_response_received (tenant_id, expires_at);
{tenant_table("saml_response_received", "SELECT, INSERT, DELETE")}
"""

forwards = sql_migration(ID, "sso", DESCRIPTION, SQL)
