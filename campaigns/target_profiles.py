"""A tenant's own target profiles: competences (and topics) chosen from the bank, with level
caps. Each change bumps the version; campaigns keep the version they froze."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from campaigns.access import require_manager, require_reader
from campaigns.content import current_bank
from campaigns.profile_catalogue import ProfileSpec, clean_spec
from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, NotFound
from core.ids import uuid_or_404
from core.validation import clean_multiline, clean_text
from tenants import audit
from tenants.context import TenantContext


@dataclass(frozen=True)
class TargetProfileFields:
    """What a member chooses for a profile of their own."""

    name: str
    competences: Sequence[str]
    tubes: Sequence[str] = ()
    max_levels: Mapping[str, int] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class TargetProfile:
    """A tenant's profile, current version."""

    id: UUID
    name: str
    description: str
    spec: ProfileSpec
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


def _profile(row: Mapping[str, Any]) -> TargetProfile:
    return TargetProfile(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        spec=ProfileSpec.from_json(
            {
                "competences": row["competences"],
                "tubes": row["tubes"],
                "max_levels": json.loads(row["max_levels"]),
            }
        ),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        archived_at=row["archived_at"],
    )


def _clean(fields: TargetProfileFields) -> tuple[str, str, ProfileSpec]:
    name = clean_text(fields.name, "name", max_length=200)
    description = clean_multiline(fields.description, "description", max_length=2000)
    spec = clean_spec(current_bank(), fields.competences, fields.tubes, fields.max_levels)
    return name, description, spec


async def access_target_profile(
    ctx: TenantContext, profile_id: UUID | str, *, for_update: bool = False
) -> TargetProfile:
    """The profile `profile_id` of this tenant; 404 alike for unknown and another tenant's.
    Call inside the tenant's transaction."""
    lock = "FOR UPDATE" if for_update else ""
    rows = await fetch(
        f"SELECT * FROM target_profile WHERE tenant_id = $1 AND id = $2 {lock}",  # noqa: S608 - constant clause
        ctx.tenant_id,
        uuid_or_404(profile_id),
    )
    if not rows:
        raise NotFound()
    return _profile(rows[0])


async def create_target_profile(ctx: TenantContext, fields: TargetProfileFields) -> TargetProfile:
    """A new profile (version 1), checked against the current bank."""
    require_manager(ctx)
    name, description, spec = _clean(fields)
    profile_id = uuid4()
    async with tenant_transaction(ctx):
        rows = await fetch(
            """INSERT INTO target_profile (tenant_id, id, name, description, competences, tubes,
                   max_levels, created_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) RETURNING *""",
            ctx.tenant_id,
            profile_id,
            name,
            description,
            list(spec.competences),
            list(spec.tubes),
            json.dumps(dict(spec.max_levels)),
            ctx.actor.user_id,
        )
        await audit.record(ctx, "target_profile.created", "target_profile", profile_id, name=name)
    return _profile(rows[0])


async def update_target_profile(
    ctx: TenantContext, profile_id: UUID | str, fields: TargetProfileFields
) -> TargetProfile:
    """Change a profile; its version goes up by one. Campaigns that froze an earlier version
    keep it; an archived profile cannot change."""
    require_manager(ctx)
    name, description, spec = _clean(fields)
    async with tenant_transaction(ctx):
        current = await access_target_profile(ctx, profile_id, for_update=True)
        if current.archived_at is not None:
            raise Conflict("An archived target profile cannot be changed.")
        if (name, description, spec) == (current.name, current.description, current.spec):
            return current
        rows = await fetch(
            """UPDATE target_profile SET name = $3, description = $4, competences = $5,
                   tubes = $6, max_levels = $7::jsonb, version = version + 1, updated_at = now()
               WHERE tenant_id = $1 AND id = $2 RETURNING *""",
            ctx.tenant_id,
            current.id,
            name,
            description,
            list(spec.competences),
            list(spec.tubes),
            json.dumps(dict(spec.max_levels)),
        )
        updated = _profile(rows[0])
        await audit.record(
            ctx,
            "target_profile.updated",
            "target_profile",
            current.id,
            name=name,
            version=updated.version,
        )
    return updated


async def archive_target_profile(ctx: TenantContext, profile_id: UUID | str) -> None:
    """Withdraw a profile from the choices of new campaigns (existing ones keep theirs).
    Archiving an archived profile changes nothing."""
    require_manager(ctx)
    async with tenant_transaction(ctx):
        current = await access_target_profile(ctx, profile_id, for_update=True)
        if current.archived_at is not None:
            return
        await execute(
            "UPDATE target_profile SET archived_at = now() WHERE tenant_id = $1 AND id = $2",
            ctx.tenant_id,
            current.id,
        )
        await audit.record(
            ctx, "target_profile.archived", "target_profile", current.id, name=current.name
        )


async def list_target_profiles(
    ctx: TenantContext, *, include_archived: bool = False
) -> list[TargetProfile]:
    """The tenant's profiles by name."""
    require_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT * FROM target_profile WHERE tenant_id = $1
                 AND ($2 OR archived_at IS NULL) ORDER BY lower(name), id""",
            ctx.tenant_id,
            include_archived,
        )
    return [_profile(row) for row in rows]


async def get_target_profile(ctx: TenantContext, profile_id: UUID | str) -> TargetProfile:
    """One profile of this tenant; `NotFound` otherwise."""
    require_reader(ctx)
    async with tenant_transaction(ctx):
        return await access_target_profile(ctx, profile_id)
