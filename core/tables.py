"""Piccolo tables of core's background tasks (`core.tasks`). The schema itself is the SQL of
the migration that created them (`tenants/piccolo_migrations/`, whose tables they reference);
these classes mirror it for queries. The mail outbox's table stands in `core.mail`.

Tenant-owned (row-level security on `tenant_id`): Task, TaskFile.
"""

from piccolo.columns import JSONB, UUID, BigInt, Bytea, Integer, Text, Timestamptz
from piccolo.table import Table

from core.database import DB


class Task(Table, tablename="task", db=DB):
    """A background task (an export, an import) and its progress (`core.tasks`)."""

    id = UUID(primary_key=True)
    tenant_id = UUID()
    kind = Text()
    status = Text(default="queued")
    done = Integer(default=0)
    total = Integer(null=True, default=None)
    message = Text(default="")
    message_params = JSONB(default={})
    file_name = Text(null=True, default=None)
    content_type = Text(null=True, default=None)
    file_size = BigInt(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz()
    started_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz()
    purged_at = Timestamptz(null=True, default=None)


class TaskFile(Table, tablename="task_file", db=DB):
    """A part (at most 1 MiB) of a task's input or result file, unique by
    (tenant_id, task_id, role, part)."""

    id = UUID(primary_key=True)
    tenant_id = UUID()
    task_id = UUID()
    role = Text()
    part = Integer()
    data = Bytea()
