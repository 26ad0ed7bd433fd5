"""A participant's link: the campaign behind a code, what its landing page shows, and the
context a signed-in participant acts in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from campaigns.codes import is_well_formed, normalize_code
from campaigns.participation.rules import (
    CLOSED_MESSAGE,
    UNKNOWN_CODE_MESSAGE,
    refuse_unless_accepting,
)
from core.database import dangerously_switch_tenant, fetch, global_transaction, tenant_transaction
from core.errors import Gone, NotFound, Unauthenticated
from tenants.context import Actor, TenantContext, TenantSummary
from tenants.organizations import summary, summary_columns

#: The campaign a participant's code names and its organization (a global read).
_ORGANIZATION_OF_CODE = f"""
SELECT cc.campaign_id, {summary_columns("o")}
FROM campaign_code cc JOIN organization o ON o.id = cc.organization_id
WHERE cc.code = $1"""  # noqa: S608 - constant columns


@dataclass(frozen=True)
class CampaignLanding:
    """What a participant's link shows before they start, and the tenant it belongs to."""

    tenant: TenantSummary
    campaign_id: UUID
    code: str
    name: str
    type: str
    landing_text: str
    locales: tuple[str, ...]
    external_id_label: str | None
    external_id_format: str
    sso_required: bool
    closes_at: datetime | None


async def resolve_code(code: str) -> CampaignLanding:
    """The campaign behind a participant's code and its organization.

    Unknown, mistyped and draft campaigns are `NotFound` alike; closed, archived, ended
    campaigns and suspended organizations are `Gone`; one not open yet is a `Conflict` with
    its opening date.
    """
    normalized = normalize_code(code)
    if not is_well_formed(normalized):
        raise NotFound(UNKNOWN_CODE_MESSAGE)
    async with global_transaction():
        orgs = await fetch(
            _ORGANIZATION_OF_CODE,
            normalized,
        )
        if not orgs:
            raise NotFound(UNKNOWN_CODE_MESSAGE)
        org = orgs[0]
        if org["status"] in ("suspended", "closed"):
            raise Gone(CLOSED_MESSAGE)
        await dangerously_switch_tenant(org["id"])
        rows = await fetch(
            "SELECT * FROM campaign WHERE tenant_id = $1 AND id = $2",
            org["id"],
            org["campaign_id"],
        )
    if not rows:
        raise NotFound(UNKNOWN_CODE_MESSAGE)
    row = rows[0]
    refuse_unless_accepting(row["status"], row["opens_at"], row["closes_at"], datetime.now(UTC))
    return CampaignLanding(
        tenant=summary(org),
        campaign_id=row["id"],
        code=row["code"],
        name=row["name"],
        type=row["type"],
        landing_text=row["landing_text"],
        locales=tuple(row["locales"]),
        external_id_label=row["external_id_label"],
        external_id_format=row["external_id_format"],
        sso_required=row["sso_required"],
        closes_at=row["closes_at"],
    )


def participant_context(tenant: TenantSummary, actor: Actor) -> TenantContext:
    """The context a signed-in participant acts in: the campaign's tenant, no permissions."""
    if actor.kind != "user" or actor.user_id is None:
        raise Unauthenticated("Sign in to continue.")
    return TenantContext(tenant=tenant, actor=actor)


@dataclass(frozen=True)
class OwnLatest:
    """A signed-in participant's latest participation in a campaign."""

    id: UUID
    status: str


async def own_latest_participation(ctx: TenantContext, campaign_id: UUID) -> OwnLatest | None:
    """The signed-in participant's latest participation in the campaign, if any: the campaign's
    link then leads a finished one to its results rather than to the start form again."""
    if ctx.actor.user_id is None:
        return None
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT p.id, p.status FROM participation p
               JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
               WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND l.user_id = $3
               ORDER BY p.attempt DESC LIMIT 1""",
            ctx.tenant_id,
            campaign_id,
            ctx.actor.user_id,
        )
    return OwnLatest(rows[0]["id"], rows[0]["status"]) if rows else None


@dataclass(frozen=True)
class ClosedCampaign:
    """A campaign whose link no longer takes participants (closed, archived or ended), as its
    link still shows it to those who took it."""

    tenant: TenantSummary
    campaign_id: UUID
    name: str


async def closed_campaign(code: str) -> ClosedCampaign | None:
    """The campaign behind `code` when it is closed or past its end (`resolve_code` answers
    `Gone`), its organization still active; None otherwise (unknown code, draft, open,
    archived - whose participations are out of reach -, suspended or closed organization).
    Its link then leads a participant who finished it to their results."""
    normalized = normalize_code(code)
    if not is_well_formed(normalized):
        return None
    async with global_transaction():
        orgs = await fetch(
            _ORGANIZATION_OF_CODE,
            normalized,
        )
        if not orgs or orgs[0]["status"] in ("suspended", "closed"):
            return None
        org = orgs[0]
        await dangerously_switch_tenant(org["id"])
        rows = await fetch(
            "SELECT id, name, status, closes_at FROM campaign WHERE tenant_id = $1 AND id = $2",
            org["id"],
            org["campaign_id"],
        )
    if not rows or rows[0]["status"] == "draft":
        return None
    row = rows[0]
    ended = row["closes_at"] is not None and row["closes_at"] <= datetime.now(UTC)
    if not (row["status"] == "closed" or (row["status"] == "active" and ended)):
        return None
    return ClosedCampaign(tenant=summary(org), campaign_id=row["id"], name=row["name"])
