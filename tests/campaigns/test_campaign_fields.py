"""A campaign's fields and their rules, without a database: the days typed in a form read in
the organization's time zone, the checks every field passes before it is stored, the profile
source as stored in the snapshot, and the fields a stored campaign was made from. The use
cases that apply them are tested in test_service.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from campaigns.campaign_fields import (
    MAX_RETAKE_DELAY_DAYS,
    Campaign,
    CampaignFields,
    ProfileSource,
    clean_fields,
    closing_time,
    last_open_day,
    opening_time,
    read_days,
)
from campaigns.profile_catalogue import ProfileSpec
from core.errors import Invalid
from engine import Bank

# --- dates typed in a form ----------------------------------------------------------------

PARIS, NOUMEA = ZoneInfo("Europe/Paris"), ZoneInfo("Pacific/Noumea")


def test_an_opening_day_starts_at_midnight_in_the_organizations_zone() -> None:
    # 31 March 2030: Paris moves to summer time at 2:00, so its midnight is still UTC+1.
    assert opening_time("2030-03-31", PARIS) == datetime(2030, 3, 30, 23, tzinfo=UTC)
    assert opening_time(" 2030-07-14 ", PARIS) == datetime(2030, 7, 13, 22, tzinfo=UTC)
    assert opening_time("2030-07-14", NOUMEA) == datetime(2030, 7, 13, 13, tzinfo=UTC)
    assert opening_time("", PARIS) is None
    assert opening_time("   ", PARIS) is None


def test_a_closing_day_stays_open_until_its_end_in_the_organizations_zone() -> None:
    # Closing on the 30th means open all day on the 30th: closed from midnight on the 31st.
    assert closing_time("2030-12-30", PARIS) == datetime(2030, 12, 30, 23, tzinfo=UTC)
    assert closing_time("2030-12-31", NOUMEA) == datetime(2030, 12, 31, 13, tzinfo=UTC)
    assert closing_time("2100-12-31", UTC) == datetime(2101, 1, 1, tzinfo=UTC)
    assert closing_time("", PARIS) is None


@pytest.mark.parametrize("zone", [PARIS, NOUMEA, ZoneInfo("America/Los_Angeles"), UTC])
@pytest.mark.parametrize("typed", ["2030-03-31", "2030-10-27", "2030-12-31", "2100-12-31"])
def test_the_form_shows_the_closing_day_that_was_typed(zone: Any, typed: str) -> None:
    closes_at = closing_time(typed, zone)
    assert closes_at is not None
    assert last_open_day(closes_at, zone) == date.fromisoformat(typed)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("30/12/2030", "Enter a date as YYYY-MM-DD."),
        ("2030-02-30", "Enter a date as YYYY-MM-DD."),
        ("tomorrow", "Enter a date as YYYY-MM-DD."),
        ("20301230", "Enter a date as YYYY-MM-DD."),  # ISO, but not what a form sends
        ("1999-12-31", "Enter a date between the years 2000 and 2100."),
        ("2101-01-01", "Enter a date between the years 2000 and 2100."),
        ("0001-01-01", "Enter a date between the years 2000 and 2100."),
        ("9999-12-31", "Enter a date between the years 2000 and 2100."),
    ],
)
def test_a_typed_day_outside_the_window_or_malformed_is_refused(typed: str, message: str) -> None:
    for read, field in (
        (opening_time, "opens_at"),
        (closing_time, "closes_at"),
    ):
        with pytest.raises(Invalid) as caught:
            read(typed, PARIS)
        assert (caught.value.field, caught.value.message) == (field, message)


def test_the_window_includes_its_first_and_last_years() -> None:
    assert opening_time("2000-01-01", UTC) == datetime(2000, 1, 1, tzinfo=UTC)
    assert opening_time("2100-12-31", UTC) == datetime(2100, 12, 31, tzinfo=UTC)


def test_days_typed_in_a_form_become_instants_and_are_then_forgotten() -> None:
    typed = CampaignFields(name="Typed", opens_on="2090-07-01", closes_on="")
    read = read_days(typed, PARIS)
    assert (read.opens_at, read.closes_at) == (datetime(2090, 6, 30, 22, tzinfo=UTC), None)
    assert (read.opens_on, read.closes_on) == (None, None)
    given = CampaignFields(name="Given", closes_at=datetime(2090, 1, 1, tzinfo=UTC))
    assert read_days(given, PARIS) == given
    with pytest.raises(ValueError, match="not both"):
        read_days(replace(given, closes_on="2090-01-02"), PARIS)
    with pytest.raises(ValueError, match="not both"):
        read_days(replace(typed, opens_at=datetime(2090, 1, 1, tzinfo=UTC)), PARIS)


# --- checks before storing ------------------------------------------------------------------

LATER = datetime(2090, 1, 1, tzinfo=UTC)


def test_fields_are_stored_trimmed_and_without_repeats(test_bank: Bank) -> None:
    fields = CampaignFields(
        name="  Autumn check ",
        profile_key="digcomp",
        locales=("fr", "en", "fr"),
        landing_text=" Hello\r\nthere ",
        external_id_label="  ",
        opens_at=LATER,
        closes_at=LATER + timedelta(days=30),
        retake_delay_days=MAX_RETAKE_DELAY_DAYS,
    )
    cleaned = clean_fields(fields, test_bank)
    assert cleaned == replace(
        fields,
        name="Autumn check",
        locales=("fr", "en"),
        landing_text="Hello\nthere",
        external_id_label=None,
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "x" * 201}, "name", "This field is too long ({max} characters at most)."),
        ({"type": "quiz"}, "type", "Choose one of the offered options."),
        ({"locales": ()}, "locales", "Choose at least one language."),
        ({"locales": ("en", "xx")}, "locales", "Choose one of the offered languages."),
        (
            {"external_id_format": "regex"},
            "external_id_format",
            "Choose one of the offered options.",
        ),
        (
            {"external_id_label": "x" * 101},
            "external_id_label",
            "This field is too long ({max} characters at most).",
        ),
        (
            {"retake_delay_days": MAX_RETAKE_DELAY_DAYS + 1},
            "retake_delay_days",
            "Choose a delay between 0 and {max} days.",
        ),
        (
            {"retake_delay_days": True},
            "retake_delay_days",
            "Choose a delay between 0 and {max} days.",
        ),
        (
            {"opens_at": LATER, "closes_at": LATER},
            "closes_at",
            "The closing date must come after the opening date.",
        ),
        (
            {"closes_at": datetime(2020, 1, 1, tzinfo=UTC)},
            "closes_at",
            "The closing date is already past.",
        ),
    ],
)
def test_a_field_breaking_a_rule_is_named_with_a_clear_message(
    test_bank: Bank, changes: dict[str, Any], field: str, message: str
) -> None:
    fields = replace(CampaignFields(name="Check", profile_key="digcomp"), **changes)
    with pytest.raises(Invalid) as caught:
        clean_fields(fields, test_bank)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_a_past_closing_date_may_stay_but_not_be_chosen(test_bank: Bank) -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    campaign = _campaign(closes_at=past)
    assert clean_fields(campaign.fields(), test_bank, campaign).closes_at == past
    moved = replace(campaign.fields(), closes_at=past + timedelta(days=1))
    with pytest.raises(Invalid, match="already past"):
        clean_fields(moved, test_bank, campaign)


def test_a_date_without_a_time_zone_is_a_programming_error(test_bank: Bank) -> None:
    naive = CampaignFields(name="Naive", opens_at=datetime(2090, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        clean_fields(naive, test_bank)


# --- as stored ----------------------------------------------------------------------------


def _campaign(**changes: Any) -> Campaign:
    stored = Campaign(
        id=uuid4(),
        name="Stored",
        type="assessment",
        code="ABCDEFGH2",
        status="active",
        profile=ProfileSpec(competences=("1.1",)),
        profile_source=ProfileSource(kind="catalogue", key="digcomp"),
        target_profile_id=None,
        bank_version="test",
        locales=("en",),
        landing_text="",
        external_id_label=None,
        external_id_format="text",
        opens_at=None,
        closes_at=None,
        retake_allowed=False,
        retake_delay_days=0,
        sso_required=False,
        consumes_seat=True,
        created_by=None,
        duplicated_from=None,
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
        closed_at=None,
        archived_at=None,
    )
    return replace(stored, **changes)


def test_a_stored_campaign_gives_back_the_fields_it_was_made_from() -> None:
    catalogue = _campaign(name="From the catalogue", retake_delay_days=7)
    assert catalogue.fields() == CampaignFields(
        name="From the catalogue",
        profile_key="digcomp",
        locales=("en",),
        retake_delay_days=7,
    )
    own = uuid4()
    custom = _campaign(
        profile_source=ProfileSource(kind="custom", id=own, version=2, name="Ours"),
        target_profile_id=own,
    )
    assert (custom.fields().profile_key, custom.fields().target_profile_id) == (None, own)


def test_a_profile_source_is_stored_with_only_the_keys_its_kind_has() -> None:
    catalogue = ProfileSource(kind="catalogue", key="digcomp")
    assert catalogue.to_json() == {"kind": "catalogue", "key": "digcomp"}
    own = uuid4()
    custom = ProfileSource(kind="custom", id=own, version=3, name="Ours")
    assert custom.to_json() == {"kind": "custom", "id": str(own), "version": 3, "name": "Ours"}
    for source in (catalogue, custom):
        assert ProfileSource.from_json(source.to_json()) == source
