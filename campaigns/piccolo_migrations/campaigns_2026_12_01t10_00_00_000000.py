"""Learner import and the console's learner list (ADR 0011).

An import finds learners by email, case-insensitively, then by external id (already indexed):
`learner_email` serves that lookup. It is not unique: learners created when someone joins a
campaign may already share an address written in another case, and an import serialises
itself per organization instead (an advisory lock). `learner_name` serves the list in name
order, page after page (keyset on `(lower(name), id)`). Both lead with `tenant_id`.
"""

from core.schema import sql_migration

ID = "2026-12-01T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "learner lookups by email and in name order"

SQL = """
CREATE INDEX learner_email ON learner (tenant_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX learner_name ON learner (tenant_id, lower(name), id);
"""


forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
