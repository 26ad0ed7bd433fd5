"""The job outbox (ADR 0025): a job is a row of `job_outbox` written in the transaction of the
change that causes it, so the change and its job commit together or not at all. A relay hands
the rows to the queue (arq on Redis, or this process's in-process queue): right after commit
as a fast path, and by a loop (`relay_forever`) that retries, with back-off, what the fast
path could not send (Redis down, a process that died between commit and send).

Rows move `pending` -> `relayed` (handed to the queue) -> `done` or `failed` (the job's own
outcome, recorded by the worker with its tries and last error). A row relayed long ago and
never finished (its Redis flushed, its in-process queue gone with its process) is relayed
again: jobs are idempotent, and arq's `_job_id` keeps one copy of a job queued at a time.

The runtime role may only insert rows. Everything that reads or changes them across tenants
goes through SECURITY DEFINER functions owned by the owner role (the migration's).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from core import database

log = logging.getLogger(__name__)

#: How long a claimed row is left alone by other relays while one sends it.
LEASE_SECONDS = 30.0
#: A relayed row not finished after this long is relayed again (a job's timeout is 600 s).
RECHECK_SECONDS = 1800.0
#: After this many relays without an outcome, a row is marked failed.
MAX_RELAYS = 25
#: The relay loop's pause when it found nothing to do, and its longest back-off.
IDLE_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 60.0
#: Finished rows are deleted after this many days; failed rows stay for the back office.
KEEP_DAYS = 7
#: How long the fast path may wait for the queue before leaving a row to the relay loop.
SEND_TIMEOUT_SECONDS = 2.0

Sender = Callable[[str, tuple[Any, ...], str], Awaitable[None]]


@dataclass(frozen=True)
class OutboxRow:
    id: UUID
    job_id: str
    name: str
    args: tuple[Any, ...]


#: The rows enqueued in the current transaction: (that transaction, its rows by job id).
_batch: contextvars.ContextVar[tuple[object, dict[str, OutboxRow]] | None] = contextvars.ContextVar(
    "jalon_outbox_batch", default=None
)


def add(name: str, args: tuple[Any, ...], job_id: str, send: Sender) -> None:
    """Write the job's row in the current transaction (just before it commits, with every
    other job of the transaction), and send it to the queue once it has committed. `args`
    must be JSON values (ids, not objects). A job id given twice in one transaction is one
    job."""
    tx = database.DB.current_transaction.get()
    current = _batch.get()
    if tx is not None and current is not None and current[0] is tx:
        current[1].setdefault(job_id, OutboxRow(uuid4(), job_id, name, args))
        return
    rows = {job_id: OutboxRow(uuid4(), job_id, name, args)}

    async def write() -> None:
        await database.execute(
            """INSERT INTO job_outbox (id, organization_id, job_id, name, args)
               SELECT row.id, nullif(current_setting('jalon.tenant_id', true), '')::uuid,
                      row.job_id, row.name, row.args
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[])
                   AS row(id, job_id, name, args)
               ON CONFLICT DO NOTHING""",
            [row.id for row in rows.values()],
            [row.job_id for row in rows.values()],
            [row.name for row in rows.values()],
            [json.dumps(list(row.args)) for row in rows.values()],
        )

    async def relay() -> None:
        await relay_rows(list(rows.values()), send)

    database.before_commit(write)
    database.after_commit(relay)
    _batch.set((tx, rows))


async def _call(sql: str, *args: Any) -> list[dict[str, Any]]:
    """One statement on a pooled connection, outside any transaction of the caller's (the
    relay runs after commits, and from loops)."""
    pool = database.DB.pool
    if pool is None:
        raise RuntimeError("the database pool is not started")
    async with pool.acquire() as conn:
        rows = await conn.fetch(sql, *args)
    return [dict(row) for row in rows]


async def relay_rows(rows: list[OutboxRow], send: Sender) -> int:
    """Hand `rows` to the queue, then mark those it took relayed and those it refused for a
    later try; never raises (the loop will try again). How many were relayed."""
    sent: list[UUID] = []
    refused: list[UUID] = []
    error = ""
    for row in rows:
        try:
            await asyncio.wait_for(send(row.name, row.args, row.job_id), SEND_TIMEOUT_SECONDS)
        except Exception as exc:  # Redis down, a timeout: the row waits for the loop
            refused.append(row.id)
            error = f"{type(exc).__name__}: {exc}"
        else:
            sent.append(row.id)
    try:
        if sent:
            await _call("SELECT jalon_outbox_relayed($1::uuid[], $2)", sent, RECHECK_SECONDS)
        if refused:
            log.warning("queue refused %d job(s) (%s); the relay will retry", len(refused), error)
            await _call("SELECT jalon_outbox_relay_failed($1::uuid[], $2)", refused, error)
    except Exception:
        log.warning("could not mark outbox rows; the relay will see them again", exc_info=True)
    return len(sent)


async def relay_pending(send: Sender, limit: int = 200) -> int:
    """Claim the rows due (pending, or relayed long ago and unfinished) and send them; how
    many were relayed. Raises when the database does not answer."""
    claimed = await _call(
        "SELECT * FROM jalon_outbox_claim($1, $2, $3)", limit, LEASE_SECONDS, MAX_RELAYS
    )
    rows = [
        OutboxRow(row["id"], row["job_id"], row["name"], tuple(json.loads(row["args"])))
        for row in claimed
    ]
    if not rows:
        return 0
    relayed = await relay_rows(rows, send)
    if relayed < len(rows):
        raise ConnectionError(f"the queue took {relayed} of {len(rows)} jobs")
    return relayed


async def relay_forever(send: Sender) -> None:
    """Relay due rows until cancelled: every `IDLE_SECONDS` when all is well, backing off up to
    `MAX_BACKOFF_SECONDS` while the queue or the database does not answer. Purges old
    finished rows now and then."""
    failures = 0
    rounds = 0
    while True:
        try:
            relayed = await relay_pending(send)
            if rounds % 1800 == 0:
                await _call("SELECT jalon_outbox_purge($1)", KEEP_DAYS)
            rounds += 1
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            log.warning("outbox relay failed (%d in a row)", failures, exc_info=failures == 1)
            relayed = 0
        if relayed == 0:
            pause = IDLE_SECONDS if failures == 0 else min(2.0**failures, MAX_BACKOFF_SECONDS)
            await asyncio.sleep(pause)


async def record_outcome(job_id: str, outcome: str, tries: int, error: str | None) -> None:
    """Record a try's outcome on the job's outbox row ('done', 'failed' or 'retrying'); jobs
    that have no row (periodic ones) change nothing. Never raises: bookkeeping must not fail
    the job."""
    try:
        await _call("SELECT jalon_job_outcome($1, $2, $3, $4)", job_id, outcome, tries, error)
    except Exception:
        log.warning("could not record job %s as %s", job_id, outcome, exc_info=True)


async def outbox_lag_seconds() -> float:
    """Age in seconds of the oldest job not yet handed to the queue (0 when none waits)."""
    rows = await _call("SELECT jalon_outbox_lag() AS lag")
    return float(rows[0]["lag"] or 0.0)


@dataclass(frozen=True)
class FailedJob:
    """A job that failed for good: its last error, for the back office."""

    id: UUID
    organization_id: UUID | None
    job_id: str
    name: str
    args: list[Any]
    tries: int
    last_error: str | None
    last_error_at: datetime | None
    created_at: datetime


async def dangerously_failed_jobs(limit: int = 100) -> list[FailedJob]:
    """The jobs that failed for good across every tenant, newest first (the back office)."""
    rows = await _call("SELECT * FROM jalon_failed_jobs($1)", limit)
    return [
        FailedJob(
            id=row["id"],
            organization_id=row["organization_id"],
            job_id=row["job_id"],
            name=row["name"],
            args=json.loads(row["args"]),
            tries=row["tries"],
            last_error=row["last_error"],
            last_error_at=row["last_error_at"],
            created_at=row["created_at"],
        )
        for row in rows
    ]
