"""The registry of webhook events: tenants knows only its test event; campaigns registers its
own when imported, and every entry point imports them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import campaigns.events
from core.errors import Invalid
from tenants.webhooks.events import EVENTS, TEST_EVENT, EventRegistry, subscribable_events

ROOT = Path(__file__).resolve().parents[3]


def test_the_test_event_is_built_in_and_never_subscribed_to() -> None:
    assert TEST_EVENT == "ping"
    assert TEST_EVENT in [event.name for event in EVENTS.events()]
    assert TEST_EVENT not in subscribable_events()
    assert not EVENTS.is_subscribable(TEST_EVENT)


def test_campaigns_registers_its_events_in_the_order_the_form_shows_them() -> None:
    assert campaigns.events.PARTICIPATION_SHARED == "participation.shared"
    assert subscribable_events() == ("participation.shared", "campaign.closed")


def test_every_entry_point_registers_the_events_before_it_lists_them() -> None:
    # A fresh process: what `jalon worker`, `jalon serve` and the app factory do at start.
    script = (
        "from tenants.webhooks.events import subscribable_events as s\n"
        "before = s()\n"
        "from api.runtime import import_jobs\n"
        "import_jobs()\n"
        "print(before, s())\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "() ('participation.shared', 'campaign.closed')"


def test_registering_the_same_event_again_changes_nothing() -> None:
    registry = EventRegistry()
    first = registry.register("learner.imported", "learners were imported")
    assert registry.register("learner.imported", "learners were imported") == first
    assert registry.events() == (first,)
    assert registry.subscribable() == ("learner.imported",)


def test_a_second_declaration_under_a_registered_name_is_refused() -> None:
    registry = EventRegistry()
    registry.register("learner.imported", "learners were imported")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("learner.imported", "something else")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("learner.imported", "learners were imported", subscribable=False)


@pytest.mark.parametrize("name", ["", "Campaign.closed", "campaign..closed", "campaign.", "1.x"])
def test_malformed_event_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        EventRegistry().register(name, "x")


def test_subscriptions_are_sorted_without_repeats_and_known() -> None:
    registry = EventRegistry()
    registry.register("b.done", "b")
    registry.register("a.done", "a")
    registry.register("test", "on demand", subscribable=False)
    assert registry.subscribable() == ("b.done", "a.done")
    assert registry.check_subscriptions(["b.done", "a.done", "b.done"]) == ("a.done", "b.done")
    with pytest.raises(Invalid) as none:
        registry.check_subscriptions([])
    assert (none.value.field, none.value.message) == ("events", "Choose at least one event.")
    for refused in ("c.done", "test"):
        with pytest.raises(Invalid) as unknown:
            registry.check_subscriptions(["a.done", refused])
        assert unknown.value.field == "events"
        assert unknown.value.params == {"event": refused}


def test_the_receivers_documentation_lists_every_event() -> None:
    docs = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
    missing = [event.name for event in EVENTS.events() if f"| `{event.name}` |" not in docs]
    assert missing == []
