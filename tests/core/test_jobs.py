"""Jobs run after commit, once per job id, with retries: in-process and on real Redis with arq."""

from __future__ import annotations

import os
from typing import Any
from uuid import uuid4

import pytest
from arq.connections import RedisSettings
from arq.worker import Worker

from core import database, jobs
from core.jobs import ArqQueue, InProcessQueue, enqueue, job, worker_functions

RAN: list[tuple[str, str]] = []
FAILURES_LEFT: dict[str, int] = {}


@job
async def record_for_test(ctx: dict[str, Any], marker: str) -> None:
    RAN.append((marker, str(ctx.get("job_id"))))


@job
async def flaky_for_test(ctx: dict[str, Any], marker: str) -> None:
    if FAILURES_LEFT.get(marker, 0) > 0:
        FAILURES_LEFT[marker] -= 1
        raise ConnectionError("the remote side is down")
    RAN.append((marker, f"try {ctx['job_try']}"))


def _ran(marker: str) -> list[str]:
    return [detail for seen, detail in RAN if seen == marker]


@pytest.fixture
def in_process(db: str) -> InProcessQueue:
    queue = jobs.configure_queue(None)
    assert isinstance(queue, InProcessQueue)
    return queue


async def test_a_job_runs_only_after_its_transaction_commits(in_process: InProcessQueue) -> None:
    marker = uuid4().hex
    async with database.global_transaction():
        enqueue("record_for_test", marker, job_id=f"t:{marker}")
        await in_process.drain()
        assert _ran(marker) == []  # not before commit
    await in_process.drain()
    assert _ran(marker) == [f"t:{marker}"]


async def test_a_rolled_back_transaction_enqueues_nothing(in_process: InProcessQueue) -> None:
    marker = uuid4().hex
    with pytest.raises(RuntimeError):  # noqa: PT012 -- the failure is inside the transaction
        async with database.global_transaction():
            enqueue("record_for_test", marker, job_id=f"t:{marker}")
            raise RuntimeError("the request failed")
    await in_process.drain()
    assert _ran(marker) == []


async def test_the_same_job_id_queued_twice_runs_once(in_process: InProcessQueue) -> None:
    marker = uuid4().hex
    async with database.global_transaction():
        enqueue("record_for_test", marker, job_id=f"t:{marker}")
        enqueue("record_for_test", marker, job_id=f"t:{marker}")
    await in_process.drain()
    assert len(_ran(marker)) == 1


async def test_a_failing_job_is_retried_until_it_succeeds(
    in_process: InProcessQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "backoff_seconds", lambda job_try: 0.0)
    marker = uuid4().hex
    FAILURES_LEFT[marker] = 2
    async with database.global_transaction():
        enqueue("flaky_for_test", marker, job_id=f"t:{marker}")
    await in_process.drain()
    assert _ran(marker) == ["try 3"]


def test_an_unknown_job_name_is_refused_at_enqueue() -> None:
    with pytest.raises(KeyError):
        enqueue("no_such_job", job_id="x")


def test_back_off_grows_between_tries() -> None:
    assert [round(jobs.backoff_seconds(n)) >= 2 ** (n - 1) for n in (1, 2, 3, 4)] == [True] * 4
    assert jobs.backoff_seconds(4) <= 12


# --- real Redis and an arq worker -----------------------------------------------------------


async def _burst_worker(redis_url: str, queue_name: str) -> Worker:
    return Worker(
        functions=worker_functions(),
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_name=queue_name,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
        retry_jobs=True,
        max_tries=jobs.MAX_TRIES,
    )


@pytest.mark.redis
async def test_jobs_go_through_redis_to_an_arq_worker(redis_url: str, db: str) -> None:
    queue_name = f"jalon:test:{uuid4().hex}"
    queue = ArqQueue(redis_url, queue_name=queue_name)
    jobs.use_queue(queue)
    marker = uuid4().hex
    try:
        async with database.global_transaction():
            enqueue("record_for_test", marker, job_id=f"t:{marker}")
            enqueue("record_for_test", marker, job_id=f"t:{marker}")  # same id: once
        worker = await _burst_worker(redis_url, queue_name)
        try:
            await worker.main()
        finally:
            await worker.close()
    finally:
        await queue.close()
        jobs.configure_queue(None)
    assert _ran(marker) == [f"t:{marker}"]


@pytest.mark.redis
async def test_arq_retries_a_failing_job(
    redis_url: str, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "backoff_seconds", lambda job_try: 0.0)
    queue_name = f"jalon:test:{uuid4().hex}"
    queue = ArqQueue(redis_url, queue_name=queue_name)
    marker = uuid4().hex
    FAILURES_LEFT[marker] = 1
    try:
        await queue.enqueue("flaky_for_test", marker, job_id=f"t:{marker}")
        worker = await _burst_worker(redis_url, queue_name)
        try:
            await worker.main()
        finally:
            await worker.close()
    finally:
        await queue.close()
    assert _ran(marker) == ["try 2"]


def test_redis_is_required_in_ci() -> None:
    if os.environ.get("CI") == "true":
        assert os.environ.get("REDIS_URL"), "CI=true needs REDIS_URL: a missing service fails"


class _Recorder:
    """A queue that only records what it is given (the scheduler's side of the contract)."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, str]] = []

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        self.enqueued.append((name, job_id))

    async def close(self) -> None:
        return None


async def test_without_redis_the_periodic_jobs_run_in_process() -> None:
    import asyncio

    from api.runtime import import_jobs

    import_jobs()
    recorder = _Recorder()
    runner = asyncio.create_task(jobs.run_periodic_in_process(recorder))
    try:
        for _ in range(100):
            if len(recorder.enqueued) >= len(jobs.PERIODIC):
                break
            await asyncio.sleep(0.01)
    finally:
        runner.cancel()
    # every periodic job once at start, under a job id naming the minute
    assert sorted(name for name, _ in recorder.enqueued) == sorted(jobs.PERIODIC)
    assert {"sweep_outbox", "sweep_webhooks"} <= set(jobs.PERIODIC)
    assert all(job_id.startswith(f"cron:{name}:") for name, job_id in recorder.enqueued)
