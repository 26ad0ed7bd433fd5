"""Background tasks (exports, imports) and the files they produce, stored in PostgreSQL.

`task` is one long piece of work started by a person, with its progress; `task_file` holds
its input and result as bytea parts of at most 1 MiB (ADR 0014), so that web and worker
processes on different machines share them without a shared disk.
"""

from core.schema import sql_migration, tenant_table

ID = "2026-12-01T10:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "background tasks and their files"

SQL = f"""
CREATE TABLE task (
    tenant_id uuid NOT NULL REFERENCES organization (id),
    id uuid NOT NULL,
    kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{{0,63}}$'),
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'failed')),
    done integer NOT NULL DEFAULT 0 CHECK (done >= 0),
    total integer CHECK (total >= 0),
    message text NOT NULL DEFAULT '',
    message_params jsonb NOT NULL DEFAULT '{{}}',
    file_name text CHECK (length(file_name) BETWEEN 1 AND 200),
    content_type text,
    file_size bigint,
    created_by uuid REFERENCES user_account (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    expires_at timestamptz NOT NULL,
    purged_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX task_recent ON task (tenant_id, created_at DESC, id DESC);
CREATE INDEX task_expiry ON task (tenant_id, expires_at) WHERE purged_at IS NULL;
{tenant_table("task")}

CREATE TABLE task_file (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    task_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('input', 'result')),
    part integer NOT NULL CHECK (part >= 0),
    data bytea NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, task_id, role, part),
    FOREIGN KEY (tenant_id, task_id) REFERENCES task (tenant_id, id) ON DELETE CASCADE
);
{tenant_table("task_file", "SELECT, INSERT, DELETE")}
"""


forwards = sql_migration(ID, "tenants", DESCRIPTION, SQL)
