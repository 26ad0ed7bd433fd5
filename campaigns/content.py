"""Which challenge bank campaigns use, loaded once per process (`engine.get_bank` caches it by
version and compiles its item pool once).

New campaigns freeze the current version; a running campaign asks for its frozen version,
which the cache answers without touching the disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import engine
from core.errors import Gone
from engine import Bank, get_bank

DEMO_BANK = Path(engine.__file__).resolve().parent / "content" / "demo"

_bank_dir: Path = DEMO_BANK


def use_bank(path: str | os.PathLike[str]) -> None:
    """Serve campaigns from the bank at `path` (a directory holding bank.json) from now on."""
    global _bank_dir
    _bank_dir = Path(path).resolve()


def bank_dir() -> Path:
    """The directory of the bank in use."""
    return _bank_dir


def current_bank() -> Bank:
    """The bank new campaigns freeze (reloaded when its files change)."""
    return get_bank(_bank_dir)


def frozen_bank(version: str) -> Bank:
    """The bank of `version`, as a campaign froze it; `Gone` when this process cannot serve it
    (the files moved on to another version and that one was never loaded here)."""
    try:
        return get_bank(_bank_dir, version)
    except LookupError:
        raise Gone(
            "This campaign uses questions that are no longer available. Contact its organizer."
        ) from None
