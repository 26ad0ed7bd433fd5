"""Shared fixtures: a real PostgreSQL (migrated, connected as the runtime role) and two tenants.

`DATABASE_URL` names the server when set (CI sets it); otherwise the embedded PostgreSQL in
`var/` serves. Each test session gets a fresh database, `jalon_test_<pid>`, dropped at the end.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import pytest
from asyncpg.connection import LoggedQuery

from api.runtime import import_jobs
from core import citus, database, jobs
from core.jobs import REGISTRY
from core.settings import Settings, load_settings
from tenants.accounts import UserAccount, create_user
from tenants.context import Actor, TenantContext
from tenants.members import add_member
from tenants.organizations import OrganizationFields, create_organization, member_context

#: One database per test run, so two runs on one server (two developers, or a developer and
#: CI) never drop each other's; it is dropped when the run ends.
TEST_DATABASE = f"jalon_test_{os.getpid()}"
IN_CI = os.environ.get("CI") == "true"
#: `JALON_TEST_CITUS_WORKERS`, set by `make test-citus`: the owner URLs of the workers of the
#: Citus cluster whose coordinator `DATABASE_URL` names. The suite then runs, unchanged, on
#: a distributed database.
CITUS_WORKERS = [url for url in os.environ.get("JALON_TEST_CITUS_WORKERS", "").split(",") if url]
#: `JALON_TEST_RUNTIME_VIA`, set by `make test-pgbouncer`: a pooler's URL (`scripts/pgbouncer.sh
#: url`) that the runtime pool connects through. Its host, port and query replace the runtime
#: URL's, which keeps its role and the run's database; the owner (CREATE DATABASE,
#: migrations, the tests' direct connections) still goes straight to the server.
RUNTIME_VIA = os.environ.get("JALON_TEST_RUNTIME_VIA", "")


def _through(url: str, via: str) -> str:
    parts, pooler = urlsplit(url), urlsplit(via)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@{pooler.netloc.rpartition('@')[2]}" if user else pooler.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, pooler.query, parts.fragment))


#: The suite runs in development mode (the mail outbox, generated secrets), which Jalon never
#: falls into: it is asked for here, for this process and the servers the tests start.
os.environ.setdefault("JALON_ENV", "development")


def _settings() -> Settings:
    if IN_CI and not os.environ.get("DATABASE_URL"):
        raise RuntimeError("CI=true needs DATABASE_URL: a missing service is a failure")
    return load_settings()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return _settings()


@pytest.fixture(scope="session", autouse=True)
async def _fresh_redis() -> None:
    """Clear earlier runs' throttling counters from `REDIS_URL`, so that a run starts below
    every limit. Sessions and test queues have random names and are left alone: another run
    on the same Redis (two developers, a developer and CI) keeps its signed-in browsers."""
    url = os.environ.get("REDIS_URL")
    if not url:
        if IN_CI:
            pytest.fail("CI=true needs REDIS_URL: a missing service is a failure")
        return
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.ping()
        async for key in client.scan_iter(match="jalon:rl:*"):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis of `REDIS_URL`; skipped without it (and failed under CI, above)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set")
    return url


@pytest.fixture(scope="session")
async def owner_url(settings: Settings) -> AsyncIterator[str]:
    """A freshly created, migrated test database; the URL of its owner connection."""
    server_url = database.owner_url(settings)
    await _drop_test_database(server_url)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    finally:
        await admin.close()
    url = database.with_database(server_url, TEST_DATABASE)
    if CITUS_WORKERS:
        await citus.join_workers(url, CITUS_WORKERS)
    await database.migrate(
        url, settings.runtime_role, settings.runtime_password, "api.piccolo_conf"
    )
    yield url
    await _drop_test_database(server_url)


async def _drop_test_database(server_url: str) -> None:
    """Drop the run's database. On a Citus cluster, node by node, the coordinator first: a
    propagated drop can fail half-way while a worker still holds one of Citus's own sessions
    to it, and leave the database on some nodes only."""
    for node in [server_url, *CITUS_WORKERS]:
        admin = await asyncpg.connect(node)
        try:
            if CITUS_WORKERS:
                await admin.execute("SET citus.enable_create_database_propagation = off")
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def db(owner_url: str, settings: Settings) -> AsyncIterator[str]:
    """The shared engine, connected as the runtime role to the test database."""
    runtime = database.runtime_url(settings, owner_url)
    if RUNTIME_VIA:
        runtime = _through(runtime, RUNTIME_VIA)
    database.configure(runtime, pool_size=5)
    await database.start_pool()
    import_jobs()  # as every entry point does: services enqueue jobs by name
    jobs.configure_queue(None)
    yield runtime
    await jobs.get_queue().close()
    await database.close_pool()


@dataclass(frozen=True)
class TenantFixture:
    """A tenant with an owner and a plain member, and their contexts."""

    slug: str
    owner: UserAccount
    member: UserAccount
    owner_ctx: TenantContext
    member_ctx: TenantContext

    @property
    def id(self):  # type: ignore[no-untyped-def]
        return self.owner_ctx.tenant_id


async def make_user(name: str = "Test Person", locale: str = "en") -> UserAccount:
    email = f"{name.split()[0].lower()}-{uuid4().hex[:8]}@example.org"
    return await create_user(email, name, "correct horse battery", locale, verified=True)


async def make_tenant(label: str) -> TenantFixture:
    """A new organization with an owner and a member (added directly: invitations are
    themselves under test)."""
    owner = await make_user(f"{label} Owner")
    member = await make_user(f"{label} Member")
    slug = f"{label.lower()}-{uuid4().hex[:8]}"
    actor = Actor(kind="user", user_id=owner.id, label=owner.email)
    await create_organization(
        OrganizationFields(
            name=f"{label} Org", slug=slug, kind="company", country="FR", default_locale="en"
        ),
        owner,
        actor,
    )
    owner_ctx = await member_context(slug, owner, actor)
    await add_member(owner_ctx, member, "member")
    member_ctx = await member_context(
        slug, member, Actor(kind="user", user_id=member.id, label=member.email)
    )
    return TenantFixture(slug, owner, member, owner_ctx, member_ctx)


@pytest.fixture
async def tenant_a(db: str) -> TenantFixture:
    return await make_tenant("Alpha")


@pytest.fixture
async def tenant_b(db: str) -> TenantFixture:
    return await make_tenant("Beta")


# --- job queues a test controls ----------------------------------------------------------


class HeldQueue:
    """A job queue that keeps what it is given, for the test to run when it chooses."""

    def __init__(self) -> None:
        self.held: list[tuple[str, tuple[Any, ...]]] = []

    async def enqueue(self, name: str, *args: Any, job_id: str) -> None:
        self.held.append((name, args))

    async def close(self) -> None:
        pass

    async def run(self, job_try: int = 1) -> None:
        held, self.held = self.held, []
        for name, args in held:
            await REGISTRY[name]({"job_try": job_try}, *args)


@pytest.fixture
async def in_process(db: str) -> AsyncIterator[jobs.InProcessQueue]:
    """Jobs run in this process, whatever queue was there (the application's lifespan may have
    set Redis up, and no worker runs in the tests); drained at the end. A module whose tests
    all need it says `pytestmark = pytest.mark.usefixtures("in_process")`."""
    previous = jobs.get_queue()
    queue = jobs.InProcessQueue()
    jobs.use_queue(queue)
    yield queue
    await queue.drain()
    jobs.use_queue(previous)


@pytest.fixture
def held(in_process: jobs.InProcessQueue) -> Iterator[HeldQueue]:
    """Jobs kept, not run: the test runs them with `held.run()`."""
    previous = jobs.get_queue()
    queue = HeldQueue()
    jobs.use_queue(queue)
    yield queue
    jobs.use_queue(previous)


#: What asyncpg sends of its own: type introspection the first time a connection meets a
#: type, and the reset of a connection going back to the pool (one per transaction).
DRIVER_STATEMENTS = ("typeinfo_tree", "'jit'", "pg_advisory_unlock_all")


@pytest.fixture
async def statements(db: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """Every statement our code sends from now on, as asyncpg logs them: the pool is restarted
    with a query logger on each connection, so the driver does the counting, not our code.
    The driver's own statements (`DRIVER_STATEMENTS`) are left out. The set of withdrawn
    challenges, which a process reads again once a minute, is kept once read: a count must
    not depend on whether that minute ends during the test (it did in a slow Citus run)."""
    from campaigns import problem_reports

    monkeypatch.setattr(problem_reports, "CACHE_SECONDS", math.inf)
    sent: list[str] = []

    def log(record: LoggedQuery) -> None:
        if not any(marker in record.query for marker in DRIVER_STATEMENTS):
            sent.append(record.query)

    async def init(connection: Any) -> None:
        connection.add_query_logger(log)

    await database.close_pool()
    await database.DB.start_connection_pool(init=init)
    try:
        yield sent
    finally:
        await database.close_pool()
        await database.start_pool()
