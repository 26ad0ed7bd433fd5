"""Background jobs: arq on Redis, or in-process after commit when `REDIS_URL` is unset.

Job functions live in the domain packages, beside the work that enqueues them (the module
that enqueues a job is the one that registers it), and register here with `@job`; they take
arq's `ctx` first and ids (JSON values) after, never ORM objects, and are idempotent.
`enqueue()` writes the job in the job outbox in the current transaction (`core.outbox`, ADR
0025) and relays it to the queue after commit, with a `_job_id` derived from what the job
does, so a retried request cannot queue the same work twice. Every try's outcome is recorded
on the outbox row: a job that fails for good stays there, `failed`, with its last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from core import outbox

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
    then at the minutes `every()` gave it. The outbox relay loop runs beside them (jobs
    committed by a process that died before sending them). Cancel the task to stop it."""
    relay = asyncio.create_task(relay_forever())
    try:
        await _run_periodic(queue)
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay


async def _run_periodic(queue: JobQueue) -> None:
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
        try:
            for job_try in range(1, MAX_TRIES + 1):
                started = time.monotonic()
                try:
                    await function({"job_id": job_id, "job_try": job_try}, *args)
                except Exception as error:
                    log.exception("job %s (%s) failed, try %d", name, job_id, job_try)
                    _metrics(name, time.monotonic() - started, ok=False)
                    final = job_try == MAX_TRIES
                    await outbox.record_outcome(
                        job_id, "failed" if final else "retrying", job_try, _describe(error)
                    )
                    if final:
                        break
                    await asyncio.sleep(backoff_seconds(job_try))
                else:
                    _metrics(name, time.monotonic() - started, ok=True)
                    await outbox.record_outcome(job_id, "done", job_try, None)
                    break
        finally:
            self._seen.discard(job_id)

    async def drain(self) -> None:
        """Wait until every job enqueued so far (and those they enqueue) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()


class ArqQueue:
    """Enqueues into Redis for `jalon worker` processes."""

    #: After a failure, enqueues fail at once for this long (the outbox relay retries them):
    #: a request never waits on a Redis that is down.
    PAUSE_AFTER_FAILURE_SECONDS = 5.0

    def __init__(self, redis_url: str, queue_name: str | None = None) -> None:
        self.redis_url = redis_url
        self.queue_name = queue_name
        self._pool: Any = None
        self._down_until = 0.0

    async def _get_pool(self) -> Any:
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            settings = RedisSettings.from_dsn(self.redis_url)
            settings.conn_timeout = 2
            settings.conn_retries = 0
            self._pool = await create_pool(settings)
        return self._pool

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        if time.monotonic() < self._down_until:
            raise ConnectionError("Redis was unavailable a moment ago")
        try:
            pool = await self._get_pool()
            if self.queue_name:
                await pool.enqueue_job(name, *args, _job_id=job_id, _queue_name=self.queue_name)
            else:
                await pool.enqueue_job(name, *args, _job_id=job_id)
        except Exception:
            self._down_until = time.monotonic() + self.PAUSE_AFTER_FAILURE_SECONDS
            raise

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


async def send_to_queue(name: str, args: tuple[Any, ...], job_id: str) -> None:
    """Hand a job to the queue in use now (what the outbox relay sends through)."""
    await _queue.enqueue(name, *args, job_id=job_id)


def enqueue(name: str, *args: Any, job_id: str) -> None:
    """Write job `name` in the job outbox in the current transaction, so that it commits with
    the change, and hand it to the queue once the transaction has committed (or, if that
    fails, by the outbox relay later). Needs an open transaction (RuntimeError otherwise)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown job {name!r}")
    outbox.add(name, args, job_id, send_to_queue)


async def relay_forever() -> None:
    """Relay the outbox's due jobs to the queue in use until cancelled (`core.outbox`)."""
    await outbox.relay_forever(send_to_queue)


async def outbox_lag_seconds() -> float:
    """Age in seconds of the oldest job not yet handed to the queue."""
    return await outbox.outbox_lag_seconds()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _metrics(name: str, seconds: float, ok: bool) -> None:
    try:
        from core import metrics
    except ImportError:  # pragma: no cover - the metrics module is optional
        return
    metrics.job_finished(name, seconds, ok)


def _with_retries(function: JobFunction) -> JobFunction:
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        from arq.worker import Retry

        job_id = str(ctx.get("job_id", ""))
        job_try = int(ctx.get("job_try", 1))
        started = time.monotonic()
        try:
            result = await function(ctx, *args)
        except Exception as error:
            _metrics(function.__name__, time.monotonic() - started, ok=False)
            final = job_try >= MAX_TRIES
            await outbox.record_outcome(
                job_id, "failed" if final else "retrying", job_try, _describe(error)
            )
            if final:
                raise
            log.warning("job %s failed (%s); retrying", function.__name__, error)
            raise Retry(defer=backoff_seconds(job_try)) from error
        _metrics(function.__name__, time.monotonic() - started, ok=True)
        await outbox.record_outcome(job_id, "done", job_try, None)
        return result

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
