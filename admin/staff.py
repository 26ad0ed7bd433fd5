"""(being built)"""

from __future__ import annotations

from typing import Any

handlers: list[Any] = []
