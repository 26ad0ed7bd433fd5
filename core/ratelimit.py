"""Counting attempts in a time window: Redis when configured, process memory otherwise."""

from __future__ import annotations

import time
from typing import Any, Protocol


class RateLimiter(Protocol):
    """Counts hits on a key within a fixed window."""

    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> int:
        """Record `amount` hits (one by default; negative gives some back); return the number
        of hits in the current window."""
        ...

    async def count(self, key: str) -> int: ...

    async def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    """Per-process counters: right for the embedded default's single process."""

    def __init__(self) -> None:
        self._hits: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> int:
        now = time.monotonic()
        expires, hits = self._hits.get(key, (0.0, 0))
        if expires <= now:
            expires, hits = now + window_seconds, 0
        self._hits[key] = (expires, hits + amount)
        return hits + amount

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

    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> int:
        name = self.prefix + key
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, window_seconds, nx=True)
            hits, _ = await pipe.execute()
        return int(hits)

    async def count(self, key: str) -> int:
        value = await self.redis.get(self.prefix + key)
        return int(value or 0)

    async def reset(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)


#: The counters of a process without Redis (the embedded default's single process): shared by
#: its web requests and its in-process jobs, so that both count against the same limits.
PROCESS_LIMITER = MemoryRateLimiter()


def job_limiter(ctx: dict[str, Any]) -> RateLimiter:
    """The limiter a job counts with: Redis's (arq hands its connection in `ctx`), shared
    with the web processes; this process's counters otherwise."""
    redis = ctx.get("redis")
    return RedisRateLimiter(redis) if redis is not None else PROCESS_LIMITER
