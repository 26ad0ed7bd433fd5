"""The assessment keeps the engine's estimation state after the answers so far (ADR 0023).

`posterior` holds the EAP posterior's weights on the engine's grid (float64, machine order,
97 values: 776 bytes) that the last answer left; with `theta` and `se`, already stored, the
next answer resumes from them instead of estimating every earlier answer again. NULL before
the first answer, and for tests started before this column: those replay, as before.
"""

from core.schema import sql_migration

ID = "2026-12-03T21:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "assessment keeps the posterior"

SQL = """
ALTER TABLE assessment ADD COLUMN posterior bytea;
"""

forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
