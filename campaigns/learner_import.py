"""Importing a learners file into the organization: all or nothing (ADR 0011).

`import_learners` reads the file (`campaigns.learner_csv`), then checks its rows against the
organization's learners (an email and an external id naming two different learners, say)
and, only when no row is bad, upserts them in bulk in one transaction: a row matches the
learner with the same email (case-insensitive), else the one with the same external id,
else it creates one. Large files (more than `SYNC_MAX_ROWS` rows) are checked just the same,
then written by the `import_learners_file` job, registered here, through `write_import`, in
batches, with progress: a task of `core.tasks` started by `tenants.tasks.start_task`, whose
input is the uploaded file, whose progress shows at `/o/{slug}/tasks/{id}`, and which runs as
the person who started it, with their permissions as they are when it runs.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID, uuid4

from campaigns.learner_csv import ParsedFile, parse_learner_csv
from campaigns.learner_rows import EXTERNAL_ID, CheckedRow, RowProblem
from campaigns.learners import require_learners_importer
from core.database import execute, fetch, tenant_transaction
from core.errors import Invalid
from core.i18n import N_
from core.tasks import TaskRun, read_input, task_job
from tenants import audit
from tenants.context import TenantContext
from tenants.tasks import start_task, starter_context

#: The kind of the task that writes a large import, shown on its page.
LEARNER_IMPORT = N_("learners.import")
#: Files with more rows are written by a background job, with progress.
SYNC_MAX_ROWS = 2_000
#: Rows written per statement (and per transaction in the job).
BATCH_SIZE = 1_000
#: The most parameters PostgreSQL binds to one statement: a batch of new learners stays under.
MAX_PARAMETERS = 32_767
#: The uploaded file's name is kept (audit log, task) up to this length.
FILENAME_MAX_LENGTH = 200
#: The name kept for a file whose name has nothing else than control characters.
DEFAULT_FILENAME = "learners.csv"
#: Joins a learner's groups in one text value for `unnest` (never inside a group: a control
#: character, refused in group names).
_UNIT = "\x1f"

#: Reasons a row is refused once compared with the stored learners (msgids, translated where
#: the report is shown).
REASONS = (
    N_("This external id belongs to another learner than this email address."),
    N_("This row names the same learner as line {line}."),
)

IMPORTED_MESSAGE = "Import done: {created} created, {updated} updated, {unchanged} unchanged."

#: Told (rows written, rows to write) after each batch.
Progress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class ImportResult:
    """What an import did, or would do. With problems, nothing was written. `task_id` names
    the background task writing a large file."""

    rows: int
    problems: tuple[RowProblem, ...] = ()
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    encoding: str = "utf-8"
    ignored_columns: tuple[str, ...] = ()
    dry_run: bool = False
    task_id: UUID | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def clean_filename(name: str) -> str:
    """The uploaded file's name as the import keeps it (in its audit event and its task):
    without control or format characters (jsonb refuses a NUL), without surrounding spaces, at
    most `FILENAME_MAX_LENGTH` characters, `DEFAULT_FILENAME` when nothing is left."""
    kept = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return kept.strip()[:FILENAME_MAX_LENGTH].strip() or DEFAULT_FILENAME


# --- comparing with stored learners -------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    id: UUID
    name: str
    email: str | None
    external_id: str | None
    groups: tuple[str, ...]


@dataclass
class _Plan:
    creates: list[tuple[UUID, CheckedRow]] = field(default_factory=list)
    updates: list[tuple[UUID, CheckedRow]] = field(default_factory=list)
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """What the plan does, as the result and the audit event say it."""
        return {
            "created": len(self.creates),
            "updated": len(self.updates),
            "unchanged": self.unchanged,
        }


async def _lock_imports(ctx: TenantContext) -> None:
    # One import at a time per organization: two concurrent files with the same new email
    # would otherwise both create it (the email is not a unique key, ADR 0011).
    await execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('learner-import:' || $1::text, 0))",
        str(ctx.tenant_id),
    )


async def _stored_matches(ctx: TenantContext, rows: Sequence[CheckedRow]) -> list[_Stored]:
    emails = sorted({row.email.lower() for row in rows if row.email})
    externals = sorted({row.external_id for row in rows if row.external_id})
    found = await fetch(
        """SELECT id, name, email, external_id, groups FROM learner
           WHERE tenant_id = $1 AND ((email IS NOT NULL AND lower(email) = ANY($2::text[]))
               OR (external_id IS NOT NULL AND external_id = ANY($3::text[])))
           ORDER BY user_id IS NULL, created_at, id""",
        ctx.tenant_id,
        emails,
        externals,
    )
    return [
        _Stored(r["id"], r["name"], r["email"], r["external_id"], tuple(r["groups"])) for r in found
    ]


def _changes(stored: _Stored, row: CheckedRow) -> bool:
    return (
        stored.name != row.name
        or (row.email is not None and row.email.lower() != (stored.email or "").lower())
        or (row.external_id is not None and stored.external_id != row.external_id)
        or (row.groups is not None and stored.groups != row.groups)
    )


def _plan(parsed: ParsedFile, stored: Sequence[_Stored]) -> _Plan:
    """What each row does to the stored learners: create, update, or nothing. A row whose
    email and external id name two different learners, or two rows naming the same learner,
    are problems."""
    by_email: dict[str, _Stored] = {}
    by_external: dict[str, _Stored] = {}
    for learner in stored:  # the first wins: linked to an account first, then the oldest
        if learner.email:
            by_email.setdefault(learner.email.lower(), learner)
        if learner.external_id:
            by_external.setdefault(learner.external_id, learner)
    plan = _Plan()
    claimed: dict[UUID, int] = {}
    for row in parsed.rows:
        match_email = by_email.get(row.email.lower()) if row.email else None
        match_external = by_external.get(row.external_id) if row.external_id else None
        if match_email and match_external and match_email.id != match_external.id:
            plan.problems.append(
                parsed.header.problem(
                    row.line,
                    EXTERNAL_ID,
                    row.external_id or "",
                    "This external id belongs to another learner than this email address.",
                )
            )
            continue
        target = match_email or match_external
        if target is None:
            plan.creates.append((uuid4(), row))
            continue
        first = claimed.setdefault(target.id, row.line)
        if first != row.line:
            plan.problems.append(
                parsed.header.problem(
                    row.line, "", "", "This row names the same learner as line {line}.", line=first
                )
            )
            continue
        if _changes(target, row):
            if row.email and row.email.lower() == (target.email or "").lower():
                row = replace(row, email=None)  # the same address in another case: kept
            plan.updates.append((target.id, row))
        else:
            plan.unchanged += 1
    return plan


async def _checked_plan(ctx: TenantContext, parsed: ParsedFile) -> _Plan:
    """The plan of `parsed` against the learners as they are now; call inside the tenant's
    transaction, which then holds the organization's import lock until it ends."""
    await _lock_imports(ctx)
    return _plan(parsed, await _stored_matches(ctx, parsed.rows))


# --- writing -----------------------------------------------------------------------------

#: What one new learner binds after the tenant ($1): id, name, email, external id, groups.
_NEW_LEARNER_WIDTH = 5


def insert_sql(rows: int) -> str:
    """The statement that creates `rows` learners: a multi-row `VALUES` list, its parameters
    the tenant ($1) then each learner's id, name, email, external id and groups (a text
    array). Not `INSERT … SELECT FROM unnest(…)`: Citus runs that as a COPY, which row-level
    security refuses (ADR 0002)."""
    if not 1 <= rows <= (MAX_PARAMETERS - 1) // _NEW_LEARNER_WIDTH:
        raise ValueError(f"cannot insert {rows} learners in one statement")
    width = _NEW_LEARNER_WIDTH
    values = ",\n".join(
        "($1, " + ", ".join(f"${2 + i * width + k}" for k in range(width)) + "::text[])"
        for i in range(rows)
    )
    return f"INSERT INTO learner (tenant_id, id, name, email, external_id, groups)\nVALUES {values}"


def _new_learners(pairs: Sequence[tuple[UUID, CheckedRow]]) -> list[Any]:
    """The parameters of `insert_sql(len(pairs))` after the tenant, row after row."""
    return [
        value
        for ident, row in pairs
        for value in (ident, row.name, row.email, row.external_id, list(row.groups or ()))
    ]


# An UPDATE joined to unnest(…) is no COPY: Citus routes it to the tenant's shard like any
# update filtered on l.tenant_id = $1. The time of the update is the transaction's (now(),
# outside any CASE or COALESCE, which Citus evaluates once on the coordinator).
_UPDATE = """
UPDATE learner l SET name = u.name, email = coalesce(u.email, l.email),
    external_id = coalesce(u.external_id, l.external_id),
    groups = coalesce(string_to_array(u.groups, chr(31)), l.groups), updated_at = now()
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
    AS u(id, name, email, external_id, groups)
WHERE l.tenant_id = $1 AND l.id = u.id
"""


def _columns_of(pairs: Sequence[tuple[UUID, CheckedRow]]) -> list[list[Any]]:
    return [
        [ident for ident, _ in pairs],
        [row.name for _, row in pairs],
        [row.email for _, row in pairs],
        [row.external_id for _, row in pairs],
        [None if row.groups is None else _UNIT.join(row.groups) for _, row in pairs],
    ]


async def _write(ctx: TenantContext, plan: _Plan, progress: Progress | None = None) -> None:
    """One statement per batch of `BATCH_SIZE` rows, whatever the number of rows; `progress`
    hears (rows written, rows to write) after each batch."""
    total = len(plan.creates) + len(plan.updates)
    done = 0
    for creating, pairs in ((True, plan.creates), (False, plan.updates)):
        for start in range(0, len(pairs), BATCH_SIZE):
            batch = pairs[start : start + BATCH_SIZE]
            if creating:
                await execute(insert_sql(len(batch)), ctx.tenant_id, *_new_learners(batch))
            else:
                await execute(_UPDATE, ctx.tenant_id, *_columns_of(batch))
            done += len(batch)
            if progress is not None:
                await progress(done, total)


async def import_learners(
    ctx: TenantContext, data: bytes, *, filename: str = "", dry_run: bool = False
) -> ImportResult:
    """Import a learners CSV file: everything or nothing.

    Every row is checked, in the file and against the organization's learners, before
    anything is written; with any problem the result lists them all and nothing changes.
    Otherwise the rows are upserted in one transaction and one `learners.imported` event is
    recorded, or, for a file of more than `SYNC_MAX_ROWS` rows, handed to a background task
    (`task_id`) that writes them in batches. `dry_run` checks and counts without writing.
    File-level faults raise `Invalid`. `filename` is kept as `clean_filename` makes it.
    """
    require_learners_importer(ctx)
    filename = clean_filename(filename)
    parsed = parse_learner_csv(data)
    total = len(parsed.rows) + len({p.line for p in parsed.problems})

    def result(**values: Any) -> ImportResult:
        return ImportResult(
            rows=total,
            encoding=parsed.encoding,
            ignored_columns=parsed.ignored_columns,
            dry_run=dry_run,
            **values,
        )

    async with tenant_transaction(ctx):
        plan = await _checked_plan(ctx, parsed)
        problems = tuple(sorted([*parsed.problems, *plan.problems], key=lambda p: p.line))
        if problems:
            return result(problems=problems)
        counts = plan.counts()
        if dry_run:
            return result(**counts)
        if len(parsed.rows) > SYNC_MAX_ROWS:
            task_id = await start_task(
                ctx,
                LEARNER_IMPORT,
                "import_learners_file",  # registered below; queued jobs know it by name
                [filename],
                input=data,
                total=len(parsed.rows),
            )
            return result(task_id=task_id, **counts)
        await _write(ctx, plan)
        await audit.record(
            ctx, "learners.imported", "learner", "", file=filename, rows=total, **counts
        )
    return result(**counts)


async def write_import(
    ctx: TenantContext, data: bytes, filename: str, progress: Progress
) -> ImportResult:
    """The background half of a large import: check the file again (the organization's
    learners may have changed since it was checked), then write it in one transaction,
    batch by batch, telling `progress`; one `learners.imported` event. A row that no longer
    fits fails the whole import with `Invalid`: nothing is written."""
    require_learners_importer(ctx)
    filename = clean_filename(filename)  # again: a job queued before names were cleaned
    parsed = parse_learner_csv(data)
    async with tenant_transaction(ctx):
        plan = await _checked_plan(ctx, parsed)
        problems = [*parsed.problems, *plan.problems]
        if problems:
            raise Invalid(
                "The organization’s learners changed since the file was checked; rows that no "
                "longer fit: {count}. Import the file again to see them.",
                count=len({p.line for p in problems}),
            )
        counts = plan.counts()
        await _write(ctx, plan, progress)
        await audit.record(
            ctx,
            "learners.imported",
            "learner",
            "",
            file=filename,
            rows=len(parsed.rows),
            **counts,
        )
    return ImportResult(
        rows=len(parsed.rows),
        created=len(plan.creates),
        updated=len(plan.updates),
        unchanged=plan.unchanged,
        encoding=parsed.encoding,
    )


async def describe_task(ctx: TenantContext, task_id: UUID, result: ImportResult) -> None:
    """Leave the import's outcome on its task, for the task's page."""
    async with tenant_transaction(ctx):
        await execute(
            """UPDATE task SET message = $3, message_params = $4::jsonb
               WHERE tenant_id = $1 AND id = $2""",
            ctx.tenant_id,
            task_id,
            IMPORTED_MESSAGE,
            json.dumps(
                {
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                }
            ),
        )


@task_job(acting_as=starter_context)
async def import_learners_file(run: TaskRun[TenantContext], filename: str) -> None:
    """Write the learners of the task's file, all in one transaction, reporting progress
    after each batch. Run twice, it finds them written and changes nothing more."""
    data = await read_input(run.tenant_id, run.task_id)
    result = await write_import(run.ctx, data, filename, run.progress)
    await describe_task(run.ctx, run.task_id, result)
