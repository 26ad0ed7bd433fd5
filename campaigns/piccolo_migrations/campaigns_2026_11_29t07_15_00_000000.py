"""Keyset indexes for the paged listings of `campaigns.listing` (ADR 0015): a campaign's
participations newest first, its shared results newest shared first, and the learners newest
first. Each leads with `tenant_id` (Citus routes by it) and ends with `id`, the tie-breaker of
every cursor, so a page is one index range scan whatever its depth.
"""

from core.schema import sql_migration

ID = "2026-11-29T07:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "keyset indexes for participations, shared results and learners"

SQL = """
CREATE INDEX participation_recent
    ON participation (tenant_id, campaign_id, created_at DESC, id DESC);
CREATE INDEX participation_shared
    ON participation (tenant_id, campaign_id, shared_at DESC, id DESC)
    WHERE status = 'shared';
CREATE INDEX learner_recent ON learner (tenant_id, created_at DESC, id DESC);
"""


forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
