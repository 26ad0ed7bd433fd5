"""Background jobs of the campaigns package: writing a large learner import (ADR 0011).

The job is a task of `core.tasks`, started by `tenants.tasks.start_task`: the uploaded file is
the task's input, its progress is shown at `/o/{slug}/tasks/{id}`, and it runs as the person
who started it, with their permissions as they are when it runs.
"""

from __future__ import annotations

from campaigns import learner_import
from core.tasks import TaskRun, read_input, task_job
from tenants.context import TenantContext
from tenants.tasks import starter_context


@task_job(acting_as=starter_context)
async def import_learners_file(run: TaskRun[TenantContext], filename: str) -> None:
    """Write the learners of the task's file, all in one transaction, reporting progress
    after each batch. Run twice, it finds them written and changes nothing more."""
    data = await read_input(run.tenant_id, run.task_id)
    result = await learner_import.write_import(run.ctx, data, filename, run.progress)
    await learner_import.describe_task(run.ctx, run.task_id, result)
