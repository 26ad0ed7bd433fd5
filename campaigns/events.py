"""The campaign events announced to the organization's webhooks (`tenants.webhooks`).

Importing this module registers them (`tenants` may not know campaigns, so campaigns declares
its own events; the entry point imports this module in every process, `api.runtime`). Each
function runs inside the transaction of the change it announces, so the event commits or rolls
back with it; the payloads are documented in docs/webhooks.md.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from core.database import fetch
from tenants.context import TenantContext
from tenants.webhooks.delivery import emit
from tenants.webhooks.events import register_event

PARTICIPATION_SHARED = register_event(
    "participation.shared", "a participant shares their results with the organization"
).name
CAMPAIGN_CLOSED = register_event("campaign.closed", "an admin closes a campaign").name

_SHARED = """
SELECT p.id, p.attempt, p.external_id, p.completed_at, p.shared_at, c.id AS campaign_id,
       c.code, c.name, l.external_id AS learner_external_id, l.email, r.level, r.score,
       r.competences
FROM participation p
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
LEFT JOIN result r ON r.tenant_id = $1 AND r.participation_id = p.id
WHERE p.tenant_id = $1 AND p.id = $2
"""


async def participation_shared(ctx: TenantContext, participation_id: UUID) -> None:
    """Announce `participation.shared`: the campaign, the participation, the learner and the
    result (global level and score, each competence's level)."""
    rows = await fetch(_SHARED, ctx.tenant_id, participation_id)
    if not rows:
        return
    row = rows[0]
    result: dict[str, Any] | None = None
    if row["level"] is not None:
        competences = json.loads(row["competences"])
        result = {
            "level": row["level"],
            "score": row["score"],
            "competences": {
                code: {"level": values.get("level", 0)} for code, values in competences.items()
            },
        }
    await emit(
        ctx,
        PARTICIPATION_SHARED,
        {
            "campaign": {"id": row["campaign_id"], "code": row["code"], "name": row["name"]},
            "participation": {
                "id": row["id"],
                "attempt": row["attempt"],
                "completed_at": row["completed_at"],
                "shared_at": row["shared_at"],
            },
            "learner": {
                "external_id": row["external_id"] or row["learner_external_id"],
                "email": row["email"],
            },
            "result": result,
        },
    )


async def campaign_closed(ctx: TenantContext, campaign_id: UUID) -> None:
    """Announce `campaign.closed`: the campaign and how many learners took part."""
    rows = await fetch(
        """SELECT c.id, c.code, c.name, c.closed_at,
                  (SELECT count(*) FROM participation p WHERE p.tenant_id = $1
                       AND p.campaign_id = c.id) AS participations,
                  (SELECT count(*) FROM participation p WHERE p.tenant_id = $1
                       AND p.campaign_id = c.id AND p.status = 'shared') AS shared
           FROM campaign c WHERE c.tenant_id = $1 AND c.id = $2""",
        ctx.tenant_id,
        campaign_id,
    )
    if not rows:
        return
    row = rows[0]
    await emit(
        ctx,
        CAMPAIGN_CLOSED,
        {
            "campaign": {
                "id": row["id"],
                "code": row["code"],
                "name": row["name"],
                "closed_at": row["closed_at"],
            },
            "participations": row["participations"],
            "shared": row["shared"],
        },
    )
