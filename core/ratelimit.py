"""Counting attempts in a time window: Redis when configured, process memory otherwise."""

from __future__ import annotations

import time
from typing import Any, Protocol


class RateLimiter(Protocol):
    """Counts hits on a key within a fixed window."""

    async def hit(self, key: str, window_seconds: int) -> int:
        """Record one hit; return the number of hits in the current window."""
        ...

    async def count(self, key: str) -> int: ...

    async def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    """Per-process counters: right for the embedded default's single process."""

    def __init__(self) -> None:
        self._hits: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, window_seconds: int) -> int:
        now = time.monotonic()
        expires, hits = self._hits.get(key, (0.0, 0))
        if expires <= now:
            expires, hits = now + window_seconds, 0
        self._hits[key] = (expires, hits + 1)
        return hits + 1

    async def count(self, key: str) -> int:
        expires, hits = self._hits.get(key, (0.0, 0))
        return hits if expires > time.monotonic() else 0

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)


class RedisRateLimiter:
    """Counters shared by every web process."""

    def __init__(self, redis: Any, prefix: str = "jalon:rl:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def hit(self, key: str, window_seconds: int) -> int:
        name = self.prefix + key
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_seconds, nx=True)
            hits, _ = await pipe.execute()
        return int(hits)

    async def count(self, key: str) -> int:
        value = await self.redis.get(self.prefix + key)
        return int(value or 0)

    async def reset(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)
