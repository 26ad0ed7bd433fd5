"""Background jobs of the campaigns package: writing a large learner import (ADR 0011).

The job is a task of `tenants.tasks`: the uploaded file is the task's input, its progress is
shown at `/o/{slug}/tasks/{id}`, and it runs as the person who started it, with their
permissions as they are when it runs.
"""

from __future__ import annotations

from uuid import UUID

from campaigns import learners
from core.i18n import N_
from tenants.context import TenantContext
from tenants.tasks import TaskRun, read_input, start_task, task_job

#: The task's kind, shown on its page.
LEARNER_IMPORT = N_("learners.import")


async def start_learner_import(ctx: TenantContext, data: bytes, filename: str, rows: int) -> UUID:
    """Queue the import of a checked file (in the caller's transaction: the job starts once
    it commits); the task's id."""
    return await start_task(
        ctx, LEARNER_IMPORT, "import_learners_file", [filename], input=data, total=rows
    )


@task_job
async def import_learners_file(run: TaskRun, filename: str) -> None:
    """Write the learners of the task's file, all in one transaction, reporting progress
    after each batch. Run twice, it finds them written and changes nothing more."""
    data = await read_input(run.tenant_id, run.task_id)
    result = await learners.write_import(run.ctx, data, filename, run.progress)
    await learners.describe_task(run.ctx, run.task_id, result)
