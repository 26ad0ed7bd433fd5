"""`make load`: seed the demo, serve Jalon on 127.0.0.1, run Locust headless, print figures.

Options come from the environment: LOAD_USERS (default 30), LOAD_SPAWN_RATE (10/s),
LOAD_DURATION (default 30s), LOAD_WORKERS (uvicorn workers, default 1). The database is
`DATABASE_URL` when set, the embedded server otherwise.
"""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JALON = [sys.executable, "-m", "api.cli"]
OUT = ROOT / "var" / "load"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server at {url} did not become ready")


def _token() -> str:
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
    )
    token: str = json.loads(created.stdout.strip().splitlines()[-1])["token"]
    return token


def _print_stats(prefix: Path) -> None:
    with open(f"{prefix}_stats.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    print()
    print(
        f"{'endpoint':<34} {'requests':>9} {'fails':>6} {'req/s':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    for row in rows:
        name = row["Name"] if row["Name"] != "Aggregated" else "ALL"
        method = row["Type"] + " " if row["Type"] and not name.startswith("POST") else ""
        print(
            f"{(method + name)[:34]:<34} {row['Request Count']:>9} {row['Failure Count']:>6} "
            f"{float(row['Requests/s']):>7.1f} {row['50%']:>7} {row['95%']:>7} {row['99%']:>7}"
        )


def main() -> None:
    users = os.environ.get("LOAD_USERS", "30")
    rate = os.environ.get("LOAD_SPAWN_RATE", "10")
    duration = os.environ.get("LOAD_DURATION", "30s")
    workers = os.environ.get("LOAD_WORKERS", "1")
    env = dict(os.environ)
    subprocess.run([*JALON, "migrate"], check=True, cwd=ROOT, env=env)
    demo = subprocess.run(
        [*JALON, "demo"], check=True, cwd=ROOT, env=env, capture_output=True, text=True
    )
    # the first demo campaign (Atelier Numérique's) is the participants' campaign
    codes = re.findall(r"/c/([A-Z0-9]+)", demo.stdout + demo.stderr)
    if not codes:
        raise SystemExit("jalon demo printed no campaign link")
    env["JALON_LOAD_CAMPAIGN"] = codes[0]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*JALON, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", workers],
        cwd=ROOT,
        env=env,
    )
    try:
        _wait_ready(url)
        env["JALON_LOAD_TOKEN"] = _token()
        OUT.mkdir(parents=True, exist_ok=True)
        prefix = OUT / "jalon"
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
                users,
                "-r",
                rate,
                "-t",
                duration,
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            check=False,
            cwd=ROOT,
            env=env,
        )
        print(
            f"\nLocust: {users} users, spawn {rate}/s, {duration}, {workers} server worker(s), "
            f"on {os.cpu_count()} cores"
        )
        _print_stats(prefix)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
