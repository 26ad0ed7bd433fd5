"""The zone a mail's times were written in (issue 14, defect 5).

`mail_message` is global (a reference table on Citus): it gets no tenant id, which would read
as a tenant-owned row without row-level security. It keeps only `zone`, the IANA name of the
zone of the organization the message was written for (NULL for mail outside any organization:
sign-in links, staff welcome), so the development outbox shows when a message was written in
that zone, named, and UTC, named, for the others. Nothing personal, no new grant.
"""

from core.schema import sql_migration

ID = "2026-12-04T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "mail_message.zone: the zone of the organization a message was written for"

SQL = """
ALTER TABLE mail_message ADD COLUMN zone text;
"""


forwards = sql_migration(ID, "core", DESCRIPTION, SQL)
