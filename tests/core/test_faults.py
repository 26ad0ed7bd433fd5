"""Faults (issue 13 §3, ADR 0025), against the real PostgreSQL and a private Redis server:
a worker killed in the middle of a job, Redis stopped while participants answer, and the
runtime role's PostgreSQL connections killed during requests."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from litestar import Litestar
from redis.asyncio import Redis

from api.app import create_app
from core import database, jobs
from core.jobs import ArqQueue, enqueue, job
from core.settings import Settings
from tests.api.conftest import Browser
from tests.api.running import asgi_transport, running
from tests.api.test_participant import _participant, _start, right_answer, short_campaign
from tests.conftest import TenantFixture
from tests.core.fault_jobs import JOB_TIMEOUT_SECONDS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@job
async def fault_noop_for_test(ctx: dict[str, Any], marker: str) -> None:
    """A job queued while Redis is down."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A redis-server of the test's own, on 127.0.0.1, without persistence."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (make system installs it)")
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220 - it starts at once
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    if await client.ping():
                        return
                except (OSError, ConnectionError, Exception):
                    await asyncio.sleep(0.05)
            pytest.fail("the private redis-server did not start")
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def _outbox_row(owner_url: str, job_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(owner_url)
    try:
        return await conn.fetchrow(
            "SELECT * FROM job_outbox WHERE job_id = $1 ORDER BY created_at DESC LIMIT 1", job_id
        )
    finally:
        await conn.close()


async def _wait_for(check: Any, seconds: float, what: str) -> None:
    for _ in range(int(seconds / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


async def _never_a_500(response: httpx.Response) -> None:
    # A 503 is the clean failure these tests expect; a 500 is a bug.
    assert response.status_code != 500, f"{response.request.url} -> 500"


@asynccontextmanager
async def _browser(app: Litestar) -> AsyncIterator[Browser]:
    """A browser on `app` that accepts 503s (the suite's own refuses every 5xx)."""
    async with httpx.AsyncClient(
        transport=asgi_transport(app),
        base_url="http://127.0.0.1",
        follow_redirects=False,
        headers={"accept-language": "en"},
        event_hooks={"response": [_never_a_500]},
    ) as client:
        yield Browser(client)


# --- a worker killed in the middle of a job ------------------------------------------------


@dataclasses.dataclass
class Workers:
    runtime_url: str
    redis_url: str
    processes: list[subprocess.Popen[bytes]]

    def start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.core.fault_jobs", self.runtime_url, self.redis_url],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process


@pytest.fixture
def workers(db: str, private_redis: PrivateRedis) -> Iterator[Workers]:
    started = Workers(db, private_redis.url, [])
    try:
        yield started
    finally:
        for process in started.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


async def test_a_job_whose_worker_is_killed_runs_again_and_its_effect_happens_once(
    workers: Workers, private_redis: PrivateRedis, owner_url: str, tmp_path: Path
) -> None:
    key = uuid4().hex
    job_id = f"fault:{key}"
    previous = jobs.get_queue()
    queue = jobs.use_queue(ArqQueue(private_redis.url))
    try:
        async with database.global_transaction():
            enqueue("fault_effect_for_test", str(tmp_path), key, job_id=job_id)
    finally:
        jobs.use_queue(previous)
        await queue.close()
    log = tmp_path / "log"

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    first = workers.start()

    async def started() -> bool:
        return "start 1" in lines()

    await _wait_for(started, 60, "the first try to start")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    workers.start()

    async def done() -> bool:
        row = await _outbox_row(owner_url, job_id)
        return row is not None and row["status"] == "done"

    # arq runs it again once the dead worker's in-progress mark expires (timeout + 10 s).
    await _wait_for(done, JOB_TIMEOUT_SECONDS + 60, "the job to run again")
    assert lines().count("effect") == 1
    assert [line for line in lines() if line.startswith("start")] == ["start 1", "start 2"]
    assert len(list(tmp_path.glob("effect-*"))) == 1  # noqa: ASYNC240
    row = await _outbox_row(owner_url, job_id)
    assert row is not None
    assert row["tries"] == 2


# --- Redis stopped while participants answer -----------------------------------------------

_CHALLENGE_FIELD = 'name="challenge_id" value="'


async def _answer(browser: Browser, page: str) -> httpx.Response:
    shown = await browser.get(page)
    assert shown.status_code == 200, shown.text
    challenge = shown.text.split(_CHALLENGE_FIELD, 1)[1].split('"', 1)[0]
    kind = shown.text.split('name="type" value="', 1)[1].split('"', 1)[0]
    form = {"_csrf_token": browser.csrf, "challenge_id": challenge, "type": kind}
    return await browser.client.post(page, data={**form, **right_answer(challenge)})


async def _answers(owner_url: str, tenant_id: Any) -> int:
    conn = await asyncpg.connect(owner_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM answer WHERE tenant_id = $1", tenant_id
        )
        return count
    finally:
        await conn.close()


async def test_with_redis_stopped_answers_are_saved_and_queued_work_goes_out_after(
    private_redis: PrivateRedis,
    settings: Settings,
    tenant_a: TenantFixture,
    owner_url: str,
    in_process: Any,
) -> None:
    app = create_app(dataclasses.replace(settings, redis_url=private_redis.url))
    campaign = await short_campaign(tenant_a, length=6)
    async with running(app), _browser(app) as browser:
        jobs_queue = jobs.get_queue()  # the app's: arq on the private Redis
        assert isinstance(jobs_queue, ArqQueue)
        person = await _participant(browser)
        page = await _start(browser, campaign)
        answered = await _answer(browser, page)
        assert answered.status_code == 303
        before = await _answers(owner_url, tenant_a.id)

        private_redis.stop()
        for _ in range(2):
            answered = await _answer(browser, page)
            assert answered.status_code == 303, answered.text
            assert answered.headers.get("x-jalon-degraded") == "sessions"
        assert await _answers(owner_url, tenant_a.id) == before + 2
        shown = await browser.client.get(answered.headers["location"])
        assert shown.status_code == 200
        assert "you may be asked to sign in again" in shown.text
        # Work queued meanwhile is kept in the outbox...
        marker = uuid4().hex
        async with database.tenant_transaction(tenant_a.owner_ctx):
            enqueue("fault_noop_for_test", marker, job_id=f"fault:{marker}")
        row = await _outbox_row(owner_url, f"fault:{marker}")
        assert row is not None
        assert row["status"] == "pending"
        assert (await browser.client.get("/readyz")).status_code == 503

        # ...and goes out once Redis is back, through the relay loop (as `jalon worker` runs).
        await private_redis.start()
        relay = asyncio.create_task(jobs.relay_forever())
        try:

            async def relayed() -> bool:
                found = await _outbox_row(owner_url, f"fault:{marker}")
                return found is not None and found["status"] == "relayed"

            await _wait_for(relayed, 60, "the relay to send the job")
        finally:
            relay.cancel()
        client = Redis.from_url(private_redis.url)
        try:
            assert await client.exists(f"arq:job:fault:{marker}")
        finally:
            await client.aclose()
        assert (await browser.client.get("/readyz")).status_code == 200
        # This Redis keeps nothing on disk: its sessions are gone, the participant signs in
        # again and goes on where the saved answers left off.
        assert (await browser.get(page)).status_code == 303
        await browser.login(person)
        assert (await _answer(browser, page)).status_code == 303
        assert await _answers(owner_url, tenant_a.id) == before + 3


# --- PostgreSQL connections killed during requests ------------------------------------------


async def _kill_runtime_backends(owner_url: str, role: str) -> int:
    conn = await asyncpg.connect(owner_url)
    try:
        killed: int = await conn.fetchval(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE usename = $1 AND datname = current_database()""",
            role,
        )
        return killed
    finally:
        await conn.close()


async def test_killed_database_connections_fail_requests_cleanly_and_service_resumes(
    tenant_a: TenantFixture, owner_url: str, settings: Settings
) -> None:
    app = create_app(settings)
    async with running(app), _browser(app) as browser:
        await _killed_connections(browser, tenant_a, owner_url, settings)


async def _killed_connections(
    browser: Browser, tenant_a: TenantFixture, owner_url: str, settings: Settings
) -> None:
    campaign = await short_campaign(tenant_a, length=6)
    await _participant(browser)
    page = await _start(browser, campaign)
    before = await _answers(owner_url, tenant_a.id)
    statuses: list[int] = []
    saved = 0
    for _ in range(12):
        # Connections killed under the request, at a moment that varies from run to run.
        killer = asyncio.create_task(_kill_runtime_backends(owner_url, settings.runtime_role))
        try:
            answered = await _answer(browser, page)
        except AssertionError:
            answered = None  # the page itself was refused (a 503), checked below
        await killer
        status = 503 if answered is None else answered.status_code
        statuses.append(status)
        assert status in (303, 503), answered.text if answered is not None else ""
        if status == 303:
            saved += 1
            if answered is not None and answered.headers["location"] != page:
                break
    # No half-writes: every answer the participant was told was saved is there, once.
    assert await _answers(owner_url, tenant_a.id) == before + saved
    # While the runtime role cannot connect, /readyz says so; then it recovers, unrestarted.
    conn = await asyncpg.connect(owner_url)
    database_name = await conn.fetchval("SELECT current_database()")
    try:
        await conn.execute(f'ALTER DATABASE "{database_name}" CONNECTION LIMIT 0')
        await _kill_runtime_backends(owner_url, settings.runtime_role)
        down = await browser.client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["database"] == "unavailable"
        refused = await browser.client.get(page)
        assert refused.status_code == 503
        assert "try again" in refused.text.lower()
    finally:
        await conn.execute(f'ALTER DATABASE "{database_name}" CONNECTION LIMIT -1')
        await conn.close()
    assert (await browser.client.get("/readyz")).status_code == 200
    assert (await browser.get(page)).status_code in (200, 303)
