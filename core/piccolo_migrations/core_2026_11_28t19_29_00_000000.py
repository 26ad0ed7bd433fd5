"""The mail outbox: messages are written in the transaction that causes them (ADR 0002)."""

from core.schema import global_table, sql_migration

ID = "2026-11-28T19:29:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "mail outbox"

SQL = f"""
CREATE TABLE mail_message (
    id uuid PRIMARY KEY,
    to_address text NOT NULL,
    subject text NOT NULL,
    body_text text NOT NULL,
    body_html text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX mail_message_created ON mail_message (created_at DESC);
{global_table("mail_message", "SELECT, INSERT, UPDATE")}
"""


forwards = sql_migration(ID, "core", DESCRIPTION, SQL)
