"""The rules of a participation (campaigns.participation.rules), as pure functions: no
database, no clock, no tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaigns.participation.rules import (
    CLOSED_MESSAGE,
    TIMER_GRACE_SECONDS,
    UNKNOWN_CODE_MESSAGE,
    choose_locale,
    is_late,
    refuse_if_archived,
    refuse_retake_unless_due,
    refuse_unless_accepting,
    returns_latest,
    seconds_left,
)
from core.errors import Conflict, Gone, NotFound

NOW = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)


# --- whether a campaign takes participants ---------------------------------------------------


def test_an_active_campaign_within_its_dates_takes_participants() -> None:
    refuse_unless_accepting("active", None, None, NOW)
    refuse_unless_accepting("active", NOW, NOW + timedelta(seconds=1), NOW)


def test_a_draft_is_not_found_like_an_unknown_code() -> None:
    with pytest.raises(NotFound) as caught:
        refuse_unless_accepting("draft", None, None, NOW)
    assert caught.value.message == UNKNOWN_CODE_MESSAGE


@pytest.mark.parametrize("status", ["closed", "archived"])
def test_a_closed_or_archived_campaign_is_gone(status: str) -> None:
    with pytest.raises(Gone) as caught:
        refuse_unless_accepting(status, None, None, NOW)
    assert caught.value.message == CLOSED_MESSAGE


def test_only_an_archived_campaign_shuts_its_participants_out() -> None:
    # A closed campaign still lets its participants finish, share and report.
    for status in ("draft", "active", "closed"):
        refuse_if_archived(status)
    with pytest.raises(Gone) as caught:
        refuse_if_archived("archived")
    assert caught.value.message == CLOSED_MESSAGE


def test_a_campaign_not_open_yet_gives_its_opening_date() -> None:
    with pytest.raises(Conflict) as caught:
        refuse_unless_accepting("active", NOW + timedelta(days=2), None, NOW)
    assert caught.value.message == "This campaign opens on {date}."
    assert caught.value.params == {"date": "2026-03-12"}


def test_a_campaign_ends_at_its_closing_time() -> None:
    with pytest.raises(Gone, match="ended"):
        refuse_unless_accepting("active", None, NOW, NOW)
    with pytest.raises(Gone, match="ended"):
        refuse_unless_accepting("active", None, NOW - timedelta(days=1), NOW)


# --- retakes -----------------------------------------------------------------------------------


def test_a_started_participation_is_resumed_even_when_a_retake_is_asked() -> None:
    assert returns_latest("started", retake=False)
    assert returns_latest("started", retake=True)


@pytest.mark.parametrize("status", ["completed", "shared"])
def test_a_finished_participation_is_returned_unless_a_retake_is_asked(status: str) -> None:
    assert returns_latest(status, retake=False)
    assert not returns_latest(status, retake=True)


def test_without_a_participation_one_starts() -> None:
    assert not returns_latest(None, retake=False)
    assert not returns_latest(None, retake=True)


def test_a_retake_needs_the_campaign_to_allow_it() -> None:
    with pytest.raises(Conflict, match="does not allow another attempt"):
        refuse_retake_unless_due(
            allowed=False, completed_at=NOW - timedelta(days=365), delay_days=0, now=NOW
        )


def test_a_retake_waits_for_the_delay_and_says_from_when() -> None:
    completed = NOW - timedelta(days=2, hours=1)
    with pytest.raises(Conflict) as caught:
        refuse_retake_unless_due(allowed=True, completed_at=completed, delay_days=3, now=NOW)
    assert caught.value.message == "You can try again from {date}."
    assert caught.value.params == {"date": "2026-03-11"}


def test_a_retake_is_due_once_the_delay_has_passed() -> None:
    completed = NOW - timedelta(days=3)
    refuse_retake_unless_due(allowed=True, completed_at=completed, delay_days=3, now=NOW)
    refuse_retake_unless_due(allowed=True, completed_at=NOW, delay_days=0, now=NOW)
    with pytest.raises(Conflict):
        refuse_retake_unless_due(
            allowed=True, completed_at=completed + timedelta(seconds=1), delay_days=3, now=NOW
        )


# --- the test's language -------------------------------------------------------------------


def test_the_asked_language_comes_first_when_offered() -> None:
    assert choose_locale("en", "fr", ("fr", "en")) == "en"


def test_the_account_language_comes_next_when_offered() -> None:
    assert choose_locale("de", "en", ("fr", "en")) == "en"
    assert choose_locale(None, "en", ("fr", "en")) == "en"
    assert choose_locale("", "en", ("fr", "en")) == "en"


def test_else_the_campaign_first_language() -> None:
    assert choose_locale("de", "es", ("fr", "en")) == "fr"
    assert choose_locale(None, None, ["en", "fr"]) == "en"


# --- timed challenges ----------------------------------------------------------------------


def test_an_untimed_challenge_has_no_clock_and_is_never_late() -> None:
    assert seconds_left(None, 1000.0) is None
    assert not is_late(None, 1000.0, skipped=False)


def test_a_challenge_not_shown_yet_has_its_full_time() -> None:
    assert seconds_left(60, None) == 60
    assert not is_late(60, None, skipped=False)


def test_the_seconds_left_count_whole_seconds_down_to_zero() -> None:
    assert seconds_left(60, 0.4) == 60
    assert seconds_left(60, 12.9) == 48
    assert seconds_left(60, 60.0) == 0
    assert seconds_left(60, 500.0) == 0


def test_an_answer_is_late_only_past_the_time_and_its_grace() -> None:
    assert not is_late(60, 59.0, skipped=False)
    assert not is_late(60, 60.0 + TIMER_GRACE_SECONDS, skipped=False)
    assert is_late(60, 60.0 + TIMER_GRACE_SECONDS + 0.01, skipped=False)


def test_a_skip_is_never_late() -> None:
    assert not is_late(60, 3600.0, skipped=True)
