"""The events an endpoint may subscribe to: a registry the owning packages fill.

`tenants` comes first in the domain order and may not know the later packages' events, so each
registers its own when imported (`campaigns.events` registers `participation.shared` and
`campaign.closed`), and the entry point imports them in every process (`api.runtime`). The
test event is built in: sent on demand to one endpoint, never subscribed to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import Invalid

#: A name: lowercase words joined by `_`, parts joined by `.` (`participation.shared`).
_NAME = re.compile(r"[a-z][a-z_]*(\.[a-z][a-z_]*)*")


@dataclass(frozen=True)
class WebhookEvent:
    """A kind of event Jalon announces to the organization's endpoints."""

    #: what `Jalon-Event` and the payload's `type` say, e.g. `participation.shared`
    name: str
    #: when it is sent, in English (what docs/webhooks.md says of it)
    description: str
    #: False for the test event: sent on demand, never chosen in an endpoint's form
    subscribable: bool = True


class EventRegistry:
    """The webhook events known to a process, in the order they were registered."""

    def __init__(self) -> None:
        self._events: dict[str, WebhookEvent] = {}

    def register(self, name: str, description: str, *, subscribable: bool = True) -> WebhookEvent:
        """Declare an event; the declaration. Registering the same event again changes
        nothing; another declaration under a registered name, or a malformed name, is a
        `ValueError` (a programming error, found at import)."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"malformed webhook event name {name!r}")
        event = WebhookEvent(name, description, subscribable)
        known = self._events.setdefault(name, event)
        if known != event:
            raise ValueError(f"webhook event {name!r} is already registered as {known!r}")
        return event

    def events(self) -> tuple[WebhookEvent, ...]:
        """Every registered event, in the order they were registered."""
        return tuple(self._events.values())

    def subscribable(self) -> tuple[str, ...]:
        """The names of the events an endpoint may subscribe to, in registration order."""
        return tuple(event.name for event in self._events.values() if event.subscribable)

    def is_subscribable(self, name: str) -> bool:
        """True when `name` is a registered event an endpoint may subscribe to."""
        event = self._events.get(name)
        return event is not None and event.subscribable

    def check_subscriptions(self, names: Iterable[str]) -> tuple[str, ...]:
        """The events an endpoint subscribes to, sorted and without repeats; `Invalid` (on
        the `events` field) for none at all, or a name that is not a subscribable event."""
        events = tuple(sorted(set(names)))
        if not events:
            raise Invalid("Choose at least one event.", field="events")
        unknown = [event for event in events if not self.is_subscribable(event)]
        if unknown:
            raise Invalid("Unknown event: {event}.", field="events", event=unknown[0])
        return events


#: The process's registry: what the endpoint form offers, saving checks and `emit` accepts.
EVENTS = EventRegistry()

#: The event "send a test event" sends.
TEST_EVENT = EVENTS.register(
    "ping",
    "you press Send a test event on an endpoint's page (sent to that endpoint only)",
    subscribable=False,
).name


def register_event(name: str, description: str) -> WebhookEvent:
    """Declare an event endpoints may subscribe to, in this process (a package does it when
    imported, e.g. `campaigns.events`); the declaration. See `EventRegistry.register`."""
    return EVENTS.register(name, description)


def subscribable_events() -> tuple[str, ...]:
    """The events an endpoint may subscribe to, in the order they were registered: the
    endpoint form's boxes, and what a new endpoint subscribes to unless told."""
    return EVENTS.subscribable()
