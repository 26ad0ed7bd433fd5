"""When the current challenge was first shown (ADR 0016): a timed question's clock starts on
the first page that shows it, not when the previous answer chose it, so a participant who
answers and leaves does not find the next timed question's time already spent."""

from core.schema import sql_migration

ID = "2026-12-01T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "assessment.current_shown_at"

SQL = """
ALTER TABLE assessment ADD COLUMN current_shown_at timestamptz;
"""


forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
