"""A challenge's flag may exist without reports: a content editor retires any challenge of the
bank from its preview, reported or not.

`challenge_flag.first_reported_at` and `last_reported_at` were required (the row was made by
the first verified report). Retiring a challenge nobody reported makes the row, with no report
dates rather than made-up ones: both become optional, together (the check), and keep their
default (now()), which a report's upsert still relies on; the report that follows sets the
first date too (`campaigns.problem_reports._UPSERT_FLAG`). Existing rows have both dates.

Citus: `challenge_flag` is a reference table; the change of its columns and the new check are
propagated to every node.
"""

from core.schema import sql_migration

ID = "2026-12-04T15:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "a challenge flag without reports (retired from the preview)"

SQL = """
ALTER TABLE challenge_flag
    ALTER COLUMN first_reported_at DROP NOT NULL,
    ALTER COLUMN last_reported_at DROP NOT NULL,
    ADD CONSTRAINT challenge_flag_reported_dates
        CHECK ((first_reported_at IS NULL) = (last_reported_at IS NULL));
"""

forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
