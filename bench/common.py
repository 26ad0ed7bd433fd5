"""What every benchmark of `make bench` does the same way: its command line, and a database of
its own, created and migrated before it runs and dropped after, whatever happens."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import asyncpg

from core import citus, database
from core.settings import Settings


def arguments(
    description: str | None,
    quick_help: str,
    add_arguments: Callable[[argparse.ArgumentParser], object] | None = None,
) -> argparse.Namespace:
    """The benchmark's command line, with `--quick` (also set by `JALON_BENCH_QUICK=1`).
    Options meant for another benchmark are ignored, as `make bench` passes the same
    `BENCH_ARGS` to each. Prints line by line even into a pipe."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=(description or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    if add_arguments is not None:
        add_arguments(parser)
    args, _ = parser.parse_known_args()
    args.quick = args.quick or os.environ.get("JALON_BENCH_QUICK") == "1"
    return args


def run(
    main_async: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
    description: str | None,
    quick_help: str,
    add_arguments: Callable[[argparse.ArgumentParser], object] | None = None,
) -> None:
    """`main_async` with the command line of `arguments()`."""
    asyncio.run(main_async(arguments(description, quick_help, add_arguments)))


async def _recreate(server_url: str, name: str, *, create: bool) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def scratch_database(
    settings: Settings, name: str, citus_workers: Sequence[str] = ()
) -> AsyncIterator[str]:
    """The database `name`, made afresh (spread over `citus_workers` when given) and migrated;
    yields its owner's URL. The pool is closed and the database dropped on the way out."""
    server_url = database.owner_url(settings)
    await _recreate(server_url, name, create=True)
    owner = database.with_database(server_url, name)
    try:
        if citus_workers:
            await citus.join_workers(owner, list(citus_workers))
            print(f"On Citus: a coordinator and {len(citus_workers)} workers")
        with contextlib.redirect_stdout(io.StringIO()):
            await database.migrate(
                owner, settings.runtime_role, settings.runtime_password, "api.piccolo_conf"
            )
        yield owner
    finally:
        with contextlib.suppress(Exception):
            await database.close_pool()
        await _recreate(server_url, name, create=False)
