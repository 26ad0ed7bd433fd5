"""Billing benchmark: how fast `POST /billing/stripe/webhook` acknowledges Stripe's events.

Posts events signed by the Stripe SDK to the application in-process (httpx's ASGI transport:
no network), one at a time as Stripe delivers them, one in ten a redelivery, and prints the
acknowledgement latency's p50, p95 and p99: the signature check, the inbox INSERT … ON
CONFLICT DO NOTHING with its commit, and the enqueue of the processing job. With `REDIS_URL`
the job goes to Redis as in production (a queue of the benchmark's own, deleted after);
without it, to a queue that only counts, so that processing never competes with the
acknowledgements measured. The issue asks for p95 under 10 ms. For reference it also prints
the floor: one row inserted and committed, which waits for the disk to flush the WAL.

The database is a fresh `jalon_bench_billing` on the `DATABASE_URL` server (the embedded one
when unset), dropped at the end. `--quick` posts fewer events.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import time
from dataclasses import replace
from typing import Any

import httpx
import stripe

from api.app import create_app
from bench.common import run, scratch_database
from core import database, jobs
from core.settings import load_settings
from tests.api.running import asgi_transport, running

BENCH_DATABASE = "jalon_bench_billing"
SECRET = "whsec_bench"


class CountingQueue:
    """Takes jobs and runs none (the worker's part is not what is measured)."""

    def __init__(self) -> None:
        self.count = 0

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        self.count += 1

    async def close(self) -> None:
        pass


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _event(n: int) -> dict[str, Any]:
    return {
        "id": f"evt_bench_{os.getpid()}_{n:06d}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.subscription.updated",
        "data": {
            "object": {
                "id": "sub_bench",
                "object": "subscription",
                "customer": "cus_bench",
                "status": "active",
                "items": {"object": "list", "data": []},
            }
        },
    }


async def measure(events: int) -> None:
    settings = replace(load_settings(), stripe_webhook_secret=SECRET)
    redis_queue = f"jalon:bench:{os.getpid()}"
    queue: jobs.JobQueue = (
        jobs.ArqQueue(settings.redis_url, queue_name=redis_queue)
        if settings.redis_url
        else CountingQueue()
    )
    app = create_app(settings)
    timings: list[float] = []
    async with running(app):
        previous = jobs.get_queue()
        jobs.use_queue(queue)
        try:
            async with httpx.AsyncClient(
                transport=asgi_transport(app), base_url="http://127.0.0.1"
            ) as client:
                for n in range(events + 50):
                    # one in ten is a redelivery of an earlier event
                    event = _event(n // 2 if n % 10 == 9 else n)
                    payload = json.dumps(event)
                    header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
                    started = time.perf_counter()
                    response = await client.post(
                        "/billing/stripe/webhook",
                        content=payload,
                        headers={"stripe-signature": header, "content-type": "application/json"},
                    )
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        raise RuntimeError(f"{response.status_code}: {response.text}")
                    if n >= 50:  # the first ones warm the pool and the caches up
                        timings.append(elapsed * 1000)
        finally:
            jobs.use_queue(previous)
            await queue.close()
    where = "enqueued to Redis" if settings.redis_url else "enqueued in-process (not run)"
    print(
        f"Stripe webhook acknowledgement ({len(timings)} signed events, 10% redelivered, {where}):"
    )
    print(
        f"  p50 {statistics.median(timings):5.2f} ms   p95 {_percentile(timings, 0.95):5.2f} ms"
        f"   p99 {_percentile(timings, 0.99):5.2f} ms"
    )
    floor = await commit_floor()
    print(
        f"  for reference, one INSERT and its COMMIT on this server: p50 "
        f"{statistics.median(floor):5.2f} ms   p95 {_percentile(floor, 0.95):5.2f} ms"
    )
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url)
        try:
            await redis.delete(redis_queue)
            async for key in redis.scan_iter(match="arq:job:gateway_event:stripe:evt_bench_*"):
                await redis.delete(key)
        finally:
            await redis.aclose()


async def commit_floor(rounds: int = 300) -> list[float]:
    """The latency of the durable part alone: one row inserted and committed (the WAL flushed
    to disk), what no acknowledgement can go below without giving up durability."""
    timings = []
    for n in range(rounds):
        started = time.perf_counter()
        async with database.global_transaction():
            await database.execute(
                "INSERT INTO gateway_event (gateway, event_id, type, created_at, payload)"
                " VALUES ('stripe', $1, 'bench', now(), '{}'::jsonb)",
                f"evt_floor_{os.getpid()}_{n}",
            )
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def main_async(args: argparse.Namespace) -> None:
    # The app logs every request httpx makes; the figures are what this prints.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load_settings()
    async with scratch_database(settings, BENCH_DATABASE) as owner:
        database.configure(database.runtime_url(settings, owner), pool_size=5)
        await database.start_pool()
        await measure(300 if args.quick else 2000)


if __name__ == "__main__":
    run(main_async, __doc__, "fewer events")
