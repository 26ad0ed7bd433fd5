"""Prometheus metrics: what the web processes and the workers measure, and their scrape text.

The API other modules call is four functions, cheap enough for every request:
`observe_request`, `observe_answer_cycle`, `job_finished`, and `render()` for `/metrics`.
Gauges that describe the present (database pool use, outbox lag) are read at scrape time.

Several processes (docs/operations.md, "Metrics"): with `PROMETHEUS_MULTIPROC_DIR` set in
the environment before the process starts, prometheus_client keeps every value in a file of
that directory, and a scrape of any process sums them all (its multiprocess mode).
`jalon serve --workers N` (N > 1) sets it to a fresh directory of its own when the operator
did not, so `/metrics` on any worker describes the whole server. Without it (one worker, the
tests), values live in this process.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger(__name__)

#: The environment variable that turns prometheus_client's multiprocess mode on.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The media type of `render()`'s text.
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Jalon's own registry (not the library's global one, so imports of other libraries add
#: nothing to it, and the tests read it directly).
REGISTRY = CollectorRegistry(auto_describe=True)

# Latency buckets in seconds: the answer cycle's target is p95 < 100 ms, so the buckets are
# fine below a second, and coarse up to the 30 s a slow export page might take.
_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 600.0)


# The metrics, made by `_define()` below.
REQUEST_SECONDS: Histogram
ANSWER_CYCLE_SECONDS: Histogram
JOB_SECONDS: Histogram
JOB_RUNS: Counter
JOB_FAILURES: Counter
DB_POOL_SIZE: Gauge
DB_POOL_IDLE: Gauge
DB_POOL_MAX: Gauge
OUTBOX_LAG_SECONDS: Gauge


def _define(registry: CollectorRegistry) -> None:
    """Create every metric in `registry` (again, after a switch to multiprocess mode: values
    are files then, and the metrics made before the switch would keep theirs in memory)."""
    global REQUEST_SECONDS, ANSWER_CYCLE_SECONDS, JOB_SECONDS, JOB_RUNS, JOB_FAILURES
    global DB_POOL_SIZE, DB_POOL_IDLE, DB_POOL_MAX, OUTBOX_LAG_SECONDS
    REQUEST_SECONDS = Histogram(
        "jalon_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template, method and status code.",
        ("route", "method", "status"),
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    ANSWER_CYCLE_SECONDS = Histogram(
        "jalon_answer_cycle_duration_seconds",
        "Time to record a participant's answer and choose the next challenge (the answer POST).",
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    JOB_SECONDS = Histogram(
        "jalon_job_duration_seconds",
        "Time a background job's try took, by job name.",
        ("job",),
        buckets=_JOB_BUCKETS,
        registry=registry,
    )
    JOB_RUNS = Counter(
        "jalon_job_runs",
        "Tries of background jobs, by job name and outcome (ok or failed).",
        ("job", "outcome"),
        registry=registry,
    )
    JOB_FAILURES = Counter(
        "jalon_job_failures",
        "Failed tries of background jobs, by job name (a retried job counts each failure).",
        ("job",),
        registry=registry,
    )
    DB_POOL_SIZE = Gauge(
        "jalon_db_pool_connections",
        "Database connections open in the pools of the live processes.",
        registry=registry,
        multiprocess_mode="livesum",
    )
    DB_POOL_IDLE = Gauge(
        "jalon_db_pool_idle_connections",
        "Open database connections not lent to a request or job, in the live processes.",
        registry=registry,
        multiprocess_mode="livesum",
    )
    DB_POOL_MAX = Gauge(
        "jalon_db_pool_max_connections",
        "The most connections the pools of the live processes may open.",
        registry=registry,
        multiprocess_mode="livesum",
    )
    OUTBOX_LAG_SECONDS = Gauge(
        "jalon_outbox_lag_seconds",
        "Age of the oldest job waiting in the transactional outbox (0 when it is empty).",
        registry=registry,
        multiprocess_mode="livemostrecent",
    )


_define(REGISTRY)


def multiprocess() -> bool:
    """True when values are shared through `PROMETHEUS_MULTIPROC_DIR` (several processes)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one HTTP request: `route` is the route template (`/p/{slug}/{participation_id}`),
    never the raw path, so the number of series stays bounded."""
    REQUEST_SECONDS.labels(route, method, str(status)).observe(seconds)


def observe_answer_cycle(seconds: float) -> None:
    """Count one answer POST (the participant's answer recorded, the next challenge chosen)."""
    ANSWER_CYCLE_SECONDS.observe(seconds)


def job_finished(name: str, seconds: float, ok: bool) -> None:
    """Count one try of background job `name`, which took `seconds` and succeeded or not."""
    JOB_SECONDS.labels(name).observe(seconds)
    JOB_RUNS.labels(name, "ok" if ok else "failed").inc()
    if not ok:
        JOB_FAILURES.labels(name).inc()


def refresh_pool_gauges() -> None:
    """Read this process's database pool into the pool gauges (no query: asyncpg's counters)."""
    from core.database import DB

    pool: Any = DB.pool
    if pool is None:
        size = idle = maximum = 0
    else:
        size, idle, maximum = pool.get_size(), pool.get_idle_size(), pool.get_max_size()
    DB_POOL_SIZE.set(size)
    DB_POOL_IDLE.set(idle)
    DB_POOL_MAX.set(maximum)


async def refresh_outbox_lag() -> None:
    """Ask the outbox for its lag (`outbox_lag_seconds()` of core.outbox or core.jobs, when
    there is one); a failure leaves the previous value and is logged, never raised."""
    for module_name in ("core.outbox", "core.jobs"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        lag = getattr(module, "outbox_lag_seconds", None)
        if lag is None:
            continue
        try:
            value = lag()
            if inspect.isawaitable(value):
                value = await value
            OUTBOX_LAG_SECONDS.set(float(value or 0.0))
        except Exception:  # a scrape must answer even when the database does not
            log.warning("outbox lag unavailable", exc_info=True)
        return


async def render() -> bytes:
    """The scrape: every metric in Prometheus's text format, the gauges read just now. In
    multiprocess mode, the sum over every process writing to the shared directory."""
    refresh_pool_gauges()
    await refresh_outbox_lag()
    if multiprocess():
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def process_exited(pid: int | None = None) -> None:
    """Drop a finished process's live gauges (multiprocess mode); nothing otherwise."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid if pid is not None else os.getpid())  # type: ignore[no-untyped-call]


def render_text() -> str:
    """This process's values as they stand (no gauge refreshed): for the tests and debugging."""
    return generate_latest(REGISTRY).decode("utf-8")


def use_multiprocess_directory(directory: Path) -> None:
    """Share values between the processes started from now on through `directory` (emptied
    first: counters start again with the server, as Prometheus expects of a restart), unless
    the operator chose one in `PROMETHEUS_MULTIPROC_DIR`. Call before the processes start."""
    global REGISTRY
    if multiprocess():
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    # This process imported prometheus_client before the variable was set, and a server
    # that forks its workers (granian) hands them its choice: switch it, and remake the
    # metrics so that their values are files, written by each worker under its own pid.
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    REGISTRY = CollectorRegistry(auto_describe=True)
    _define(REGISTRY)


def serve_on_port(port: int, host: str = "127.0.0.1") -> None:
    """Serve this process's metrics over HTTP on `host:port` in a thread (`jalon worker
    --metrics-port`): loopback by default, for a worker that shares no directory with a
    web server."""
    from prometheus_client import start_http_server

    if multiprocess():
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=host, registry=registry)
    else:
        start_http_server(port, addr=host, registry=REGISTRY)


def render_all_text() -> str:
    """Every process's values as they stand (the sum in multiprocess mode), no gauge refreshed."""
    if multiprocess():
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry).decode("utf-8")
    return render_text()
