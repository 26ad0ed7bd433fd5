"""A participant reads their own participations across organizations ("my results").

Like "my organizations" (the `own_rows` policy of `membership`), this is a read that crosses
tenants on purpose: SELECT-only policies admit the rows of the acting user (`jalon.user_id`)
— their learner rows, the participations of those learners, those participations' results
and campaigns. Writes stay under the tenant policy alone. ADR 0010.

Unlike `membership`'s, these policies apply only while no tenant is set: inside a tenant's
transaction, a person's rows in other organizations stay invisible, so a tenant query that
forgot to filter by organization still cannot count them.
"""

from core.schema import sql_migration

ID = "2026-11-29T05:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "participants read their own participations"

_CURRENT_USER = "nullif(current_setting('jalon.user_id', true), '')::uuid"
_NO_TENANT = "nullif(current_setting('jalon.tenant_id', true), '') IS NULL"

SQL = f"""
CREATE INDEX learner_user ON learner (user_id);
CREATE POLICY own_rows ON learner FOR SELECT
    USING ({_NO_TENANT} AND user_id = {_CURRENT_USER});
CREATE POLICY own_rows ON participation FOR SELECT USING ({_NO_TENANT} AND EXISTS (
    SELECT 1 FROM learner l WHERE l.tenant_id = participation.tenant_id
        AND l.id = participation.learner_id AND l.user_id = {_CURRENT_USER}));
CREATE POLICY own_rows ON result FOR SELECT USING ({_NO_TENANT} AND EXISTS (
    SELECT 1 FROM participation p JOIN learner l
        ON l.tenant_id = p.tenant_id AND l.id = p.learner_id
    WHERE p.tenant_id = result.tenant_id AND p.id = result.participation_id
        AND l.user_id = {_CURRENT_USER}));
CREATE POLICY own_rows ON campaign FOR SELECT USING ({_NO_TENANT} AND EXISTS (
    SELECT 1 FROM participation p JOIN learner l
        ON l.tenant_id = p.tenant_id AND l.id = p.learner_id
    WHERE p.tenant_id = campaign.tenant_id AND p.campaign_id = campaign.id
        AND l.user_id = {_CURRENT_USER}));
"""


forwards = sql_migration(ID, "campaigns", DESCRIPTION, SQL)
