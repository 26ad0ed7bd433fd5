"""Identifiers: every id is a UUID, and an id a person sends that is not one is simply unknown."""

from __future__ import annotations

from uuid import UUID

from core.errors import NotFound


def uuid_or_404(value: UUID | str) -> UUID:
    """`value` as a UUID; `NotFound` when it is not one (a mangled id is an unknown id)."""
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise NotFound() from None
