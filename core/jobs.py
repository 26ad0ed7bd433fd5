"""Background jobs: arq on Redis, or in-process after commit when `REDIS_URL` is unset.

Job functions live in the domain packages, beside the work that enqueues them (the module
that enqueues a job is the one that registers it), and register here with `@job`; they take
arq's `ctx` first and ids after, never ORM objects, and are idempotent. `enqueue()` defers the
enqueue until the current transaction commits, with a `_job_id` derived from what the job
does, so a retried request cannot queue the same work twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from core.database import after_commit

if TYPE_CHECKING:
    from arq.typing import WorkerCoroutine

log = logging.getLogger(__name__)

JobFunction = Callable[..., Awaitable[Any]]

#: Every registered job, by name: arq's worker runs these.
REGISTRY: dict[str, JobFunction] = {}

MAX_TRIES = 5


#: Jobs the worker also runs on a schedule: name -> minutes of the hour.
PERIODIC: dict[str, set[int]] = {}


def job(function: JobFunction) -> JobFunction:
    """Register `function` as a job under its name."""
    REGISTRY[function.__name__] = function
    return function


def every(minutes: int) -> Callable[[JobFunction], JobFunction]:
    """Register a job that `jalon worker` also runs every `minutes` minutes (cron-aligned)."""

    def register(function: JobFunction) -> JobFunction:
        job(function)
        PERIODIC[function.__name__] = set(range(0, 60, minutes))
        return function

    return register


def worker_cron_jobs() -> list[Any]:
    """arq cron definitions for the periodic jobs (one run at a time, across workers)."""
    from arq.cron import cron

    return [
        cron(
            cast("WorkerCoroutine", REGISTRY[name]),
            name=f"cron:{name}",
            minute=minutes,
            unique=True,
            run_at_startup=True,
        )
        for name, minutes in PERIODIC.items()
    ]


async def run_periodic_in_process(queue: JobQueue) -> None:
    """Run the periodic jobs in this process on their schedule: what `jalon worker` does with
    arq's cron when there is no Redis (the embedded default). Every job runs once at start,
    then at the minutes `every()` gave it. Cancel the task to stop it."""
    from datetime import UTC, datetime

    first = True
    while True:
        now = datetime.now(UTC)
        for name, minutes in PERIODIC.items():
            if first or now.minute in minutes:
                stamp = now.strftime("%Y%m%d%H%M")
                await queue.enqueue(name, job_id=f"cron:{name}:{stamp}")
        first = False
        # wake at the start of the next minute
        await asyncio.sleep(60.0 - now.second - now.microsecond / 1e6)


def backoff_seconds(job_try: int) -> float:
    """Exponential back-off with jitter: about 1, 2, 4, 8 s between tries."""
    base: float = 2.0 ** max(job_try - 1, 0)
    return base + random.uniform(0, base / 2)


class JobQueue(Protocol):
    """Where enqueued jobs go."""

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None: ...

    async def close(self) -> None: ...


class InProcessQueue:
    """Runs jobs as asyncio tasks of this process, with retries: the embedded default."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: set[str] = set()

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        if job_id in self._seen:
            return
        self._seen.add(job_id)
        task = asyncio.create_task(self._run(name, args, job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, name: str, args: tuple[Any, ...], job_id: str) -> None:
        function = REGISTRY[name]
        for job_try in range(1, MAX_TRIES + 1):
            try:
                await function({"job_id": job_id, "job_try": job_try}, *args)
            except Exception:
                log.exception("job %s (%s) failed, try %d", name, job_id, job_try)
                if job_try == MAX_TRIES:
                    break
                await asyncio.sleep(backoff_seconds(job_try))
            else:
                break
        self._seen.discard(job_id)

    async def drain(self) -> None:
        """Wait until every job enqueued so far (and those they enqueue) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()


class ArqQueue:
    """Enqueues into Redis for `jalon worker` processes."""

    def __init__(self, redis_url: str, queue_name: str | None = None) -> None:
        self.redis_url = redis_url
        self.queue_name = queue_name
        self._pool: Any = None

    async def _get_pool(self) -> Any:
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            self._pool = await create_pool(RedisSettings.from_dsn(self.redis_url))
        return self._pool

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        pool = await self._get_pool()
        if self.queue_name:
            await pool.enqueue_job(name, *args, _job_id=job_id, _queue_name=self.queue_name)
        else:
            await pool.enqueue_job(name, *args, _job_id=job_id)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


_queue: JobQueue = InProcessQueue()


def configure_queue(redis_url: str | None) -> JobQueue:
    """Choose where jobs go: Redis when configured, this process otherwise."""
    global _queue
    return use_queue(ArqQueue(redis_url) if redis_url else InProcessQueue())


def use_queue(queue: JobQueue) -> JobQueue:
    """Send jobs to `queue` (a test's own Redis queue, say)."""
    global _queue
    _queue = queue
    return _queue


def get_queue() -> JobQueue:
    return _queue


def enqueue(name: str, *args: Any, job_id: str) -> None:
    """Enqueue job `name` once the current transaction has committed."""
    if name not in REGISTRY:
        raise KeyError(f"unknown job {name!r}")

    async def send() -> None:
        await _queue.enqueue(name, *args, job_id=job_id)

    after_commit(send)


def _with_retries(function: JobFunction) -> JobFunction:
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        from arq.worker import Retry

        try:
            return await function(ctx, *args)
        except Exception as error:
            job_try = int(ctx.get("job_try", 1))
            if job_try >= MAX_TRIES:
                raise
            log.warning("job %s failed (%s); retrying", function.__name__, error)
            raise Retry(defer=backoff_seconds(job_try)) from error

    run.__name__ = function.__name__
    return run


def worker_functions() -> list[Any]:
    """arq function definitions for every registered job, each retried with back-off."""
    from arq.worker import func

    return [
        func(cast("WorkerCoroutine", _with_retries(fn)), name=name, max_tries=MAX_TRIES)
        for name, fn in REGISTRY.items()
    ]


class WorkerSettings:
    """arq settings; `jalon worker` fills `functions`, `redis_settings` and the hooks."""

    functions: ClassVar[list[Any]] = []
    cron_jobs: ClassVar[list[Any]] = []
    max_jobs = 10
    job_timeout = 600
    keep_result = 60
