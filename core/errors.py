"""Errors a user can cause. Each maps to one 4xx status; the message is a gettext msgid,
translated into the user's language where it is shown (`core.i18n.translate`)."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """Bad input or a refused action: never a 500."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params


class Invalid(UserError):
    """The input does not satisfy a rule (422)."""

    status_code = 422


class InvalidFields(Invalid):
    """Several fields at fault at once, so that a form shows each error next to its field
    (a short password *and* a confirmation that differs). Where one error only can be told
    (the JSON API's body), the first stands for all: its message and field are this one's."""

    def __init__(self, errors: list[Invalid]) -> None:
        first = errors[0]
        super().__init__(first.message, field=first.field, **first.params)
        self.errors = errors


def raise_all(errors: list[Invalid]) -> None:
    """Raise nothing for no error, the error itself for one, `InvalidFields` for several."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidFields(errors)


class NotFound(UserError):
    """Missing, or not yours: the same answer for both (404)."""

    status_code = 404

    def __init__(self, message: str = "Not found.", **params: Any) -> None:
        super().__init__(message, **params)


class Forbidden(UserError):
    """Authenticated, but without the permission (403)."""

    status_code = 403

    def __init__(self, message: str = "You do not have permission to do this.") -> None:
        super().__init__(message)


class Unauthenticated(UserError):
    """Sign-in required or credentials refused (401)."""

    status_code = 401


class Conflict(UserError):
    """The change clashes with existing data (409)."""

    status_code = 409


class Gone(UserError):
    """A link or token that was valid once and no longer is (410)."""

    status_code = 410


class TooManyRequests(UserError):
    """Throttled (429)."""

    status_code = 429
