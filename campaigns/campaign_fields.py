"""A campaign's fields: as an organizer chooses them (`CampaignFields`), as stored with its
frozen profile (`Campaign`, `ProfileSource`), and their rules as pure functions (no I/O): the
days typed in a form read in the organization's time zone (`opening_time`, `closing_time`,
`last_open_day`, `read_days`) and the checks every field passes before it is stored
(`clean_fields`). The use cases that apply them are in `campaigns.service`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from uuid import UUID

from campaigns.profile_catalogue import ProfileSpec
from core.errors import Invalid
from core.i18n import LOCALES
from core.validation import clean_choice, clean_day, clean_multiline, clean_text
from engine import Bank

CAMPAIGN_TYPES = ("assessment", "profiles_collection")
EXTERNAL_ID_FORMATS = ("text", "digits", "email")
STATUSES = ("draft", "active", "closed", "archived")
MAX_RETAKE_DELAY_DAYS = 3650


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
    #: French and English, the languages every bank Jalon ships is written in.
    locales: tuple[str, ...] = ("fr", "en")
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


# --- days typed in a form ------------------------------------------------------------------


def _start_of(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def opening_time(typed: str, zone: tzinfo) -> datetime | None:
    """When a campaign opens whose opening day was typed as `typed` (YYYY-MM-DD): the start
    of that day in the organization's time zone `zone`, in UTC; None when nothing was typed.
    `Invalid` (field `opens_at`) for another format or a year outside the years
    `core.validation.clean_day` accepts."""
    day = clean_day(typed, "opens_at")
    return _start_of(day, zone) if day else None


def closing_time(typed: str, zone: tzinfo) -> datetime | None:
    """When a campaign closes whose closing day was typed as `typed` (YYYY-MM-DD): the end of
    that day in `zone` (the start of the next), in UTC, so that a campaign closing on the 30th
    is open all day on the 30th; None when nothing was typed. `Invalid` (field `closes_at`)
    as for `opening_time`."""
    day = clean_day(typed, "closes_at")
    return _start_of(day + timedelta(days=1), zone) if day else None


def last_open_day(closes_at: datetime, zone: tzinfo) -> date:
    """The day a campaign closing at `closes_at` is last open, in `zone`: what the form shows
    for the closing date (the inverse of `closing_time`)."""
    return (closes_at.astimezone(zone) - timedelta(days=1)).date()


def read_days(fields: CampaignFields, zone: tzinfo) -> CampaignFields:
    """`fields` with the days typed in a form (if any) turned into the instants they mean in
    the organization's time zone `zone`. A programming error (`ValueError`) to give both a
    typed day and an instant for the same date."""
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


# --- checks before storing ------------------------------------------------------------------


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("campaign dates must be timezone-aware")
    return value


def offered_locales(bank: Bank) -> tuple[str, ...]:
    """The languages a campaign can be given: Jalon's (`core.i18n.LOCALES`, in their order)
    that `bank` is written in (the demo bank: French and English, not yet Dutch or German)."""
    return tuple(locale for locale in LOCALES if locale in bank.locales)


def clean_fields(
    fields: CampaignFields, bank: Bank, previous: Campaign | None = None
) -> CampaignFields:
    """`fields` as they are stored: text trimmed, languages without repeats, an empty label
    None; `Invalid` naming the field for a language the bank or Jalon does not offer, a
    closing date not after the opening date or already past (unless it is the one `previous`,
    the campaign being edited, already has), a retake delay out of 0–`MAX_RETAKE_DELAY_DAYS`,
    or any text, type or format refused. The target profile is left to the service.
    A programming error (`ValueError`) for a date without a time zone."""
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
    return replace(
        fields,
        name=clean_text(fields.name, "name", max_length=200),
        type=clean_choice(fields.type, CAMPAIGN_TYPES, "type"),
        locales=locales,
        landing_text=clean_multiline(fields.landing_text, "landing_text", max_length=5000),
        external_id_label=label or None,
        external_id_format=clean_choice(
            fields.external_id_format, EXTERNAL_ID_FORMATS, "external_id_format"
        ),
        opens_at=opens_at,
        closes_at=closes_at,
        retake_allowed=bool(fields.retake_allowed),
        retake_delay_days=delay,
        sso_required=bool(fields.sso_required),
        consumes_seat=bool(fields.consumes_seat),
    )
