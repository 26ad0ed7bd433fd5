"""Campaign use cases for organizers: create, edit, duplicate, open, close and archive
campaigns, and read their statistics. Participants' use cases are in `campaigns.participation`.

Every function takes the tenant context first, checks that the actor is a member who may
change campaigns (`require_manager`) or read them (`require_reader`), and runs in one
transaction with the tenant set; ids of another tenant answer `NotFound` like unknown ones.
Design: docs/adr/0009-campaign-assessment-state.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from uuid import UUID, uuid4

from campaigns import assessment, events
from campaigns.access import require_manager, require_reader
from campaigns.codes import new_code
from campaigns.content import current_bank, frozen_bank
from campaigns.profile_catalogue import ProfileSpec, catalogue_profile, check_servable, clean_spec
from campaigns.target_profiles import access_target_profile
from core.database import fetch, tenant_transaction
from core.errors import Conflict, Invalid, NotFound
from core.i18n import LOCALES
from core.ids import uuid_or_404
from core.validation import clean_choice, clean_multiline, clean_text
from engine import Bank
from tenants import audit
from tenants.context import TenantContext

CAMPAIGN_TYPES = ("assessment", "profiles_collection")
EXTERNAL_ID_FORMATS = ("text", "digits", "email")
STATUSES = ("draft", "active", "closed", "archived")
MAX_RETAKE_DELAY_DAYS = 3650
CODE_ATTEMPTS = 5
#: The years a campaign date typed in a form may fall in (both included).
FIRST_YEAR, LAST_YEAR = 2000, 2100


# --- views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignFields:
    """What an organizer chooses for a campaign.

    The target profile is either a catalogue profile (`profile_key`, see
    `campaigns.profile_catalogue.CATALOGUE`) or one of the tenant's own (`target_profile_id`).
    Dates are timezone-aware; either may be None (open from creation, never closing). A form
    gives the days as typed instead (`opens_on`, `closes_on`: YYYY-MM-DD, or empty for none),
    which the service reads in the organization's time zone (`opening_time`, `closing_time`).
    """

    name: str
    type: str = "assessment"
    profile_key: str | None = None
    target_profile_id: UUID | str | None = None
    locales: tuple[str, ...] = LOCALES
    landing_text: str = ""
    external_id_label: str | None = None
    external_id_format: str = "text"
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    retake_allowed: bool = False
    retake_delay_days: int = 0
    sso_required: bool = False
    consumes_seat: bool = True
    opens_on: str | None = None
    closes_on: str | None = None


@dataclass(frozen=True)
class ProfileSource:
    """Where a campaign's frozen profile came from: a catalogue profile (`key`), or one of the
    organization's own (`id`), at the `version` frozen and with its `name` then."""

    kind: str
    key: str | None = None
    id: UUID | None = None
    version: int | None = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The source as stored in a campaign's snapshot (only the keys its kind has)."""
        stored = {
            "kind": self.kind,
            "key": self.key,
            "id": str(self.id) if self.id is not None else None,
            "version": self.version,
            "name": self.name,
        }
        return {key: value for key, value in stored.items() if value is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileSource:
        """The inverse of `to_json`."""
        return cls(
            kind=data["kind"],
            key=data.get("key"),
            id=UUID(data["id"]) if data.get("id") is not None else None,
            version=data.get("version"),
            name=data.get("name"),
        )


@dataclass(frozen=True)
class Campaign:
    """A campaign as stored, with its frozen profile."""

    id: UUID
    name: str
    type: str
    code: str
    status: str
    profile: ProfileSpec
    #: None only in a snapshot that did not record it
    profile_source: ProfileSource | None
    target_profile_id: UUID | None
    bank_version: str
    locales: tuple[str, ...]
    landing_text: str
    external_id_label: str | None
    external_id_format: str
    opens_at: datetime | None
    closes_at: datetime | None
    retake_allowed: bool
    retake_delay_days: int
    sso_required: bool
    consumes_seat: bool
    created_by: UUID | None
    duplicated_from: UUID | None
    created_at: datetime
    closed_at: datetime | None
    archived_at: datetime | None
    #: the frozen profile and engine settings, as stored (JSON text)
    snapshot: str = field(default="{}", repr=False)

    def fields(self) -> CampaignFields:
        """The fields this campaign was made from (to edit or duplicate it)."""
        source = self.profile_source
        return CampaignFields(
            name=self.name,
            type=self.type,
            profile_key=source.key if source and source.kind == "catalogue" else None,
            target_profile_id=self.target_profile_id,
            locales=self.locales,
            landing_text=self.landing_text,
            external_id_label=self.external_id_label,
            external_id_format=self.external_id_format,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
            retake_allowed=self.retake_allowed,
            retake_delay_days=self.retake_delay_days,
            sso_required=self.sso_required,
            consumes_seat=self.consumes_seat,
        )


@dataclass(frozen=True)
class CompetenceStats:
    """Shared results of one competence: mean level and learners per level 0–8."""

    average_level: float
    distribution: tuple[int, ...]


@dataclass(frozen=True)
class CampaignStats:
    """Learners who started, completed and shared; over the latest shared result of each
    learner: average global score, and each competence's average level and distribution."""

    started: int
    completed: int
    shared: int
    average_score: float | None
    competences: dict[str, CompetenceStats]


# --- cleaning ----------------------------------------------------------------------------


def _typed_day(typed: str, field: str) -> date | None:
    typed = typed.strip()
    if not typed:
        return None
    try:
        day = date.fromisoformat(typed)
    except ValueError:
        raise Invalid("Enter a date as YYYY-MM-DD.", field=field) from None
    # Years like 0001 or 9999 are typing slips, and 9999-12-31 has no next day to close at.
    # The message is a translated text: change it with FIRST_YEAR and LAST_YEAR.
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise Invalid("Enter a date between the years 2000 and 2100.", field=field)
    return day


def _start_of(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def opening_time(typed: str, zone: tzinfo) -> datetime | None:
    """When a campaign opens whose opening day was typed as `typed` (YYYY-MM-DD): the start
    of that day in the organization's time zone `zone`, in UTC; None when nothing was typed.
    `Invalid` (field `opens_at`) for another format or a year outside FIRST_YEAR–LAST_YEAR."""
    day = _typed_day(typed, "opens_at")
    return _start_of(day, zone) if day else None


def closing_time(typed: str, zone: tzinfo) -> datetime | None:
    """When a campaign closes whose closing day was typed as `typed` (YYYY-MM-DD): the end of
    that day in `zone` (the start of the next), in UTC, so that a campaign closing on the 30th
    is open all day on the 30th; None when nothing was typed. `Invalid` (field `closes_at`)
    as for `opening_time`."""
    day = _typed_day(typed, "closes_at")
    return _start_of(day + timedelta(days=1), zone) if day else None


def last_open_day(closes_at: datetime, zone: tzinfo) -> date:
    """The day a campaign closing at `closes_at` is last open, in `zone`: what the form shows
    for the closing date (the inverse of `closing_time`)."""
    return (closes_at.astimezone(zone) - timedelta(days=1)).date()


def _read_days(fields: CampaignFields, zone: tzinfo) -> CampaignFields:
    """`fields` with the days typed in a form (if any) turned into the instants they mean."""
    opens_at, closes_at = fields.opens_at, fields.closes_at
    if fields.opens_on is not None:
        if opens_at is not None:
            raise ValueError("give opens_at or opens_on, not both")
        opens_at = opening_time(fields.opens_on, zone)
    if fields.closes_on is not None:
        if closes_at is not None:
            raise ValueError("give closes_at or closes_on, not both")
        closes_at = closing_time(fields.closes_on, zone)
    return replace(fields, opens_at=opens_at, closes_at=closes_at, opens_on=None, closes_on=None)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("campaign dates must be timezone-aware")
    return value


def _clean_fields(
    fields: CampaignFields, bank: Bank, previous: Campaign | None = None
) -> dict[str, Any]:
    locales = tuple(dict.fromkeys(fields.locales))
    if not locales:
        raise Invalid("Choose at least one language.", field="locales")
    for locale in locales:
        if locale not in LOCALES or locale not in bank.locales:
            raise Invalid("Choose one of the offered languages.", field="locales")
    opens_at, closes_at = _aware(fields.opens_at), _aware(fields.closes_at)
    if opens_at and closes_at and closes_at <= opens_at:
        raise Invalid("The closing date must come after the opening date.", field="closes_at")
    moved = previous is None or closes_at != previous.closes_at
    if closes_at and moved and closes_at <= datetime.now(UTC):
        raise Invalid("The closing date is already past.", field="closes_at")
    delay = fields.retake_delay_days
    if (
        isinstance(delay, bool)
        or not isinstance(delay, int)
        or not 0 <= delay <= MAX_RETAKE_DELAY_DAYS
    ):
        raise Invalid(
            "Choose a delay between 0 and {max} days.",
            field="retake_delay_days",
            max=MAX_RETAKE_DELAY_DAYS,
        )
    label = clean_text(
        fields.external_id_label, "external_id_label", max_length=100, required=False
    )
    return {
        "name": clean_text(fields.name, "name", max_length=200),
        "type": clean_choice(fields.type, CAMPAIGN_TYPES, "type"),
        "locales": list(locales),
        "landing_text": clean_multiline(fields.landing_text, "landing_text", max_length=5000),
        "external_id_label": label or None,
        "external_id_format": clean_choice(
            fields.external_id_format, EXTERNAL_ID_FORMATS, "external_id_format"
        ),
        "opens_at": opens_at,
        "closes_at": closes_at,
        "retake_allowed": bool(fields.retake_allowed),
        "retake_delay_days": delay,
        "sso_required": bool(fields.sso_required),
        "consumes_seat": bool(fields.consumes_seat),
    }


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


async def _insert_campaign(
    ctx: TenantContext,
    values: Mapping[str, Any],
    spec: ProfileSpec,
    source: ProfileSource | None,
    target_profile_id: UUID | None,
    bank: Bank,
    status: str,
    duplicated_from: UUID | None = None,
) -> Campaign:
    check_servable(bank, spec, values["locales"])
    campaign_id = uuid4()
    code = await claim_code(ctx.tenant_id, campaign_id, _fresh_codes())
    rows = await fetch(
        _INSERT_CAMPAIGN,
        ctx.tenant_id,
        campaign_id,
        values["name"],
        values["type"],
        code,
        target_profile_id,
        _snapshot(bank, spec, source),
        bank.version,
        values["external_id_label"],
        values["external_id_format"],
        values["opens_at"],
        values["closes_at"],
        values["locales"],
        values["landing_text"],
        values["retake_allowed"],
        values["retake_delay_days"],
        values["sso_required"],
        values["consumes_seat"],
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
    fields = _read_days(fields, ctx.tenant.zone)
    bank = current_bank()
    values = _clean_fields(fields, bank)
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
    fields = _read_days(fields, ctx.tenant.zone)
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
            values = _clean_fields(fields, bank, current)
            check_servable(bank, current.profile, values["locales"])
            snapshot, profile_id = current.snapshot, current.target_profile_id
        else:
            bank = current_bank()
            values = _clean_fields(fields, bank, current)
            spec, source, profile_id = await _choose_profile(ctx, fields, bank)
            check_servable(bank, spec, values["locales"])
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
            values["name"],
            values["type"],
            profile_id,
            snapshot,
            bank.version,
            values["external_id_label"],
            values["external_id_format"],
            values["opens_at"],
            values["closes_at"],
            values["locales"],
            values["landing_text"],
            values["retake_allowed"],
            values["retake_delay_days"],
            values["sso_required"],
            values["consumes_seat"],
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


async def duplicate_campaign(
    ctx: TenantContext, campaign_id: UUID | str, *, name: str | None = None
) -> Campaign:
    """A draft copy of a campaign with a new code: same settings and profile definition
    (frozen again against the current bank), no dates, nobody in it yet."""
    require_manager(ctx)
    bank = current_bank()
    async with tenant_transaction(ctx):
        source, _ = await access_campaign(ctx, campaign_id)
        fields = replace(source.fields(), opens_at=None, closes_at=None, name=name or source.name)
        values = _clean_fields(fields, bank)
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


async def campaign_stats(ctx: TenantContext, campaign_id: UUID | str) -> CampaignStats:
    """Participation funnel and shared results of a campaign, in two queries whatever the
    number of participants (one for the campaign and its counts, one for the levels).

    Counts are of learners (several attempts count once). Levels come only from results
    their owners shared, the latest shared attempt of each learner.
    """
    require_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT c.id, n.started, n.completed, n.shared FROM campaign c,
                   LATERAL (SELECT count(DISTINCT p.learner_id) AS started,
                       count(DISTINCT p.learner_id) FILTER (WHERE p.status <> 'started')
                           AS completed,
                       count(DISTINCT p.learner_id) FILTER (WHERE p.status = 'shared') AS shared
                   FROM participation p WHERE p.tenant_id = $1
                       AND p.campaign_id = c.id) n
               WHERE c.tenant_id = $1 AND c.id = $2""",
            ctx.tenant_id,
            uuid_or_404(campaign_id),
        )
        if not rows:
            raise NotFound()
        cells = await fetch(
            """WITH latest AS (
                   SELECT DISTINCT ON (p.learner_id) r.level, r.score, r.competences
                   FROM participation p JOIN result r
                       ON r.tenant_id = $1 AND r.participation_id = p.id
                   WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND p.status = 'shared'
                   ORDER BY p.learner_id, p.attempt DESC),
               cells AS (
                   SELECT c.key AS code, (c.value ->> 'level')::int AS level, 0 AS score
                   FROM latest, jsonb_each(latest.competences) c
                   UNION ALL SELECT '', level, score FROM latest)
               SELECT code, level, count(*) AS learners, sum(score) AS score_sum
               FROM cells GROUP BY code, level ORDER BY code, level""",
            ctx.tenant_id,
            rows[0]["id"],
        )
    return _stats(rows[0], cells)


def _stats(counts: Mapping[str, Any], cells: list[dict[str, Any]]) -> CampaignStats:
    distributions: dict[str, list[int]] = {}
    learners = score_sum = 0
    for cell in cells:
        if cell["code"] == "":
            learners += cell["learners"]
            score_sum += cell["score_sum"]
            continue
        distributions.setdefault(cell["code"], [0] * 9)[cell["level"]] += cell["learners"]
    competences = {
        code: CompetenceStats(
            average_level=sum(level * n for level, n in enumerate(dist)) / sum(dist),
            distribution=tuple(dist),
        )
        for code, dist in distributions.items()
    }
    return CampaignStats(
        started=counts["started"],
        completed=counts["completed"],
        shared=counts["shared"],
        average_score=score_sum / learners if learners else None,
        competences=competences,
    )
