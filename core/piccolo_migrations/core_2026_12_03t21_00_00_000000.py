"""Mail keeps no live link once sent (issue 13 §2.2, ADR 0024).

A message's body carries live invitation, magic-link and reset URLs. It is kept only until the
message is sent: then the body is redacted (emptied) and the record keeps its metadata
(recipient, subject, status, attempts, when it was written, sent and redacted). Messages
already sent are redacted here. `status` says where a message is: `queued` (its delivery job
will send it), `held` (development mode without SMTP: kept unsent for the development outbox),
`sent`, or `failed` (given up after 20 attempts, body redacted too).

The runtime group keeps what sending needs: INSERT (queue), SELECT (the delivery job and the
sweep read the message) and UPDATE (its outcome), never DELETE: the hourly purge of records
older than the retention (`JALON_MAIL_RETENTION_DAYS`) is `mail_purge(days)`, a
`SECURITY DEFINER` function of the owner. Table-wide grants, not per column: Citus propagates
column grants only in its newest releases.
"""

from core.schema import sql_migration

ID = "2026-12-03T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "mail bodies redacted once sent, purged after the retention"

SQL = """
ALTER TABLE mail_message
    ADD COLUMN status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'held', 'sent', 'failed')),
    ADD COLUMN redacted_at timestamptz;
UPDATE mail_message SET status = 'sent', body_text = '', body_html = NULL, redacted_at = now()
    WHERE sent_at IS NOT NULL;
CREATE INDEX mail_message_queued ON mail_message (created_at) WHERE status = 'queued';
REVOKE ALL ON mail_message FROM jalon_runtime;
GRANT SELECT, INSERT, UPDATE ON mail_message TO jalon_runtime;
CREATE FUNCTION mail_purge(keep_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
DECLARE
    gone integer;
BEGIN
    DELETE FROM public.mail_message
        WHERE created_at < now() - make_interval(days => greatest(keep_days, 1));
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END $$;
REVOKE ALL ON FUNCTION mail_purge(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mail_purge(integer) TO jalon_runtime;
"""

forwards = sql_migration(ID, "core", DESCRIPTION, SQL)
