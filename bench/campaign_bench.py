"""Campaign benchmarks: the answer → next challenge cycle (in-process and over HTTP) and the
results export of 100,000 shared participations.

Prints the latency of `campaigns.participation.answering.answer` (persist the answer, replay the
engine, store the next challenge: one transaction) as simulated participants take the demo
bank's adaptive test; the time and the peak Python memory of streaming a campaign's CSV
export of 100,000 shared results (10,000 with `--quick`); then the requests per second of the
answer cycle through the web server (POST the answer, GET the next challenge page) with
concurrent signed-in participants.

The database is a fresh `jalon_bench` on the `DATABASE_URL` server (the embedded one when
unset), dropped at the end. `--quick` runs fewer tests and a shorter HTTP window. With
`JALON_CITUS_WORKERS` (comma-separated owner URLs of the workers; `make bench-citus` sets it),
`DATABASE_URL` is a Citus coordinator and the database is distributed over the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import numpy as np

from bench.common import run, scratch_database
from campaigns import content, exports
from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from campaigns.service import create_campaign
from core import database, jobs
from core.settings import load_settings
from engine import Bank, Challenge, get_bank
from tenants.accounts import UserAccount, create_user
from tenants.context import Actor, TenantContext
from tenants.organizations import OrganizationFields, create_organization, member_context
from tests.seeding import insert_rows

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "jalon_bench"
PASSWORD = "bench-password-2026"
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
_HIDDEN = re.compile(r'name="(challenge_id|type)" value="([^"]*)"')


@dataclass(frozen=True)
class Setup:
    bank: Bank
    campaign: Campaign
    slug: str
    ctx: TenantContext


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _respond(
    bank: Bank, challenge_id: str, locale: str, theta: float, rng: np.random.Generator
) -> Any:
    """An answer like a person of ability `theta` would give (right with the IRT probability)."""
    challenge: Challenge = bank.challenge_by_id[challenge_id]
    irt = challenge.irt
    right = rng.random() < irt.c + (irt.d - irt.c) / (1 + math.exp(-irt.a * (theta - irt.b)))
    if challenge.type == "short_text":
        assert isinstance(challenge.solution, dict)
        return challenge.solution[locale][0] if right else "no idea"
    assert isinstance(challenge.solution, tuple)
    if challenge.type == "single_choice":
        n = len(challenge.proposals[locale])
        return challenge.solution[0] if right else (challenge.solution[0] + 1) % n
    return list(challenge.solution) if right else [0]


async def _person(i: int) -> UserAccount:
    email = f"p{i}-{uuid4().hex[:6]}@bench.example"
    return await create_user(email, f"Participant {i}", PASSWORD, "en", verified=True)


async def _setup(users: int) -> tuple[Setup, list[UserAccount]]:
    owner = await create_user(
        f"owner-{uuid4().hex[:8]}@bench.example", "Bench Owner", PASSWORD, "en"
    )
    slug = f"bench-{uuid4().hex[:8]}"
    actor = Actor(kind="user", user_id=owner.id, label=owner.email)
    fields = OrganizationFields(
        name="Bench", slug=slug, kind="company", country="FR", default_locale="en"
    )
    await create_organization(fields, owner, actor)
    ctx = await member_context(slug, owner, actor)
    campaign = await create_campaign(ctx, CampaignFields(name="Bench", profile_key="digcomp"))
    people = await asyncio.gather(*(_person(i) for i in range(users)))
    bank = get_bank(content.bank_dir())
    return Setup(bank, campaign, slug, ctx), list(people)


async def in_process(setup: Setup, people: list[UserAccount], seed: int = 1) -> list[float]:
    """Take one whole test per person; the duration of every `answer` call, in seconds."""
    rng = np.random.default_rng(seed)
    timings: list[float] = []
    for person in people:
        ctx = participant_context(
            setup.ctx.tenant, Actor(kind="user", user_id=person.id, label=person.email)
        )
        participation = await start_or_resume(ctx, setup.campaign.id, locale="en")
        theta = float(rng.normal())
        view = await current_challenge(ctx, participation.id)
        while view is not None:
            value = _respond(setup.bank, view.challenge_id, view.locale, theta, rng)
            started = time.perf_counter()
            outcome = await answer(ctx, participation.id, view.challenge_id, value)
            timings.append(time.perf_counter() - started)
            view = outcome.next_challenge
    return timings


async def seed_shared_results(ctx: TenantContext, campaign: Campaign, rows: int) -> None:
    """`rows` learners who shared a result in `campaign` (levels and scores spread by index),
    written in the current transaction as multi-row VALUES lists, the bulk insert Citus accepts
    under row-level security (ADR 0002): a few dozen statements for 100,000 results."""
    tenant, codes, now = ctx.tenant_id, list(campaign.profile.competences), datetime.now(UTC)
    learners = [uuid4() for _ in range(rows)]
    participations = [uuid4() for _ in range(rows)]
    await insert_rows(
        "learner",
        ("tenant_id", "id", "name", "email"),
        [
            (tenant, learner, f"Learner {g}", f"learner{g}@bench.example")
            for g, learner in enumerate(learners, start=1)
        ],
    )
    await insert_rows(
        "participation",
        (
            "tenant_id",
            "id",
            "campaign_id",
            "learner_id",
            "attempt",
            "status",
            "completed_at",
            "shared_at",
        ),
        [
            (tenant, participation, campaign.id, learner, 1, "shared", now, now)
            for participation, learner in zip(participations, learners, strict=True)
        ],
    )
    await insert_rows(
        "result",
        ("tenant_id", "id", "participation_id", "theta", "se", "level", "score", "competences"),
        [
            (
                tenant,
                uuid4(),
                participation,
                0.0,
                0.3,
                g % 9,
                (g * 7) % 1024,
                json.dumps({code: {"level": (g + n) % 9} for n, code in enumerate(codes, 1)}),
            )
            for g, participation in enumerate(participations, start=1)
        ],
    )


async def export_figures(owner: str, setup: Setup, rows: int) -> None:
    """Seed `rows` shared results in a campaign of their own, then stream its CSV export twice:
    once timed, once under tracemalloc for the peak of Python allocations.

    The tables are analysed after the bulk load (as the owner, `owner` URL), as autovacuum
    soon would: without statistics the planner takes the fresh tables for empty ones."""
    ctx = setup.ctx
    campaign = await create_campaign(ctx, CampaignFields(name="Export", profile_key="digcomp"))
    codes = list(campaign.profile.competences)
    async with database.tenant_transaction(ctx):
        await seed_shared_results(ctx, campaign, rows)
    admin = await asyncpg.connect(owner)
    try:
        await admin.execute("ANALYZE learner, participation, result")
    finally:
        await admin.close()

    async def consume() -> tuple[int, int]:
        _, lines = await exports.results_csv(ctx, campaign.id, "en")
        count = size = 0
        async for line in lines:
            count += 1
            size += len(line.encode())
        return count, size

    started = time.perf_counter()
    count, size = await consume()
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    await consume()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"\nCSV export of {count - 1:,} shared results ({len(codes)} competence columns, "
        f"{size / 1e6:.1f} MB): {elapsed:.1f} s, {(count - 1) / elapsed:,.0f} rows/s; "
        f"peak Python memory while streaming {peak / 1e6:.1f} MB "
        f"(rows fetched {exports.BATCH_ROWS} at a time)"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise SystemExit(f"the server at {url} did not become ready (see var/bench-server.log)")


async def _signed_in(url: str, person: UserAccount) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    page = await client.get("/login")
    token = _CSRF.search(page.text)
    data = {"_csrf_token": token.group(1) if token else "", "email": person.email}
    response = await client.post("/login", data={**data, "password": PASSWORD})
    if response.status_code not in (302, 303):
        raise SystemExit(f"sign-in failed for {person.email}: {response.status_code}")
    return client


async def _take_tests(
    setup: Setup,
    queue: asyncio.Queue[httpx.AsyncClient],
    deadline: float,
    cycles: list[tuple[float, float]],
    rng: np.random.Generator,
) -> None:
    """Take the test of one signed-in person after another, through the pages, until the
    deadline; record (POST answer, GET next page) durations."""
    code = setup.campaign.code
    while time.monotonic() < deadline and not queue.empty():
        client = queue.get_nowait()
        landing = await client.get(f"/c/{code}")
        token = _CSRF.search(landing.text)
        started = await client.post(
            f"/c/{code}/start", data={"_csrf_token": token.group(1) if token else ""}
        )
        here = started.headers["location"]
        page = await client.get(here)
        theta = float(rng.normal())
        while time.monotonic() < deadline and "challenge_id" in page.text:
            hidden = dict(_HIDDEN.findall(page.text))
            csrf = _CSRF.search(page.text)
            value = _respond(setup.bank, hidden["challenge_id"], "en", theta, rng)
            form = {
                "_csrf_token": csrf.group(1) if csrf else "",
                "challenge_id": hidden["challenge_id"],
                "type": hidden.get("type", ""),
                "answer": [str(v) for v in (value if isinstance(value, list) else [value])],
            }
            t0 = time.perf_counter()
            posted = await client.post(here, data=form)
            t1 = time.perf_counter()
            if posted.status_code != 303:
                raise SystemExit(f"answer refused: {posted.status_code}")
            if posted.headers["location"].endswith("/results"):
                cycles.append((t1 - t0, 0.0))
                break
            page = await client.get(here)
            cycles.append((t1 - t0, time.perf_counter() - t1))


async def over_http(
    owner: str, setup: Setup, people: list[UserAccount], seconds: float, concurrency: int
) -> None:
    """Serve the bench database (`owner`), sign `people` in, then let `concurrency` of them at
    a time take the test for `seconds`."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=owner)
    log_path = ROOT / "var" / "bench-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w")
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured window
        [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    clients: list[httpx.AsyncClient] = []
    try:
        await _wait_ready(url)
        for person in people:  # sign-ins (argon2) stay out of the measured window
            clients.append(await _signed_in(url, person))
        queue: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in clients:
            queue.put_nowait(client)
        cycles: list[tuple[float, float]] = []
        rng = np.random.default_rng(2)
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(_take_tests(setup, queue, deadline, cycles, rng) for _ in range(concurrency))
        )
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            await client.aclose()
        server.terminate()
        server.wait(timeout=30)
        log.close()
    posts = [c[0] * 1000 for c in cycles]
    gets = [c[1] * 1000 for c in cycles if c[1]]
    print(
        f"\nOver HTTP ({concurrency} concurrent participants, 1 server worker, {elapsed:.0f} s): "
        f"{len(cycles)} answers, {len(cycles) / elapsed:.1f} answer cycles/s "
        "(POST the answer + GET the next challenge)"
    )
    for label, values in (("POST answer", posts), ("GET next page", gets)):
        if values:
            p50, p99 = statistics.median(values), _percentile(values, 0.99)
            print(f"  {label:<13} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")


async def main_async(args: argparse.Namespace) -> None:
    quick = args.quick
    settings = load_settings()
    workers = [url for url in os.environ.get("JALON_CITUS_WORKERS", "").split(",") if url]
    async with scratch_database(settings, BENCH_DATABASE, workers) as owner:
        database.configure(database.runtime_url(settings, owner), pool_size=5)
        await database.start_pool()
        jobs.configure_queue(None)
        tests = 10 if quick else 40
        setup, people = await _setup(tests + (20 if quick else 50))
        timings = await in_process(setup, people[:tests])
        ms = [t * 1000 for t in timings]
        print(
            f"In-process answer → next challenge ({tests} whole tests, {len(ms)} answers, "
            f"demo bank of {len(setup.bank.challenges)} challenges, one transaction each):"
        )
        print(f"  p50 {statistics.median(ms):6.2f} ms   p99 {_percentile(ms, 0.99):6.2f} ms")
        await export_figures(owner, setup, 10_000 if quick else 100_000)
        await database.close_pool()
        await over_http(owner, setup, people[tests:], 10 if quick else 20, concurrency=4)


if __name__ == "__main__":
    run(main_async, __doc__, "fewer tests, a shorter window")
