"""A job for the fault tests, and an arq worker to run it in a subprocess that a test can kill:
`python -m tests.core.fault_jobs RUNTIME_DATABASE_URL REDIS_URL`.

The job's effect (a file created at most once, `O_EXCL`) is idempotent, as every job's must
be; its first try then hangs, so that a test kills the worker in the middle of it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from core.jobs import job

#: The worker's job timeout: arq runs a killed worker's job again once its in-progress mark,
#: set for the timeout plus 10 s, expires.
JOB_TIMEOUT_SECONDS = 8


@job
async def fault_effect_for_test(ctx: dict[str, Any], directory: str, key: str) -> None:
    where = Path(directory)
    with (where / "log").open("a") as log:
        log.write(f"start {ctx.get('job_try')}\n")
    try:
        fd = os.open(where / f"effect-{key}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        pass  # done by an earlier try: the effect happens once
    else:
        os.close(fd)
        with (where / "log").open("a") as log:
            log.write("effect\n")
    if int(ctx.get("job_try", 1)) == 1:
        await asyncio.sleep(3600)  # killed here


def main(runtime_url: str, redis_url: str) -> None:
    from arq.connections import RedisSettings
    from arq.worker import run_worker

    from core import database, jobs

    database.configure(runtime_url, pool_size=2)

    async def startup(ctx: dict[str, Any]) -> None:
        await database.start_pool()

    async def shutdown(ctx: dict[str, Any]) -> None:
        await database.close_pool()

    class Settings(jobs.WorkerSettings):
        functions = jobs.worker_functions()
        redis_settings = RedisSettings.from_dsn(redis_url)
        on_startup = startup
        on_shutdown = shutdown
        job_timeout = JOB_TIMEOUT_SECONDS
        poll_delay = 0.2

    run_worker(Settings)  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
