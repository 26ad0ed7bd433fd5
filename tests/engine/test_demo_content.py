"""The demo content reads as proper French: typographic apostrophes in what people see."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTENT = Path(__file__).resolve().parents[2] / "engine" / "content" / "demo"
SHOWN = {"statement", "proposals", "explanation", "title", "band"}


def _french_texts(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SHOWN and isinstance(value, dict) and "fr" in value:
                french = value["fr"]
                found.extend(french if isinstance(french, list) else [french])
            else:
                found.extend(_french_texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_french_texts(item))
    return found


def test_french_content_uses_the_typographic_apostrophe() -> None:
    texts = [
        text
        for path in sorted(CONTENT.glob("*.json"))
        for text in _french_texts(json.loads(path.read_text(encoding="utf-8")))
    ]
    assert len(texts) > 1000
    assert [text for text in texts if "'" in text] == []
