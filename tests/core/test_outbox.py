"""The job outbox (ADR 0025): a job commits with its change, reaches the queue after commit or
later through the relay, and leaves its outcome (or its failure, for the back office)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from core import database, jobs, outbox
from core.jobs import InProcessQueue, enqueue, job

RAN: list[str] = []


@job
async def outbox_record_for_test(ctx: dict[str, Any], marker: str) -> None:
    RAN.append(marker)


@job
async def outbox_always_fails_for_test(ctx: dict[str, Any], marker: str) -> None:
    raise ValueError(f"the remote side refused {marker}")


class DownQueue:
    """A queue whose server does not answer (Redis stopped)."""

    def __init__(self) -> None:
        self.tries = 0

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        self.tries += 1
        raise ConnectionError("Connection refused")

    async def close(self) -> None:
        pass


async def _rows(owner_url: str, job_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(owner_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM job_outbox WHERE job_id = $1 ORDER BY created_at", job_id
        )
        return rows
    finally:
        await conn.close()


@pytest.fixture
def in_process(db: str) -> InProcessQueue:
    queue = jobs.configure_queue(None)
    assert isinstance(queue, InProcessQueue)
    return queue


async def test_a_job_is_a_row_committed_with_its_change_then_done(
    in_process: InProcessQueue, owner_url: str, tenant_a: Any
) -> None:
    marker = uuid4().hex
    async with database.tenant_transaction(tenant_a.owner_ctx):
        enqueue("outbox_record_for_test", marker, job_id=f"o:{marker}")
        enqueue("outbox_record_for_test", marker, job_id=f"o:{marker}")  # once per id
    await in_process.drain()
    assert RAN.count(marker) == 1
    [row] = await _rows(owner_url, f"o:{marker}")
    assert row["status"] == "done"
    assert row["tries"] == 1
    assert row["organization_id"] == tenant_a.id
    assert row["finished_at"] is not None


async def test_a_rolled_back_change_leaves_no_job(
    in_process: InProcessQueue, owner_url: str
) -> None:
    marker = uuid4().hex
    with pytest.raises(RuntimeError):  # noqa: PT012 -- the failure is inside the transaction
        async with database.global_transaction():
            enqueue("outbox_record_for_test", marker, job_id=f"o:{marker}")
            raise RuntimeError("the request failed")
    await in_process.drain()
    assert marker not in RAN
    assert await _rows(owner_url, f"o:{marker}") == []


async def test_jobs_the_queue_refused_wait_and_go_out_when_it_answers(
    in_process: InProcessQueue, owner_url: str
) -> None:
    marker = uuid4().hex
    down = DownQueue()
    jobs.use_queue(down)
    try:
        async with database.global_transaction():  # the change commits all the same
            enqueue("outbox_record_for_test", marker, job_id=f"o:{marker}")
    finally:
        jobs.use_queue(in_process)
    assert down.tries == 1
    [row] = await _rows(owner_url, f"o:{marker}")
    assert row["status"] == "pending"
    assert "Connection refused" in row["last_error"]
    assert row["relay_after"] > row["created_at"]  # backed off
    assert await outbox.outbox_lag_seconds() > 0
    # The queue answers again; the relay's next round (its back-off over) sends the row.
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute(
            "UPDATE job_outbox SET relay_after = now() WHERE job_id = $1", f"o:{marker}"
        )
    finally:
        await conn.close()
    assert await outbox.relay_pending(jobs.send_to_queue) >= 1
    await in_process.drain()
    assert RAN.count(marker) == 1
    [row] = await _rows(owner_url, f"o:{marker}")
    assert row["status"] == "done"


async def test_a_job_that_fails_for_good_is_listed_with_its_error(
    in_process: InProcessQueue, owner_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "MAX_TRIES", 2)
    monkeypatch.setattr(jobs, "backoff_seconds", lambda job_try: 0.01)
    marker = uuid4().hex
    async with database.global_transaction():
        enqueue("outbox_always_fails_for_test", marker, job_id=f"o:{marker}")
    await in_process.drain()
    [row] = await _rows(owner_url, f"o:{marker}")
    assert row["status"] == "failed"
    assert row["tries"] == 2
    failed = {found.job_id: found for found in await outbox.dangerously_failed_jobs()}
    assert f"o:{marker}" in failed
    assert failed[f"o:{marker}"].name == "outbox_always_fails_for_test"
    assert failed[f"o:{marker}"].args == [marker]
    assert f"refused {marker}" in (failed[f"o:{marker}"].last_error or "")


async def test_the_runtime_role_only_inserts_into_the_outbox(db: str) -> None:
    async with database.global_transaction():
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await database.fetch("SELECT job_id FROM job_outbox LIMIT 1")
    async with database.global_transaction():
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await database.execute("UPDATE job_outbox SET status = 'done'")


def test_enqueue_needs_a_transaction(db: str) -> None:
    with pytest.raises(RuntimeError):
        enqueue("outbox_record_for_test", "x", job_id="o:none")


async def test_finished_rows_are_purged_after_a_while(db: str) -> None:
    # Nothing this old: the purge runs (under Citus too) and deletes nothing recent.
    rows = await outbox._call("SELECT jalon_outbox_purge($1) AS purged", outbox.KEEP_DAYS)
    assert rows[0]["purged"] >= 0
