"""Sign-up by link (issue 14, journey 1): a person who signs up without a password is mailed
a link, and their account is created only when they follow it (the link proves the address).
Until then what they typed waits here, beside the link's SHA-256 digest: one row per request,
deleted when its link is used and purged once expired (`tenants.accounts`). A global table (a
Citus reference table): no tenant rule applies, as for `user_token`."""

from core.schema import global_table, sql_migration

ID = "2026-12-04T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "signup_request"

SQL = f"""
CREATE TABLE signup_request (
    id uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    email text NOT NULL,
    name text NOT NULL,
    locale text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX signup_request_email ON signup_request (lower(email));
{global_table("signup_request", "SELECT, INSERT, DELETE")}
"""

forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
