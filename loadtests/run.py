"""`make load`: the peak. Seed the demo in a database of its own, serve Jalon on 127.0.0.1
with a job worker, run Locust headless, then print the figures that say whether Jalon held:

- the requests, and how many failed (the target is zero);
- the answers participants had accepted, against the rows stored in the database (zero lost);
- the resident memory of every process (server workers, job worker, PostgreSQL backends of
  the load's database, Redis), sampled through the run: after warm-up it must stay flat.

Options come from the environment: LOAD_MINUTES (10), LOAD_PARTICIPANTS (300), LOAD_CONSOLE
(15), LOAD_API (5), LOAD_VISITORS (5), LOAD_SPAWN_RATE (2 users/s: a class comes in over a
few minutes), LOAD_WORKERS (`jalon serve` workers, 2), LOAD_WARMUP_SECONDS (until every user has
arrived plus a minute, or a quarter of the run if longer), LOAD_SAMPLE_SECONDS (30),
LOAD_THINK_MIN/MAX (2–6 s between a participant's requests), LOAD_FLAT_PERCENT (10) and
LOAD_FLAT_MIB (10): a process that grew less than either after warm-up is flat (Redis holds
the sessions of every new participant, a little more each minute, by design); LOAD_REDIS_DB
(13: the Redis database the run uses, emptied first). The database is a fresh `jalon_load` on
the server of `DATABASE_URL` when set, else the embedded server in var/load/data. The exit
status is 1 when a request failed, an answer was lost or a process grew.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
JALON = [sys.executable, "-m", "api.cli"]
OUT = ROOT / "var" / "load"
LOAD_DATABASE = "jalon_load"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}) before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server at {url} did not become ready")


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _with_redis_db(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, parts.fragment))


async def _fresh_database(server_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {LOAD_DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {LOAD_DATABASE}")
    finally:
        await conn.close()


def _prepare(env: dict[str, str]) -> str:
    """Point `env` at a fresh database and Redis database; return the owner URL."""
    env.setdefault("JALON_ENV", "development")
    if env.get("DATABASE_URL"):
        asyncio.run(_fresh_database(env["DATABASE_URL"]))
        env["DATABASE_URL"] = _with_database(env["DATABASE_URL"], LOAD_DATABASE)
        owner = env["DATABASE_URL"]
    else:
        env["JALON_DATA_DIR"] = str(OUT / "data")
        code = "from core.database import owner_url; from core.settings import load_settings; "
        code += "print(owner_url(load_settings()))"
        found = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True
        )
        owner = found.stdout.decode().strip().splitlines()[-1]
    if env.get("REDIS_URL"):
        env["REDIS_URL"] = _with_redis_db(env["REDIS_URL"], _env_int("LOAD_REDIS_DB", 13))
        from redis import Redis

        client = Redis.from_url(env["REDIS_URL"])
        client.flushdb()
        client.close()
    return owner


def _token(env: dict[str, str]) -> str:
    created = subprocess.run(
        [
            *JALON,
            "token",
            "create",
            "--tenant",
            "atelier-numerique",
            "--name",
            "load test",
            "--scope",
            "org:organization:read",
            "--scope",
            "org:members:read",
            "--expires-in-days",
            "1",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    token: str = json.loads(created.stdout.strip().splitlines()[-1])["token"]
    return token


# --- memory -----------------------------------------------------------------------------


def _rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of `pid` in KiB, from /proc (readable for other users' processes)."""
    rss = anon = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
    except OSError:
        pass
    return rss, anon


def _children(pid: int) -> list[int]:
    """The descendants of `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # the command name, in brackets, may hold spaces: the fields follow its last bracket
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent:
                found.append(child)
                frontier.append(child)
    return found


async def _backend_pids(owner: str) -> list[int]:
    import asyncpg

    conn = await asyncpg.connect(owner)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


def _redis_rss_kib(url: str | None) -> int | None:
    if not url:
        return None
    from redis import Redis

    client = Redis.from_url(url)
    try:
        info: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
        return int(info["used_memory_rss"]) // 1024
    finally:
        client.close()


@dataclass
class Sample:
    at: float
    #: process label -> (RSS KiB, anonymous RSS KiB)
    processes: dict[str, tuple[int, int]]
    #: connections to the load's database (the backends summed under "postgres backends")
    backends: int = 0


@dataclass
class MemoryProbe:
    """Samples every process's memory on a thread of its own until stopped."""

    owner: str
    server_pid: int
    worker_pid: int | None
    redis_url: str | None
    every: float
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> Sample:
        processes: dict[str, tuple[int, int]] = {}
        processes["server (master)"] = _rss_kib(self.server_pid)
        workers = [pid for pid in _children(self.server_pid) if _is_python(pid)]
        for number, pid in enumerate(sorted(workers), 1):
            processes[f"server worker {number}"] = _rss_kib(pid)
        if self.worker_pid is not None:
            processes["job worker"] = _rss_kib(self.worker_pid)
        backends = asyncio.run(_backend_pids(self.owner))
        sums = [_rss_kib(pid) for pid in backends]
        processes["postgres backends"] = (
            sum(rss for rss, _ in sums),
            sum(anon for _, anon in sums),
        )
        redis = _redis_rss_kib(self.redis_url)
        if redis is not None:
            processes["redis (whole server)"] = (redis, 0)
        found = Sample(time.monotonic() - self.started, processes, len(backends))
        self.samples.append(found)
        return found

    def run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sample()
            except Exception as error:  # a probe hiccup must not end the run
                print(f"memory sample failed: {error}", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()


def _is_python(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read()
    except OSError:
        return False
    # the server's spawned workers; not multiprocessing's resource tracker
    return b"python" in command and b"resource_tracker" not in command


def _print_memory(
    samples: list[Sample], warmup: float, flat_percent: float, flat_mib: float
) -> bool:
    """The memory series, and whether every process stayed flat after warm-up."""
    families: list[str] = []
    for found in samples:
        for label in found.processes:
            if label not in families:
                families.append(label)
    print(f"\nResident memory (MiB; anonymous in brackets), warm-up ends at {warmup:.0f} s:")
    header = f"{'t (s)':>6}  " + "  ".join(f"{name[:22]:>22}" for name in families)
    header += f"  {'pg conns':>8}"
    print(header)
    series: dict[str, list[tuple[float, int]]] = {name: [] for name in families}
    for found in samples:
        cells = []
        by_family = found.processes
        for name in families:
            rss, anon = by_family.get(name, (0, 0))
            cells.append(f"{rss / 1024:>12.1f} [{anon / 1024:>7.1f}]")
            if found.at >= warmup and name in by_family:
                # PostgreSQL backends and Redis share memory pages: their anonymous RSS is
                # their own, the rest is mostly the shared buffers they have touched
                own = anon if anon and not name.startswith("redis") else rss
                if name == "postgres backends" and found.backends:
                    # the pools open connections as the load needs them: judged per connection
                    own //= found.backends
                series[name].append((found.at, own))
        marker = "*" if found.at < warmup else " "
        print(f"{found.at:>5.0f}{marker}  " + "  ".join(cells) + f"  {found.backends:>8}")
    print("  (* during warm-up)")
    flat = True
    print(
        f"\nAfter warm-up (flat: grew less than {flat_percent:.0f}% or {flat_mib:.0f} MiB "
        "from first to last sample):"
    )
    for name in families:
        points = series[name]
        if len(points) < 2:
            print(f"  {name:<28} too few samples after warm-up")
            flat = False
            continue
        first, last = points[0][1], points[-1][1]
        low, high = min(v for _, v in points), max(v for _, v in points)
        growth = (last - first) / first * 100 if first else 0.0
        minutes = (points[-1][0] - points[0][0]) / 60 or 1.0
        steady = growth < flat_percent or (last - first) / 1024 < flat_mib
        verdict = "flat" if steady else "GREW"
        flat = flat and steady
        label = name + (" (each)" if name == "postgres backends" else "")
        print(
            f"  {label:<28} first {first / 1024:7.1f}  last {last / 1024:7.1f}  "
            f"min {low / 1024:7.1f}  max {high / 1024:7.1f} MiB  "
            f"{growth:+6.1f}%  ({(last - first) / 1024 / minutes:+.2f} MiB/min)  {verdict}"
        )
    return flat


# --- answers ------------------------------------------------------------------------------


async def _stored_answers(owner: str, participations: list[str]) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(owner)
    try:
        rows = await conn.fetch(
            "SELECT participation_id::text AS id, count(*) AS n FROM answer "
            "WHERE participation_id = ANY($1::uuid[]) GROUP BY participation_id",
            participations,
        )
    finally:
        await conn.close()
    return {row["id"]: int(row["n"]) for row in rows}


def _print_answers(owner: str, report_path: Path) -> bool:
    report = json.loads(report_path.read_text(encoding="utf-8"))
    posted: dict[str, int] = report["answers"]
    stored = asyncio.run(_stored_answers(owner, list(posted)))
    lost = sum(max(count - stored.get(pid, 0), 0) for pid, count in posted.items())
    extra = sum(max(stored.get(pid, 0) - count, 0) for pid, count in posted.items())
    print(
        f"\nAnswers: {sum(posted.values())} accepted by the server (303) in "
        f"{len(posted)} participations, {len(report['completed'])} tests completed; "
        f"{sum(stored.values())} rows stored for them; lost: {lost}; stored but not seen "
        f"accepted by the client: {extra}"
    )
    return lost == 0


# --- requests -----------------------------------------------------------------------------


def _print_stats(prefix: Path) -> int:
    """The Locust table; returns the number of failed requests."""
    with open(f"{prefix}_stats.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    print()
    print(
        f"{'endpoint':<38} {'requests':>9} {'fails':>6} {'req/s':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    failed = 0
    for row in rows:
        name = row["Name"] if row["Name"] != "Aggregated" else "ALL"
        method = row["Type"] + " " if row["Type"] and not name.startswith("POST") else ""
        if name == "ALL":
            failed = int(row["Failure Count"])
        print(
            f"{(method + name)[:38]:<38} {row['Request Count']:>9} {row['Failure Count']:>6} "
            f"{float(row['Requests/s']):>7.1f} {row['50%']:>7} {row['95%']:>7} {row['99%']:>7}"
        )
    failures = Path(f"{prefix}_failures.csv")
    if failures.exists():
        with open(failures, encoding="utf-8") as handle:
            for row in list(csv.DictReader(handle))[:10]:
                print(f"  failed {row['Occurrences']}×  {row['Name']}: {row['Error'][:120]}")
    return failed


def _print_metrics(url: str) -> None:
    """The server's own view, from /metrics (loopback): the answer cycle and the pool."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError as error:
        print(f"\n/metrics unavailable: {error}")
        return
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("jalon_answer_cycle_duration_seconds_", "jalon_db_pool")):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    count = values.get("jalon_answer_cycle_duration_seconds_count", 0.0)
    total = values.get("jalon_answer_cycle_duration_seconds_sum", 0.0)
    mean = total / count * 1000 if count else 0.0
    print(
        f"\n/metrics: {count:.0f} answer cycles, mean {mean:.1f} ms in the server; pool "
        f"{values.get('jalon_db_pool_connections', 0):.0f} open, "
        f"{values.get('jalon_db_pool_idle_connections', 0):.0f} idle, "
        f"max {values.get('jalon_db_pool_max_connections', 0):.0f}"
    )


def main() -> None:
    minutes = float(os.environ.get("LOAD_MINUTES", "10"))
    seconds = int(minutes * 60)
    participants = _env_int("LOAD_PARTICIPANTS", 300)
    users = (
        participants
        + _env_int("LOAD_CONSOLE", 15)
        + _env_int("LOAD_API", 5)
        + _env_int("LOAD_VISITORS", 5)
    )
    rate = os.environ.get("LOAD_SPAWN_RATE", "2")
    workers = os.environ.get("LOAD_WORKERS", "2")
    arrived = users / float(rate) + 60
    warmup = float(os.environ.get("LOAD_WARMUP_SECONDS", str(max(arrived, seconds / 4))))
    every = float(os.environ.get("LOAD_SAMPLE_SECONDS", "30"))
    flat_percent = float(os.environ.get("LOAD_FLAT_PERCENT", "10"))
    flat_mib = float(os.environ.get("LOAD_FLAT_MIB", "10"))
    env = dict(os.environ)
    env["LOAD_PARTICIPANTS"] = str(participants)
    owner = _prepare(env)
    migrated = subprocess.run([*JALON, "migrate"], cwd=ROOT, env=env, capture_output=True)
    if migrated.returncode != 0:
        sys.stderr.buffer.write(migrated.stdout + migrated.stderr)
        raise SystemExit("jalon migrate failed")
    demo = subprocess.run(
        [*JALON, "demo"], check=True, cwd=ROOT, env=env, capture_output=True, text=True
    )
    # the first demo campaign (Atelier Numérique's) is the participants' campaign
    codes = re.findall(r"/c/([A-Z0-9]+)", demo.stdout + demo.stderr)
    if not codes:
        raise SystemExit("jalon demo printed no campaign link")
    env["JALON_LOAD_CAMPAIGN"] = codes[0]
    env["JALON_LOG_FORMAT"] = env.get("JALON_LOG_FORMAT", "json")
    env.pop("JALON_METRICS_TOKEN", None)  # /metrics read from loopback at the end
    OUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = open(OUT / "server.log", "wb")  # noqa: SIM115  # closed in finally
    server = subprocess.Popen(
        [*JALON, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", workers],
        cwd=ROOT,
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    worker: subprocess.Popen[bytes] | None = None
    probe: MemoryProbe | None = None
    try:
        if env.get("REDIS_URL"):
            worker = subprocess.Popen(
                [*JALON, "worker"], cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT
            )
        _wait_ready(url, server)
        env["JALON_LOAD_TOKEN"] = _token(env)
        prefix = OUT / "jalon"
        report = OUT / "answers.json"
        report.unlink(missing_ok=True)
        env["LOAD_REPORT"] = str(report)
        probe = MemoryProbe(
            owner, server.pid, worker.pid if worker else None, env.get("REDIS_URL"), every
        )
        sampler = threading.Thread(target=probe.run, daemon=True)
        sampler.start()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "loadtests" / "locustfile.py"),
                "--headless",
                "--host",
                url,
                "-u",
                str(users),
                "-r",
                rate,
                "-t",
                f"{seconds}s",
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--stop-timeout",
                "10",
            ],
            check=False,
            cwd=ROOT,
            env=env,
        )
        probe.stop()
        probe.sample()  # the end of the run
        print(
            f"\nLocust: {users} users ({participants} participants), spawn {rate}/s, "
            f"{seconds} s, {workers} server worker(s), "
            f"{'a job worker on Redis' if worker else 'jobs in-process'}, "
            f"on {os.cpu_count()} cores"
        )
        failed = _print_stats(prefix)
        print(f"\nFailed requests: {failed}")
        kept = _print_answers(owner, report)
        _print_metrics(url)
        flat = _print_memory(probe.samples, warmup, flat_percent, flat_mib)
        verdict = "HELD" if failed == 0 and kept and flat else "DID NOT HOLD"
        print(
            f"\nPeak {verdict}: {failed} failed requests, answers "
            f"{'all stored' if kept else 'LOST'}, memory {'flat' if flat else 'GREW'}"
        )
        if verdict != "HELD":
            raise SystemExit(1)
    finally:
        if probe is not None:
            probe.stop()
        for process in (worker, server):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        server_log.close()


if __name__ == "__main__":
    main()
