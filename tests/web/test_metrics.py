"""`/metrics`: refused to strangers, served with the token or to loopback, and what it shows."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from api.app import create_app
from core import jobs, metrics
from core.settings import Settings
from tests.api.running import running

TOKEN = "scrape-token-for-the-tests"


@pytest.fixture(scope="module")
async def guarded(db: str, settings: Settings) -> AsyncIterator[Litestar]:
    """The application with a metrics token set."""
    async with running(create_app(dataclasses.replace(settings, metrics_token=TOKEN))) as app:
        yield app


@pytest.fixture(scope="module")
async def open_app(db: str, settings: Settings) -> AsyncIterator[Litestar]:
    """The application with no metrics token: loopback clients only."""
    async with running(create_app(dataclasses.replace(settings, metrics_token=None))) as app:
        yield app


def _client(app: Litestar, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://jalon.test")


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name{labels…}` in a scrape (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_without_a_token_a_stranger_is_refused(open_app: Litestar) -> None:
    async with _client(open_app, "203.0.113.7") as client:
        response = await client.get("/metrics")
        # a forwarded-for header naming loopback changes nothing: the connection's address counts
        forged = await client.get("/metrics", headers={"x-forwarded-for": "127.0.0.1"})
    assert response.status_code == 403
    assert forged.status_code == 403
    assert "jalon_" not in response.text


async def test_without_a_token_loopback_is_served(open_app: Litestar) -> None:
    async with _client(open_app, "127.0.0.1") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "jalon_http_request_duration_seconds" in response.text


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
async def test_with_a_token_set_a_scrape_without_it_is_refused(
    guarded: Litestar, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    async with _client(guarded, "127.0.0.1") as client:  # loopback is not enough then
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_with_the_token_the_latency_of_a_route_template_is_served(
    guarded: Litestar,
) -> None:
    async with _client(guarded, "198.51.100.20") as client:
        before = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        page = await client.get("/c/NOSUCHCODE1")
        after = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert before.status_code == after.status_code == 200
    route = page.request.url.path.replace("NOSUCHCODE1", "{code}")
    count = "jalon_http_request_duration_seconds_count"
    labels: dict[str, Any] = {"route": route, "method": "GET", "status": str(page.status_code)}
    assert _sample(after.text, count, **labels) == _sample(before.text, count, **labels) + 1
    # the raw path (with its code) is never a label
    assert "NOSUCHCODE1" not in after.text
    assert page.headers["x-request-id"]


async def test_the_pool_gauges_describe_the_pool(open_app: Litestar) -> None:
    async with _client(open_app, "::1") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert _sample(response.text, "jalon_db_pool_max_connections") >= 1
    assert _sample(response.text, "jalon_db_pool_connections") >= 1


async def test_a_finished_job_is_counted_with_its_duration(open_app: Litestar) -> None:
    calls: list[int] = []

    @jobs.job
    async def metrics_probe_job(ctx: dict[str, Any], fail: bool) -> None:
        calls.append(1)
        if fail:
            raise RuntimeError("the probe failed on purpose")

    try:
        (definition,) = [f for f in jobs.worker_functions() if f.name == "metrics_probe_job"]
        await definition.coroutine({"job_try": 1}, False)
        # the last try of a failing job: the failure is counted, and raised to arq
        with pytest.raises(RuntimeError):
            await definition.coroutine({"job_try": jobs.MAX_TRIES}, True)
    finally:
        del jobs.REGISTRY["metrics_probe_job"]
    async with _client(open_app, "127.0.0.1") as client:
        text = (await client.get("/metrics")).text
    assert calls == [1, 1]
    assert _sample(text, "jalon_job_runs_total", job="metrics_probe_job", outcome="ok") == 1
    assert _sample(text, "jalon_job_runs_total", job="metrics_probe_job", outcome="failed") == 1
    assert _sample(text, "jalon_job_failures_total", job="metrics_probe_job") == 1
    assert _sample(text, "jalon_job_duration_seconds_count", job="metrics_probe_job") == 2


def test_the_api_records_what_it_is_given() -> None:
    before = _sample(metrics.render_text(), "jalon_answer_cycle_duration_seconds_count")
    metrics.observe_answer_cycle(0.042)
    after = _sample(metrics.render_text(), "jalon_answer_cycle_duration_seconds_count")
    assert after == before + 1


_FORKED_WORKERS = """
import asyncio, os, sys
from pathlib import Path
from core import metrics

metrics.use_multiprocess_directory(Path(sys.argv[1]))
for _ in range(2):  # two workers forked after the switch, as granian does
    pid = os.fork()
    if pid == 0:
        metrics.observe_request("/p/{slug}/{participation_id}", "POST", 303, 0.01)
        os._exit(0)
    os.waitpid(pid, 0)
print(metrics.render_all_text())
"""


def test_workers_forked_after_the_switch_are_summed(tmp_path: Path) -> None:
    # prometheus_client was imported (and chose in-memory values) before the switch: the
    # workers' values must still reach the shared directory, and a scrape must sum them
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _FORKED_WORKERS, str(tmp_path / "metrics")],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
    )
    count = "jalon_http_request_duration_seconds_count"
    assert _sample(done.stdout, count, route="/p/{slug}/{participation_id}", method="POST") == 2
