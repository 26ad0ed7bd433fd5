"""Logs: one JSON object per line (or plain text), each carrying the request id, the tenant id
and the user id of the request or job that wrote it.

The ids live in a context variable: the web middleware (`web.observe`) opens a `LogContext`
per request, whose tenant and user it may fill lazily (read from the request when a line is
written, so a request that logs nothing pays nothing); jobs and commands use `log_context()`.
`configure_logging()` installs the handler; `logging_config()` is the same as a
`logging.config.dictConfig` dictionary, for the HTTP server's worker processes.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: What `JALON_LOG_FORMAT` may say.
LOG_FORMATS = ("json", "text")

#: A request id we accept from a client or proxy: short, printable, no spaces or quotes.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

# The attributes every LogRecord has; anything else on a record is an `extra` field.
_STANDARD = frozenset(
    set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    | {"message", "asctime", "request_id", "tenant_id", "user_id", "taskName", "color_message"}
)


@dataclass
class LogContext:
    """The ids logs carry for one request or job. `resolve`, when set, returns the tenant and
    user ids known so far (a guard may have found them since the context was opened)."""

    request_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    resolve: Callable[[], tuple[str | None, str | None]] | None = None

    def ids(self) -> tuple[str | None, str | None, str | None]:
        tenant_id, user_id = self.tenant_id, self.user_id
        if self.resolve is not None and (tenant_id is None or user_id is None):
            try:
                found_tenant, found_user = self.resolve()
            except Exception:  # a log line never fails for want of an id
                found_tenant = found_user = None
            tenant_id = tenant_id or found_tenant
            user_id = user_id or found_user
        return self.request_id, tenant_id, user_id


_current: contextvars.ContextVar[LogContext | None] = contextvars.ContextVar(
    "jalon_log_context", default=None
)


def new_request_id() -> str:
    """A fresh request id (128 random bits, hex)."""
    return secrets.token_hex(16)


def accepted_request_id(value: str | None) -> str | None:
    """`value` (an X-Request-ID header) when it is well-formed, else None."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


def current() -> LogContext | None:
    """The log context of the running request or job, if any."""
    return _current.get()


def open_context(context: LogContext) -> contextvars.Token[LogContext | None]:
    """Make `context` the current one; give the token to `close_context`."""
    return _current.set(context)


def close_context(token: contextvars.Token[LogContext | None]) -> None:
    _current.reset(token)


@contextmanager
def log_context(
    *,
    request_id: str | None = None,
    tenant_id: object | None = None,
    user_id: object | None = None,
) -> Iterator[LogContext]:
    """Lines logged inside carry these ids (a job: its id as the request id, its tenant)."""
    context = LogContext(
        request_id=request_id,
        tenant_id=str(tenant_id) if tenant_id is not None else None,
        user_id=str(user_id) if user_id is not None else None,
    )
    token = open_context(context)
    try:
        yield context
    finally:
        close_context(token)


def bind(*, tenant_id: object | None = None, user_id: object | None = None) -> None:
    """Set the tenant or user of the current context (where they become known); no-op when
    there is no context."""
    context = _current.get()
    if context is None:
        return
    if tenant_id is not None:
        context.tenant_id = str(tenant_id)
    if user_id is not None:
        context.user_id = str(user_id)


class ContextFilter(logging.Filter):
    """Adds `request_id`, `tenant_id` and `user_id` to every record (None outside a context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is None:
            ids: tuple[str | None, str | None, str | None] = (None, None, None)
        else:
            ids = context.ids()
        record.request_id, record.tenant_id, record.user_id = ids
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context's
    ids, the exception when there is one, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "tenant_id": getattr(record, "tenant_id", None),
            "user_id": getattr(record, "user_id", None),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        return json.dumps(payload, default=str, ensure_ascii=False)


_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s tenant=%(tenant_id)s user=%(user_id)s] %(message)s"  # noqa: E501


def logging_config(json_lines: bool, level: str = "INFO") -> dict[str, Any]:
    """The `dictConfig` of Jalon's processes: one handler on stderr, JSON or text, with the
    context's ids; uvicorn's and arq's loggers write through it."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"format": _TEXT_FORMAT},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json" if json_lines else "text",
                "filters": ["context"],
            }
        },
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq")
        },
        "root": {"handlers": ["default"], "level": level},
    }


def configure_logging(json: bool, level: str = "INFO") -> None:
    """Send this process's logs to stderr, one JSON object a line when `json`, else text."""
    logging.config.dictConfig(logging_config(json, level))
