"""Post/Redirect/Get for forms that are refused: the handler of the POST keeps the error and
what was typed in the session, then redirects (303) to the GET page that holds the form,
which shows them once. So no page is left on a POST address, where a reload would post
again and a bookmark or a shared link would answer 405."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from core.errors import UserError
from web.pages import session_of

KEY = "kept_form"


def keep_form(
    connection: ASGIConnection[Any, Any, Any, Any],
    page: str,
    error: UserError,
    values: dict[str, Any] | None = None,
) -> None:
    """Keep `error` (untranslated) and the text fields of `values` for the next visit of
    `page`; passwords and the CSRF token are never kept."""
    session_of(connection)[KEY] = {
        "page": page,
        "message": error.message,
        "params": error.params,
        "field": error.field,
        "status": error.status_code,
        "values": {
            key: value
            for key, value in (values or {}).items()
            if isinstance(value, str | list) and "password" not in key and key != "_csrf_token"
        },
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
