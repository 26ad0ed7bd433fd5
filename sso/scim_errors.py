"""What a SCIM request can get wrong, with the `scimType` RFC 7644 §3.12 names for it.

Each is a `core.errors.UserError`, so a service raising one needs nothing SCIM-specific from
its caller; `api.routes.scim` turns them (and the plain `Invalid`, `NotFound`, `Conflict`)
into SCIM error documents.
"""

from __future__ import annotations

from typing import Any

from core.errors import Conflict, Invalid


class ScimInvalid(Invalid):
    """A 400 of SCIM: `scim_type` is invalidFilter, invalidPath, invalidValue, noTarget,
    invalidSyntax or mutability."""

    status_code = 400

    def __init__(self, scim_type: str, message: str, **params: Any) -> None:
        super().__init__(message, **params)
        self.scim_type = scim_type


class ScimConflict(Conflict):
    """A 409 of SCIM (`uniqueness`): a userName or a group's displayName already taken."""

    scim_type = "uniqueness"


def invalid_filter(message: str, **params: Any) -> ScimInvalid:
    return ScimInvalid("invalidFilter", message, **params)


def invalid_path(message: str, **params: Any) -> ScimInvalid:
    return ScimInvalid("invalidPath", message, **params)


def invalid_value(message: str, **params: Any) -> ScimInvalid:
    return ScimInvalid("invalidValue", message, **params)
