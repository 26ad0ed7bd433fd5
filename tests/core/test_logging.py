"""Log lines: one JSON object each, with the request id, tenant id and user id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from litestar import Litestar

from api.app import create_app
from core.logging import ContextFilter, JsonFormatter, log_context, logging_config
from core.settings import Settings
from tests.api.conftest import Browser
from tests.api.running import asgi_transport, running
from tests.conftest import TenantFixture


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the JSON handler writes, for loggers `probe` and `jalon.access` (DEBUG)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    loggers = [logging.getLogger("probe"), logging.getLogger("jalon.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_context_ids(lines: io.StringIO) -> None:
    with log_context(request_id="req-1", tenant_id="t-1", user_id="u-1"):
        logging.getLogger("probe").warning("seats %s", "low", extra={"seats_left": 2})
    logging.getLogger("probe").warning("outside")
    inside, outside = _records(lines)
    assert inside["message"] == "seats low"
    assert inside["level"] == "warning"
    assert inside["logger"] == "probe"
    assert (inside["request_id"], inside["tenant_id"], inside["user_id"]) == ("req-1", "t-1", "u-1")
    assert inside["seats_left"] == 2
    assert str(inside["time"]).endswith("+00:00")
    assert (outside["request_id"], outside["tenant_id"], outside["user_id"]) == (None, None, None)


def test_an_exception_is_kept_in_its_line(lines: io.StringIO) -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("probe").exception("it failed")
    (record,) = _records(lines)
    assert "ValueError: broken" in str(record["exception"])


def test_the_configuration_writes_json_or_text() -> None:
    json_config = logging_config(True)
    text_config = logging_config(False)
    assert json_config["handlers"]["default"]["formatter"] == "json"
    assert text_config["handlers"]["default"]["formatter"] == "text"
    assert json_config["loggers"]["uvicorn.access"]["propagate"] is True


@pytest.fixture(scope="module")
async def app(db: str, settings: Settings) -> AsyncIterator[Litestar]:
    async with running(create_app(settings)) as application:
        yield application


@pytest.fixture
async def browser(app: Litestar) -> AsyncIterator[Browser]:
    transport = asgi_transport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield Browser(client)


async def test_a_request_logs_its_id_tenant_and_user(
    browser: Browser, tenant_a: TenantFixture, lines: io.StringIO
) -> None:
    await browser.login(tenant_a.owner)
    response = await browser.client.get(
        f"/o/{tenant_a.slug}/", headers={"x-request-id": "from-the-proxy-42"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "from-the-proxy-42"
    (line,) = [r for r in _records(lines) if r["request_id"] == "from-the-proxy-42"]
    assert line["tenant_id"] == str(tenant_a.id)
    assert line["user_id"] == str(tenant_a.owner.id)
    assert line["route"] == "/o/{slug}"
    assert line["status"] == 200


async def test_a_malformed_request_id_is_replaced(browser: Browser, lines: io.StringIO) -> None:
    response = await browser.client.get("/login", headers={"x-request-id": "bad id\twith spaces"})
    made_up = response.headers["x-request-id"]
    assert made_up != "bad id\twith spaces"
    assert len(made_up) == 32
    (line,) = [r for r in _records(lines) if r["request_id"] == made_up]
    assert line["route"] == "/login"
    assert line["user_id"] is None
