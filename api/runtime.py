"""Process start-up shared by the CLI commands: connect the database, jobs and mail."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import TypeVar

from core import database, jobs
from core.jobs import InProcessQueue
from core.mail import configure_mailer
from core.settings import Settings, get_settings

T = TypeVar("T")

#: Every module that registers jobs; the worker and the in-process queue need them imported.
JOB_MODULES = (
    "core.mail",
    "tenants.tasks",
    "campaigns.exports",
    "campaigns.learner_import",
    "campaigns.exposure",
    "campaigns.invitations",
    "campaigns.calibration_runs",
    "tenants.webhooks.delivery",
    "billing.inbox",
    "billing.jobs",
    "billing.renewals",
)
#: Every module that registers webhook events (`tenants.webhooks.events`): the endpoint form,
#: the API and the worker list or check them by name, so every process needs them imported.
WEBHOOK_EVENT_MODULES = ("campaigns.events",)


def import_jobs() -> None:
    """Import every module that registers jobs or webhook events, as each process needs
    before it enqueues, runs, lists or checks one by name."""
    import importlib

    for module in (*JOB_MODULES, *WEBHOOK_EVENT_MODULES):
        importlib.import_module(module)


#: A young collection every this many allocations not freed (Python's default is 700).
YOUNG_COLLECTION_THRESHOLD = 10_000


def settle_for_serving() -> None:
    """Keep the garbage collector from stopping a web worker's requests (ADR 0023, addendum 4).

    What start-up built (the application, its routes and templates, the question bank: about
    220,000 objects) lives as long as the process, yet every full collection walked it all:
    130–190 ms with every request of the worker waiting, five times in a 20-second bench
    window. It is frozen out of the collector's reach once loaded, and young collections run
    every 10,000 allocations rather than 700, as a request allocates and frees thousands.
    """
    from campaigns.content import current_bank

    current_bank()  # loaded now rather than by the first participant
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def connect(settings: Settings) -> None:
    """Point the engine at the runtime role (starting the embedded server if needed).

    With `JALON_RUNTIME_DATABASE_URL` set, the owner's server is not needed at all.
    """
    if settings.runtime_database_url:
        database.configure(settings.runtime_database_url, settings.db_pool_size)
        return
    owner = database.owner_url(settings)
    database.configure(database.runtime_url(settings, owner), settings.db_pool_size)


def run(work: Callable[[], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run `work` with the database, job queue and mailer ready; wait for in-process jobs."""
    settings = settings or get_settings()
    import_jobs()

    async def main() -> T:
        connect(settings)
        await database.start_pool()
        queue = jobs.configure_queue(settings.redis_url)
        configure_mailer(settings.smtp_url, settings.mail_from)
        try:
            result = await work()
            if isinstance(queue, InProcessQueue):
                await queue.drain()
            return result
        finally:
            await queue.close()
            await database.close_pool()

    return asyncio.run(main())
