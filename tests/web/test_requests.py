"""Request bodies nested beyond any document of ours are refused before they are decoded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar import Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.errors import Invalid
from core.validation import clean_timezone
from web.requests import (
    MAX_JSON_DEPTH,
    PEER_KEY,
    connection_peer,
    json_depth_exceeds,
    keeping_the_peer,
)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_up_to_the_limit_passes_and_one_more_is_refused() -> None:
    assert not json_depth_exceeds(_nested(MAX_JSON_DEPTH))
    assert json_depth_exceeds(_nested(MAX_JSON_DEPTH + 1))
    assert json_depth_exceeds(b'{"a": ' * 1_000)  # unclosed: refused all the same


@pytest.mark.parametrize(
    "document",
    [
        {"text": "[" * 5_000},  # brackets inside strings are text
        {"text": 'a "quoted" \\ [[[[' * 100, "list": [[1, 2], {"b": "}}}}"}]},
        {"Operations": [{"op": "add", "value": {"members": [{"value": "x"}]}}]},
    ],
)
def test_documents_of_ours_pass(document: object) -> None:
    assert not json_depth_exceeds(json.dumps(document).encode())


@pytest.mark.parametrize("zone", ["Europe/Paris", "UTC", "Pacific/Noumea"])
def test_known_time_zones_are_accepted(zone: str) -> None:
    assert clean_timezone(zone) == zone


@pytest.mark.parametrize("zone", ["Europe", "US", "Europe/Nowhere", "../../etc/passwd", "/", ""])
def test_regions_and_made_up_zones_are_refused(zone: str) -> None:
    with pytest.raises(Invalid) as refused:
        clean_timezone(zone)
    assert refused.value.field == "timezone"


async def test_the_peer_is_kept_while_the_proxy_names_the_client() -> None:
    """The answered page is keyed by the connection (ADR 0023, addendum 5): its peer
    survives a trusted proxy's X-Forwarded-For."""
    seen: dict[str, Any] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    proxied = ProxyHeadersMiddleware(inner, trusted_hosts="127.0.0.1")
    app = keeping_the_peer(proxied)  # type: ignore[arg-type]
    scope = {
        "type": "http",
        "scheme": "http",
        "client": ("127.0.0.1", 5000),
        "headers": [(b"x-forwarded-for", b"203.0.113.5")],
    }
    await app(scope, None, None)  # type: ignore[arg-type]
    assert seen["client"][0] == "203.0.113.5"
    assert seen[PEER_KEY] == ("127.0.0.1", 5000)
    assert connection_peer(Request(seen)) == ("127.0.0.1", 5000)  # type: ignore[arg-type]
    assert connection_peer(Request({"type": "http", "client": ("10.0.0.1", 80)})) == (  # type: ignore[arg-type]
        "10.0.0.1",
        80,
    )
