"""Request bodies nested beyond any document of ours are refused before they are decoded."""

from __future__ import annotations

import json

import pytest

from core.errors import Invalid
from core.validation import clean_timezone
from web.requests import MAX_JSON_DEPTH, json_depth_exceeds


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
