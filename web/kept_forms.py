"""Post/Redirect/Get for forms that are refused: the handler of the POST keeps the error and
what was typed in the session, then redirects (303) to the GET page that holds the form,
which shows them once. So no page is left on a POST address, where a reload would post
again and a bookmark or a shared link would answer 405."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from litestar.connection import ASGIConnection

from core.errors import UserError
from web.pages import session_of

KEY = "kept_form"

#: The longest text kept of one field, in characters: more than any field of ours takes. A
#: longer value is cut when its field was named, dropped otherwise (a form's own fields are
#: short; a huge unknown one is someone filling the session, which Redis and every
#: process's local copies hold).
MAX_VALUE = 2_000
#: The most values kept of one list field (ticked boxes, chosen answers).
MAX_ITEMS = 50
#: The most fields kept of one form.
MAX_FIELDS = 30
#: The longest field name kept.
MAX_NAME = 100


def kept_list(values: Sequence[object]) -> list[str]:
    """The text items of a list field as a session keeps them: at most `MAX_ITEMS`, each cut
    to `MAX_VALUE` characters."""
    return [value[:MAX_VALUE] for value in values if isinstance(value, str)][:MAX_ITEMS]


def _kept_values(
    values: dict[str, Any] | None, fields: Collection[str] | None
) -> dict[str, str | list[str]]:
    kept: dict[str, str | list[str]] = {}
    for key, value in (values or {}).items():
        if len(kept) >= MAX_FIELDS:
            break
        if not isinstance(key, str) or len(key) > MAX_NAME:
            continue
        if "password" in key or key == "_csrf_token":
            continue
        if fields is not None and key not in fields:
            continue
        if isinstance(value, str):
            if len(value) > MAX_VALUE and fields is None:
                continue
            kept[key] = value[:MAX_VALUE]
        elif isinstance(value, list):
            if fields is None and (
                len(value) > MAX_ITEMS
                or any(isinstance(item, str) and len(item) > MAX_VALUE for item in value)
            ):
                continue
            kept[key] = kept_list(value)
    return kept


def keep_form(
    connection: ASGIConnection[Any, Any, Any, Any],
    page: str,
    error: UserError,
    values: dict[str, Any] | None = None,
    *,
    fields: Collection[str] | None = None,
) -> None:
    """Keep `error` (untranslated) and the text fields of `values` for the next visit of
    `page`; passwords and the CSRF token are never kept. Only the `fields` named, when
    given (a route passing a whole form names the fields its page shows again). Bounded
    whatever is posted: at most `MAX_FIELDS` fields, each text cut to `MAX_VALUE`
    characters, each list to `MAX_ITEMS` items; a field not named that is longer is
    dropped."""
    session_of(connection)[KEY] = {
        "page": page,
        "message": error.message,
        "params": error.params,
        "field": error.field,
        "status": error.status_code,
        "values": _kept_values(values, fields),
    }


def kept_form(
    connection: ASGIConnection[Any, Any, Any, Any], page: str
) -> tuple[UserError, dict[str, Any]] | None:
    """The error and the values kept for `page`, once (taken out of the session); None when
    the last refused form was another page's, or there was none."""
    session = session_of(connection)
    kept = session.get(KEY)
    if not isinstance(kept, dict) or kept.get("page") != page:
        return None
    session.pop(KEY)
    error = UserError(str(kept["message"]), field=kept.get("field"), **kept.get("params", {}))
    error.status_code = int(kept.get("status", 422))
    return error, dict(kept.get("values", {}))
