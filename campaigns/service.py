"""Campaign use cases for organizers: create, edit, duplicate, open, close and archive
campaigns. Their fields and the rules those follow are in `campaigns.campaign_fields`, their
statistics in `campaigns.campaign_stats`; participants' use cases in `campaigns.participation`.

Every function takes the tenant context first, checks that the actor is a member who may
change campaigns (`require_manager`) or read them (`require_reader`), and runs in one
transaction with the tenant set; ids of another tenant answer `NotFound` like unknown ones.
Design: docs/adr/0009-campaign-assessment-state.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from campaigns import assessment, events
from campaigns.access import require_manager, require_reader
from campaigns.campaign_fields import (
    Campaign,
    CampaignFields,
    ProfileSource,
    clean_fields,
    read_days,
)
from campaigns.codes import new_code
from campaigns.content import current_bank, frozen_bank
from campaigns.profile_catalogue import ProfileSpec, catalogue_profile, check_servable, clean_spec
from campaigns.target_profiles import access_target_profile
from core.database import fetch, tenant_transaction
from core.errors import Conflict, Invalid, NotFound
from core.i18n import translate
from core.ids import uuid_or_404
from engine import Bank
from tenants import audit
from tenants.context import TenantContext

CODE_ATTEMPTS = 5


# --- the profile and its snapshot ----------------------------------------------------------


async def _choose_profile(
    ctx: TenantContext, fields: CampaignFields, bank: Bank
) -> tuple[ProfileSpec, ProfileSource, UUID | None]:
    """(profile, its source, target_profile_id) for the fields, inside the transaction."""
    if (fields.profile_key is None) == (fields.target_profile_id is None):
        raise Invalid("Choose one of the offered target profiles.", field="target_profile")
    if fields.profile_key is not None:
        entry = catalogue_profile(fields.profile_key, bank)
        return entry.spec(bank), ProfileSource(kind="catalogue", key=entry.key), None
    try:
        own = await access_target_profile(ctx, str(fields.target_profile_id))
    except NotFound:
        own = None
    if own is None or own.archived_at is not None:
        raise Invalid("Choose one of the offered target profiles.", field="target_profile")
    spec = own.spec
    # The bank may have moved on since the profile was saved: check it again.
    spec = clean_spec(bank, spec.competences, spec.tubes, dict(spec.max_levels))
    source = ProfileSource(kind="custom", id=own.id, version=own.version, name=own.name)
    return spec, source, own.id


def _snapshot(bank: Bank, spec: ProfileSpec, source: ProfileSource | None) -> str:
    return json.dumps(
        {
            "profile": {**spec.to_json(), "source": source.to_json() if source else {}},
            "engine": assessment.engine_settings(bank, spec),
        },
        sort_keys=True,
    )


# --- accessors ---------------------------------------------------------------------------


def _campaign(row: Mapping[str, Any]) -> Campaign:
    snapshot = json.loads(row["profile_snapshot"])
    source = snapshot["profile"].get("source")
    return Campaign(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        code=row["code"],
        status=row["status"],
        profile=ProfileSpec.from_json(snapshot["profile"]),
        profile_source=ProfileSource.from_json(source) if source else None,
        target_profile_id=row["target_profile_id"],
        bank_version=row["bank_version"],
        locales=tuple(row["locales"]),
        landing_text=row["landing_text"],
        external_id_label=row["external_id_label"],
        external_id_format=row["external_id_format"],
        opens_at=row["opens_at"],
        closes_at=row["closes_at"],
        retake_allowed=row["retake_allowed"],
        retake_delay_days=row["retake_delay_days"],
        sso_required=row["sso_required"],
        consumes_seat=row["consumes_seat"],
        created_by=row["created_by"],
        duplicated_from=row["duplicated_from"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        archived_at=row["archived_at"],
        snapshot=row["profile_snapshot"],
    )


async def access_campaign(
    ctx: TenantContext, campaign_id: UUID | str, *, for_update: bool = False
) -> tuple[Campaign, bool]:
    """The campaign `campaign_id` of this tenant and whether anyone has started it; 404 alike
    for unknown and another tenant's. Call inside the tenant's transaction.

    With `for_update` the campaign is locked first and its participants counted after, in a
    statement of its own: a start that committed while this waited for the lock is seen
    (starts take a key-share lock on the campaign, so none can begin until this commits)."""
    if for_update:
        rows = await fetch(
            "SELECT c.* FROM campaign c WHERE c.tenant_id = $1 AND c.id = $2 FOR UPDATE",
            ctx.tenant_id,
            uuid_or_404(campaign_id),
        )
        if not rows:
            raise NotFound()
        started = await fetch(
            """SELECT EXISTS (SELECT 1 FROM participation p WHERE p.tenant_id = $1
                   AND p.campaign_id = $2) AS has_participants""",
            ctx.tenant_id,
            rows[0]["id"],
        )
        return _campaign(rows[0]), bool(started[0]["has_participants"])
    rows = await fetch(
        """SELECT c.*, EXISTS (SELECT 1 FROM participation p WHERE p.tenant_id = $1
               AND p.campaign_id = c.id) AS has_participants
           FROM campaign c WHERE c.tenant_id = $1 AND c.id = $2""",
        ctx.tenant_id,
        uuid_or_404(campaign_id),
    )
    if not rows:
        raise NotFound()
    return _campaign(rows[0]), bool(rows[0]["has_participants"])


# --- organizers --------------------------------------------------------------------------


async def claim_code(tenant_id: UUID, campaign_id: UUID, candidates: Iterable[str]) -> str:
    """Reserve the first free code among `candidates` for the campaign, in the caller's
    transaction (a taken code is skipped, never an error). `RuntimeError` when all are taken:
    with 31^8 codes, five collisions in a row mean something else is wrong."""
    for code in candidates:
        rows = await fetch(
            """INSERT INTO campaign_code (code, organization_id, campaign_id) VALUES ($1, $2, $3)
               ON CONFLICT (code) DO NOTHING RETURNING code""",
            code,
            tenant_id,
            campaign_id,
        )
        if rows:
            return code
    raise RuntimeError("could not find a free campaign code")


def _fresh_codes() -> Iterator[str]:
    return (new_code() for _ in range(CODE_ATTEMPTS))


_INSERT_CAMPAIGN = """
INSERT INTO campaign (tenant_id, id, name, type, code, target_profile_id, profile_snapshot,
    bank_version, external_id_label, external_id_format, opens_at, closes_at, locales,
    landing_text, retake_allowed, retake_delay_days, sso_required, consumes_seat, status,
    created_by, duplicated_from)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
    $18, $19, $20, $21)
RETURNING *, false AS has_participants
"""


def _settings(values: CampaignFields) -> tuple[Any, ...]:
    """The settings a campaign is created and edited with, in the order of the INSERT's and
    the UPDATE's parameters that follow the profile and the bank version."""
    return (
        values.external_id_label,
        values.external_id_format,
        values.opens_at,
        values.closes_at,
        list(values.locales),
        values.landing_text,
        values.retake_allowed,
        values.retake_delay_days,
        values.sso_required,
        values.consumes_seat,
    )


async def _insert_campaign(
    ctx: TenantContext,
    values: CampaignFields,
    spec: ProfileSpec,
    source: ProfileSource | None,
    target_profile_id: UUID | None,
    bank: Bank,
    status: str,
    duplicated_from: UUID | None = None,
) -> Campaign:
    check_servable(bank, spec, values.locales)
    campaign_id = uuid4()
    code = await claim_code(ctx.tenant_id, campaign_id, _fresh_codes())
    rows = await fetch(
        _INSERT_CAMPAIGN,
        ctx.tenant_id,
        campaign_id,
        values.name,
        values.type,
        code,
        target_profile_id,
        _snapshot(bank, spec, source),
        bank.version,
        *_settings(values),
        status,
        ctx.actor.user_id,
        duplicated_from,
    )
    return _campaign(rows[0])


async def create_campaign(
    ctx: TenantContext, fields: CampaignFields, *, draft: bool = False
) -> Campaign:
    """A new campaign, active (or a draft), with a fresh code and the target profile frozen
    against the current bank version."""
    require_manager(ctx)
    fields = read_days(fields, ctx.tenant.zone)
    bank = current_bank()
    values = clean_fields(fields, bank)
    async with tenant_transaction(ctx):
        spec, source, profile_id = await _choose_profile(ctx, fields, bank)
        campaign = await _insert_campaign(
            ctx, values, spec, source, profile_id, bank, "draft" if draft else "active"
        )
        await audit.record(
            ctx,
            "campaign.created",
            "campaign",
            campaign.id,
            name=campaign.name,
            code=campaign.code,
            type=campaign.type,
            status=campaign.status,
        )
    return campaign


def _refuse_archived(campaign: Campaign) -> None:
    if campaign.status == "archived":
        raise Conflict("An archived campaign cannot be changed.")


async def update_campaign(
    ctx: TenantContext, campaign_id: UUID | str, fields: CampaignFields
) -> Campaign:
    """Change a campaign. The profile is frozen when it is chosen: choosing another one
    freezes it against the current bank, keeping the same one keeps the snapshot. Until
    someone starts, the type and the profile may change; afterwards they are fixed. The code
    never changes."""
    require_manager(ctx)
    fields = read_days(fields, ctx.tenant.zone)
    async with tenant_transaction(ctx):
        current, started = await access_campaign(ctx, campaign_id, for_update=True)
        _refuse_archived(current)
        before = current.fields()
        same_profile = fields.profile_key == before.profile_key and (
            str(fields.target_profile_id) if fields.target_profile_id else None
        ) == (str(before.target_profile_id) if before.target_profile_id else None)
        if started and (fields.type != current.type or not same_profile):
            raise Conflict(
                "The target profile and the type cannot change once someone has started."
            )
        if same_profile:
            bank = frozen_bank(current.bank_version)
            values = clean_fields(fields, bank, current)
            check_servable(bank, current.profile, values.locales)
            snapshot, profile_id = current.snapshot, current.target_profile_id
        else:
            bank = current_bank()
            values = clean_fields(fields, bank, current)
            spec, source, profile_id = await _choose_profile(ctx, fields, bank)
            check_servable(bank, spec, values.locales)
            snapshot = _snapshot(bank, spec, source)
        rows = await fetch(
            """UPDATE campaign SET name = $3, type = $4, target_profile_id = $5,
                   profile_snapshot = $6::jsonb, bank_version = $7, external_id_label = $8,
                   external_id_format = $9, opens_at = $10, closes_at = $11, locales = $12,
                   landing_text = $13, retake_allowed = $14, retake_delay_days = $15,
                   sso_required = $16, consumes_seat = $17, updated_at = now()
               WHERE tenant_id = $1 AND id = $2 RETURNING *""",
            ctx.tenant_id,
            current.id,
            values.name,
            values.type,
            profile_id,
            snapshot,
            bank.version,
            *_settings(values),
        )
        updated = _campaign(rows[0])
        changed = sorted(
            name
            for name in CampaignFields.__dataclass_fields__
            if getattr(updated.fields(), name) != getattr(current.fields(), name)
        )
        if updated.profile != current.profile or updated.bank_version != current.bank_version:
            changed.append("profile_snapshot")
        if changed:
            await audit.record(
                ctx, "campaign.updated", "campaign", current.id, name=updated.name, fields=changed
            )
    return updated


def copy_name(name: str, locale: str) -> str:
    """The name of a copy of the campaign `name`: "{name} (copy)" in `locale`, the original
    name shortened so that the whole fits the 200 characters a name may have."""
    suffix = translate(locale, "{name} (copy)", name="\0")
    room = 200 - (len(suffix) - 1)
    short = name if len(name) <= room else name[: room - 1].rstrip() + "…"
    return suffix.replace("\0", short)


async def duplicate_campaign(
    ctx: TenantContext,
    campaign_id: UUID | str,
    *,
    name: str | None = None,
    locale: str = "en",
) -> Campaign:
    """A draft copy of a campaign with a new code: same settings and profile definition
    (frozen again against the current bank), no dates, nobody in it yet. Unless `name` is
    given, it is the original's followed by "(copy)" in `locale`, so that the two are told
    apart in lists."""
    require_manager(ctx)
    bank = current_bank()
    async with tenant_transaction(ctx):
        source, _ = await access_campaign(ctx, campaign_id)
        fields = replace(
            source.fields(),
            opens_at=None,
            closes_at=None,
            name=name or copy_name(source.name, locale),
        )
        values = clean_fields(fields, bank)
        spec = clean_spec(
            bank, source.profile.competences, source.profile.tubes, dict(source.profile.max_levels)
        )
        copy = await _insert_campaign(
            ctx,
            values,
            spec,
            source.profile_source,
            source.target_profile_id,
            bank,
            "draft",
            duplicated_from=source.id,
        )
        await audit.record(
            ctx,
            "campaign.duplicated",
            "campaign",
            copy.id,
            name=copy.name,
            code=copy.code,
            source=str(source.id),
        )
    return copy


async def _set_status(
    ctx: TenantContext, campaign_id: UUID | str, target: str, allowed_from: tuple[str, ...]
) -> Campaign:
    require_manager(ctx)
    async with tenant_transaction(ctx):
        current, _ = await access_campaign(ctx, campaign_id, for_update=True)
        if current.status == target:
            return current
        _refuse_archived(current)
        if current.status not in allowed_from:
            raise Conflict("Only an active campaign can be closed.")
        if target == "active" and current.closes_at and current.closes_at <= datetime.now(UTC):
            raise Conflict("The closing date is past: change it before opening the campaign.")
        stamp = {"closed": "closed_at = now(),", "archived": "archived_at = now(),"}.get(target, "")
        rows = await fetch(
            f"""UPDATE campaign SET status = $3, {stamp} updated_at = now()
                WHERE tenant_id = $1 AND id = $2 RETURNING *""",  # noqa: S608 - constant clause
            ctx.tenant_id,
            current.id,
            target,
        )
        match target:
            case "active":
                await audit.record(
                    ctx, "campaign.activated", "campaign", current.id, name=current.name
                )
            case "closed":
                await audit.record(
                    ctx, "campaign.closed", "campaign", current.id, name=current.name
                )
                await events.campaign_closed(ctx, current.id)
            case _:
                await audit.record(
                    ctx, "campaign.archived", "campaign", current.id, name=current.name
                )
    return _campaign(rows[0])


async def activate_campaign(ctx: TenantContext, campaign_id: UUID | str) -> Campaign:
    """Open a draft (or reopen a closed campaign) to participants."""
    return await _set_status(ctx, campaign_id, "active", ("draft", "closed"))


async def close_campaign(ctx: TenantContext, campaign_id: UUID | str) -> Campaign:
    """Stop accepting participants; those who started may finish and share. Closing a closed
    campaign changes nothing."""
    return await _set_status(ctx, campaign_id, "closed", ("active",))


async def archive_campaign(ctx: TenantContext, campaign_id: UUID | str) -> Campaign:
    """Put a campaign away: its link stops working and nothing in it changes any more; its
    results stay readable. Archiving an archived campaign changes nothing."""
    return await _set_status(ctx, campaign_id, "archived", ("draft", "active", "closed"))


async def get_campaign(ctx: TenantContext, campaign_id: UUID | str) -> Campaign:
    """One campaign of this tenant; `NotFound` otherwise."""
    require_reader(ctx)
    async with tenant_transaction(ctx):
        campaign, _ = await access_campaign(ctx, campaign_id)
    return campaign
