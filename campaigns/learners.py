"""Learners: the people an organization assesses, who may read and import them, and what the
console shows beside their list.

The list itself (the console's, by name, and the JSON API's, newest first) is one read,
`campaigns.learner_listing.list_learners`; an import is `campaigns.learner_import`'s, the
file it reads `campaigns.learner_csv`'s. Learners are people's personal data, read and
imported by members in the console; an API token (no role) reads them only through
`campaigns.learner_listing` and `campaigns.campaign_listing`, as its scopes allow.
"""

from __future__ import annotations

from campaigns.access import require_member
from core.database import fetch, tenant_transaction
from tenants.context import TenantContext
from tenants.permissions import Permission


def require_learners_reader(ctx: TenantContext) -> None:
    """Every member of the organization reads its learners (`org:learners:read`)."""
    require_member(ctx, Permission.LEARNERS_READ)


def require_learners_importer(ctx: TenantContext) -> None:
    """Owners and admins import learners (`org:learners:import`)."""
    require_member(ctx, Permission.LEARNERS_IMPORT)


async def learner_groups(ctx: TenantContext) -> list[str]:
    """The groups the organization's learners are in, in alphabetical order."""
    require_learners_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT DISTINCT g FROM learner, unnest(groups) AS g
               WHERE tenant_id = $1 ORDER BY g LIMIT 1000""",
            ctx.tenant_id,
        )
    return [row["g"] for row in rows]


async def count_learners(ctx: TenantContext) -> int:
    """How many learners the organization has."""
    require_learners_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch("SELECT count(*) AS n FROM learner WHERE tenant_id = $1", ctx.tenant_id)
    return int(rows[0]["n"])
