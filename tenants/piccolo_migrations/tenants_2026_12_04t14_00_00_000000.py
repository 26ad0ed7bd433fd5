"""Email verification (issue 14, gap 8): a person who signs up with a password is mailed a
link that proves their address before their results can be shared. Its token lives in
`user_token` like the reset and sign-in links' (a SHA-256 digest, single-use, expiring), under
a new purpose, with the address it was sent to, so that it verifies that address only.
`user_token` is a global table (a Citus reference table): no tenant rule applies."""

from core.schema import sql_migration

ID = "2026-12-04T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "user_token email_verification"

SQL = """
ALTER TABLE user_token DROP CONSTRAINT user_token_purpose_check;
ALTER TABLE user_token ADD CONSTRAINT user_token_purpose_check
    CHECK (purpose IN ('password_reset', 'magic_link', 'email_verification'));
ALTER TABLE user_token ADD COLUMN email text;
"""

forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
