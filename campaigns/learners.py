"""Learners: the people an organization assesses, and their import from a spreadsheet.

An import is all or nothing (ADR 0011). `parse_learner_csv` reads the file (UTF-8 with or
without BOM, UTF-16 with BOM, else Windows-1252 as French Excel writes it; `,`, `;` or tab;
headers in English or French) and checks every row; `import_learners` then checks the rows
against the organization's learners (an email and an external id naming two different
learners, say) and, only when no row is bad, upserts them in bulk in one transaction: a row
matches the learner with the same email (case-insensitive), else the one with the same
external id, else it creates one. Large files (more than `SYNC_MAX_ROWS` rows) are checked
just the same, then written by the `apply_learner_import` job in batches, with progress.

Every problem is reported with the line and column the spreadsheet shows, so that one report
lists everything to fix.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID, uuid4

from core import keyset
from core.database import contains_pattern, execute, fetch, tenant_transaction
from core.errors import Forbidden, Invalid
from core.i18n import N_
from core.validation import clean_text
from tenants import audit
from tenants.context import TenantContext
from tenants.permissions import Permission
from tenants.tasks import start_task

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
#: The kind of the task that writes a large import, shown on its page.
LEARNER_IMPORT = N_("learners.import")
#: Files with more rows are written by a background job, with progress.
SYNC_MAX_ROWS = 2_000
#: Rows written per statement (and per transaction in the job).
BATCH_SIZE = 1_000
MAX_GROUPS = 50
GROUP_MAX_LENGTH = 100
NAME_MAX_LENGTH = 200
EXTERNAL_ID_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254
PAGE_SIZE = 50

_EMAIL = re.compile(
    r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}
#: Groups inside one cell are separated by `|` or `,`.
_GROUP_SEPARATORS = re.compile(r"[|,]")
#: Joins a learner's groups in one text value for `unnest` (never inside a group: a control
#: character, refused in group names).
_UNIT = "\x1f"

# Column keys, and the headers (lower case, accents and punctuation removed) that name them.
NAME, FIRST_NAME, LAST_NAME, EMAIL, EXTERNAL_ID, GROUPS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "external_id",
    "groups",
)
HEADERS: dict[str, frozenset[str]] = {
    NAME: frozenset(
        {"name", "full name", "nom", "nom complet", "nom et prenom", "prenom et nom", "prenom nom"}
    ),
    FIRST_NAME: frozenset({"first name", "firstname", "given name", "prenom"}),
    LAST_NAME: frozenset({"last name", "lastname", "surname", "family name", "nom de famille"}),
    EMAIL: frozenset(
        {
            "email",
            "e mail",
            "mail",
            "courriel",
            "email address",
            "e mail address",
            "adresse email",
            "adresse e mail",
            "adresse mail",
            "adresse electronique",
            "adresse de courriel",
        }
    ),
    EXTERNAL_ID: frozenset(
        {
            "external id",
            "externalid",
            "identifiant externe",
            "id externe",
            "matricule",
            "numero de matricule",
            "employee id",
            "employee number",
        }
    ),
    GROUPS: frozenset({"groups", "group", "groupes", "groupe"}),
}

#: Reasons a row is refused (msgids, translated where the report is shown).
REASONS = (
    N_("The name is missing."),
    N_("This email address is not valid."),
    N_("Give an email address or an external id."),
    N_("This value contains characters that are not allowed."),
    N_("This value is too long ({max} characters at most)."),
    N_("This email address is already on line {line}."),
    N_("This external id is already on line {line}."),
    N_("A group name is too long ({max} characters at most)."),
    N_("Too many groups ({max} at most)."),
    N_("This row has more cells than the header."),
    N_("This external id belongs to another learner than this email address."),
    N_("This row names the same learner as line {line}."),
)


# --- what an import reads and reports ----------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """Why one cell (or row, when `column` is empty) is refused: `line` and `letter` as the
    spreadsheet shows them (the header is line 1), the header as written, the value, and the
    reason (a msgid with its parameters)."""

    line: int
    column: str
    letter: str
    value: str
    reason: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LearnerRow:
    """One checked row. `groups` is None when the file has no groups column (the learners'
    groups are then left as they are); an empty email or external id is None."""

    line: int
    name: str
    email: str | None
    external_id: str | None
    groups: tuple[str, ...] | None


@dataclass(frozen=True)
class ParsedFile:
    """A file read and checked row by row, before any comparison with stored learners:
    the rows without any problem, and the problems of the others."""

    rows: tuple[LearnerRow, ...]
    problems: tuple[RowProblem, ...]
    encoding: str
    delimiter: str
    #: the header as written, and the index in it of each column we read
    header: tuple[str, ...]
    columns: Mapping[str, int]
    ignored_columns: tuple[str, ...] = ()


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


# --- who may -----------------------------------------------------------------------------


def _require(ctx: TenantContext, permission: Permission) -> None:
    # Learners are people's personal data, read and changed by members in the console; API
    # tokens (no role) have no learner scope.
    if ctx.role is None:
        raise Forbidden()
    ctx.require(permission)


def require_learners_reader(ctx: TenantContext) -> None:
    """Every member of the organization reads its learners (`org:learners:read`)."""
    _require(ctx, Permission.LEARNERS_READ)


def require_learners_importer(ctx: TenantContext) -> None:
    """Owners and admins import learners (`org:learners:import`)."""
    _require(ctx, Permission.LEARNERS_IMPORT)


# --- reading the file --------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name) of an uploaded file; `Invalid` when it is not readable text."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise Invalid(
            "This is a spreadsheet workbook, not a CSV file. In your spreadsheet, choose "
            "“Save as” and the CSV UTF-8 format.",
            field="file",
        )
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            raise Invalid(
                "The file could not be read as text. Save it in the CSV UTF-8 format.",
                field="file",
            ) from None
    if b"\0" in data:
        raise Invalid(
            "This file is not a CSV text file. Save it in the CSV UTF-8 format.", field="file"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            pass
    else:
        try:
            return data.decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            pass
    try:
        # What Excel writes in France for "CSV (séparateur : point-virgule)". Five bytes have
        # no character in it: a file that holds them is neither UTF-8 nor Windows-1252.
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        raise Invalid(
            "The file’s encoding is not recognised. Save it in the CSV UTF-8 format.",
            field="file",
        ) from None


def _header_key(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).strip()


def _letter(index: int) -> str:
    """The spreadsheet's name of the column at `index` (0 → A, 26 → AA)."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _map_columns(header: Sequence[str]) -> tuple[dict[str, int], tuple[str, ...]]:
    """Column key → index in the header, and the headers that name nothing we know."""
    found: dict[str, int] = {}
    ignored: list[str] = []
    keys = [_header_key(cell) for cell in header]
    has_first_name = any(key in HEADERS[FIRST_NAME] for key in keys)
    for index, key in enumerate(keys):
        if not key:
            continue
        column = next((name for name, aliases in HEADERS.items() if key in aliases), None)
        if column == NAME and key == "nom" and has_first_name:
            column = LAST_NAME  # "Nom" beside "Prénom" is the family name
        if column is None:
            ignored.append(header[index].strip())
            continue
        if column in found:
            raise Invalid(
                "The column “{column}” appears twice in the header.",
                field="file",
                column=header[index].strip(),
            )
        found[column] = index
    if NAME not in found and FIRST_NAME not in found:
        raise Invalid(
            "The file has no name column. The first line must name the columns, e.g. "
            "name, email, external_id, groups (or nom, email, matricule, groupes).",
            field="file",
        )
    if EMAIL not in found and EXTERNAL_ID not in found:
        raise Invalid(
            "The file needs an email column or an external id column to recognise learners.",
            field="file",
        )
    return found, tuple(ignored)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in _CONTROL for ch in text)


def _shown(value: str) -> str:
    value = "".join("�" if unicodedata.category(ch) in _CONTROL else ch for ch in value)
    return value if len(value) <= 100 else value[:99] + "…"


class _RowChecker:
    """Checks the cells of one row, collecting every problem instead of stopping at one."""

    def __init__(self, line: int, header: Sequence[str], columns: Mapping[str, int]) -> None:
        self.line = line
        self.header = header
        self.columns = columns
        self.problems: list[RowProblem] = []

    def problem(self, key: str, value: str, reason: str, **params: Any) -> None:
        index = self.columns.get(key)
        column = self.header[index].strip() if index is not None else ""
        letter = _letter(index) if index is not None else ""
        self.problems.append(RowProblem(self.line, column, letter, _shown(value), reason, params))

    def text(self, key: str, raw: str, max_length: int) -> str | None:
        value = unicodedata.normalize("NFC", raw.strip())
        if _has_control(value):
            self.problem(key, raw, "This value contains characters that are not allowed.")
            return None
        if len(value) > max_length:
            self.problem(
                key, raw, "This value is too long ({max} characters at most).", max=max_length
            )
            return None
        return value

    def groups(self, raw: str) -> tuple[str, ...]:
        names: dict[str, str] = {}
        for part in _GROUP_SEPARATORS.split(raw):
            name = unicodedata.normalize("NFC", " ".join(part.split()))
            if not name:
                continue
            if _has_control(name):
                self.problem(GROUPS, raw, "This value contains characters that are not allowed.")
                return ()
            if len(name) > GROUP_MAX_LENGTH:
                self.problem(
                    GROUPS,
                    raw,
                    "A group name is too long ({max} characters at most).",
                    max=GROUP_MAX_LENGTH,
                )
                return ()
            names.setdefault(name.casefold(), name)
        if len(names) > MAX_GROUPS:
            self.problem(GROUPS, raw, "Too many groups ({max} at most).", max=MAX_GROUPS)
            return ()
        return tuple(names.values())


def _check_row(
    line: int, cells: Sequence[str], header: Sequence[str], columns: Mapping[str, int]
) -> tuple[LearnerRow | None, list[RowProblem]]:
    check = _RowChecker(line, header, columns)

    def cell(key: str) -> str:
        index = columns.get(key)
        return cells[index] if index is not None and index < len(cells) else ""

    if any(value.strip() for value in cells[len(header) :]):
        check.problem("", "", "This row has more cells than the header.")
    if FIRST_NAME in columns:
        raw_name = " ".join(
            part.strip() for part in (cell(FIRST_NAME), cell(LAST_NAME) or cell(NAME)) if part
        )
        name_key = FIRST_NAME
    else:
        raw_name, name_key = cell(NAME), NAME
    name = check.text(name_key, " ".join(raw_name.split()), NAME_MAX_LENGTH)
    if name == "":
        check.problem(name_key, raw_name, "The name is missing.")
    email = check.text(EMAIL, cell(EMAIL), EMAIL_MAX_LENGTH)
    if email and not _EMAIL.match(email):
        check.problem(EMAIL, cell(EMAIL), "This email address is not valid.")
        email = None
    external_id = check.text(EXTERNAL_ID, cell(EXTERNAL_ID), EXTERNAL_ID_MAX_LENGTH)
    if not cell(EMAIL).strip() and not cell(EXTERNAL_ID).strip():
        check.problem(
            EMAIL if EMAIL in columns else EXTERNAL_ID,
            "",
            "Give an email address or an external id.",
        )
    groups = check.groups(cell(GROUPS)) if GROUPS in columns else None
    if check.problems or not name:
        return None, check.problems
    return LearnerRow(line, name, email or None, external_id or None, groups), []


def parse_learner_csv(data: bytes) -> ParsedFile:
    """Read and check an uploaded learners file.

    File-level faults (too large, not text, unknown encoding, no usable header, too many
    rows, broken quoting) raise `Invalid` with what to do; row-level ones are collected, every
    one of them, in `problems`. Blank rows are skipped but counted, so line numbers match
    the spreadsheet's.
    """
    if len(data) > MAX_BYTES:
        raise Invalid(
            "This file is larger than {max} MB. Split it into several files.",
            field="file",
            max=MAX_BYTES // (1024 * 1024),
        )
    text, encoding = _decode(data)
    if not text.strip():
        raise Invalid("The file is empty.", field="file")
    lines = io.StringIO(text, newline="")
    first = lines.readline()
    line = 1
    forced = re.fullmatch(r"sep=(.)\r?\n?", first)
    if forced:  # Excel's own hint line, "sep=;"
        delimiter = forced.group(1)
        line = 2
    else:
        lines.seek(0)
        delimiter = _delimiter(first)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header: list[str] | None = None
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            line += 1
            header = next(reader, None)
        if header is None:
            raise Invalid("The file is empty.", field="file")
        columns, ignored = _map_columns(header)
        rows: list[LearnerRow] = []
        problems: list[RowProblem] = []
        learners = 0
        for cells in reader:
            line += 1
            if not any(cell.strip() for cell in cells):
                continue
            learners += 1
            if learners > MAX_ROWS:
                raise Invalid(
                    "This file has more than {max} learners. Split it into several files.",
                    field="file",
                    max=MAX_ROWS,
                )
            row, found = _check_row(line, cells, header, columns)
            if row is not None:
                rows.append(row)
            problems.extend(found)
    except csv.Error:
        raise Invalid(
            "Line {line} could not be read: check its quotation marks.",
            field="file",
            # the line being read: the header's own, or the one after the last row read
            line=line if header is None else line + 1,
        ) from None
    if not rows and not problems:
        raise Invalid("The file has a header but no learner.", field="file")
    repeated = _duplicates(rows, header, columns)
    problems.extend(repeated)
    repeated_lines = {problem.line for problem in repeated}
    return ParsedFile(
        rows=tuple(row for row in rows if row.line not in repeated_lines),
        problems=tuple(sorted(problems, key=lambda p: p.line)),
        encoding=encoding,
        delimiter=delimiter,
        header=tuple(header),
        columns=columns,
        ignored_columns=ignored,
    )


def _duplicates(
    rows: Iterable[LearnerRow], header: Sequence[str], columns: Mapping[str, int]
) -> list[RowProblem]:
    """An email (case-insensitive) or an external id given twice in the file."""
    problems: list[RowProblem] = []
    seen_email: dict[str, int] = {}
    seen_external: dict[str, int] = {}
    for row in rows:
        check = _RowChecker(row.line, header, columns)
        if row.email:
            first = seen_email.setdefault(row.email.lower(), row.line)
            if first != row.line:
                check.problem(
                    EMAIL, row.email, "This email address is already on line {line}.", line=first
                )
        if row.external_id:
            first = seen_external.setdefault(row.external_id, row.line)
            if first != row.line:
                check.problem(
                    EXTERNAL_ID,
                    row.external_id,
                    "This external id is already on line {line}.",
                    line=first,
                )
        problems.extend(check.problems)
    return problems


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
    creates: list[tuple[UUID, LearnerRow]] = field(default_factory=list)
    updates: list[tuple[UUID, LearnerRow]] = field(default_factory=list)
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)


async def _lock_imports(ctx: TenantContext) -> None:
    # One import at a time per organization: two concurrent files with the same new email
    # would otherwise both create it (the email is not a unique key, ADR 0011).
    await execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('learner-import:' || $1::text, 0))",
        str(ctx.tenant_id),
    )


async def _stored_matches(ctx: TenantContext, rows: Sequence[LearnerRow]) -> list[_Stored]:
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


def _changes(stored: _Stored, row: LearnerRow) -> bool:
    return (
        stored.name != row.name
        or (row.email is not None and row.email.lower() != (stored.email or "").lower())
        or (row.external_id is not None and stored.external_id != row.external_id)
        or (row.groups is not None and stored.groups != row.groups)
    )


def _plan(
    rows: Sequence[LearnerRow],
    stored: Sequence[_Stored],
    header: Sequence[str],
    columns: Mapping[str, int],
) -> _Plan:
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
    for row in rows:
        check = _RowChecker(row.line, header, columns)
        match_email = by_email.get(row.email.lower()) if row.email else None
        match_external = by_external.get(row.external_id) if row.external_id else None
        if match_email and match_external and match_email.id != match_external.id:
            check.problem(
                EXTERNAL_ID,
                row.external_id or "",
                "This external id belongs to another learner than this email address.",
            )
            plan.problems.extend(check.problems)
            continue
        target = match_email or match_external
        if target is None:
            plan.creates.append((uuid4(), row))
            continue
        first = claimed.setdefault(target.id, row.line)
        if first != row.line:
            check.problem("", "", "This row names the same learner as line {line}.", line=first)
            plan.problems.extend(check.problems)
            continue
        if _changes(target, row):
            if row.email and row.email.lower() == (target.email or "").lower():
                row = replace(row, email=None)  # the same address in another case: kept
            plan.updates.append((target.id, row))
        else:
            plan.unchanged += 1
    return plan


_INSERT = """
INSERT INTO learner (tenant_id, id, name, email, external_id, groups)
SELECT $1, u.id, u.name, u.email, u.external_id,
       coalesce(string_to_array(u.groups, chr(31)), '{}')
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
    AS u(id, name, email, external_id, groups)
"""

_UPDATE = """
UPDATE learner l SET name = u.name, email = coalesce(u.email, l.email),
    external_id = coalesce(u.external_id, l.external_id),
    groups = coalesce(string_to_array(u.groups, chr(31)), l.groups), updated_at = now()
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
    AS u(id, name, email, external_id, groups)
WHERE l.tenant_id = $1 AND l.id = u.id
"""


def _columns_of(pairs: Sequence[tuple[UUID, LearnerRow]]) -> list[list[Any]]:
    return [
        [ident for ident, _ in pairs],
        [row.name for _, row in pairs],
        [row.email for _, row in pairs],
        [row.external_id for _, row in pairs],
        [None if row.groups is None else _UNIT.join(row.groups) for _, row in pairs],
    ]


Progress = Callable[[int, int], Awaitable[None]]


async def _write(ctx: TenantContext, plan: _Plan, progress: Progress | None = None) -> None:
    """One statement per batch of `BATCH_SIZE` rows, whatever the number of rows; `progress`
    hears (rows written, rows to write) after each batch."""
    total = len(plan.creates) + len(plan.updates)
    done = 0
    for statement, pairs in ((_INSERT, plan.creates), (_UPDATE, plan.updates)):
        for start in range(0, len(pairs), BATCH_SIZE):
            batch = pairs[start : start + BATCH_SIZE]
            await execute(statement, ctx.tenant_id, *_columns_of(batch))
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
    File-level faults raise `Invalid`.
    """
    require_learners_importer(ctx)
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
        await _lock_imports(ctx)
        stored = await _stored_matches(ctx, parsed.rows)
        plan = _plan(parsed.rows, stored, parsed.header, parsed.columns)
        problems = tuple(sorted([*parsed.problems, *plan.problems], key=lambda p: p.line))
        if problems:
            return result(problems=problems)
        counts = {
            "created": len(plan.creates),
            "updated": len(plan.updates),
            "unchanged": plan.unchanged,
        }
        if dry_run:
            return result(**counts)
        if len(parsed.rows) > SYNC_MAX_ROWS:
            task_id = await start_task(
                ctx,
                LEARNER_IMPORT,
                "import_learners_file",  # campaigns.jobs
                [filename],
                input=data,
                total=len(parsed.rows),
            )
            return result(task_id=task_id, **counts)
        await _write(ctx, plan)
        await audit.record(
            ctx, "learners.imported", "learner", "", file=filename[:200], rows=total, **counts
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
    parsed = parse_learner_csv(data)
    async with tenant_transaction(ctx):
        await _lock_imports(ctx)
        stored = await _stored_matches(ctx, parsed.rows)
        plan = _plan(parsed.rows, stored, parsed.header, parsed.columns)
        problems = [*parsed.problems, *plan.problems]
        if problems:
            raise Invalid(
                "The organization’s learners changed since the file was checked: {count} "
                "rows no longer fit. Import the file again to see them.",
                count=len({p.line for p in problems}),
            )
        counts = {
            "created": len(plan.creates),
            "updated": len(plan.updates),
            "unchanged": plan.unchanged,
        }
        await _write(ctx, plan, progress)
        await audit.record(
            ctx,
            "learners.imported",
            "learner",
            "",
            file=filename[:200],
            rows=len(parsed.rows),
            **counts,
        )
    return ImportResult(
        rows=len(parsed.rows),
        created=counts["created"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
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


IMPORTED_MESSAGE = "Import done: {created} created, {updated} updated, {unchanged} unchanged."


# --- the learners list ---------------------------------------------------------------------


@dataclass(frozen=True)
class LearnerPage:
    """A page of learners in name order, and the cursor of the next page (None at the end)."""

    learners: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(sort_key: str, ident: UUID) -> str:
    # the name last: it may contain the separator
    return keyset.pack(str(ident), sort_key)


def _decode_cursor(cursor: str | None) -> tuple[str, UUID] | None:
    parts = keyset.unpack(cursor, 2)
    if parts is None:
        return None
    ident, sort_key = parts
    if len(sort_key) > 200:  # a learner's name as stored is no longer
        raise Invalid("This page link is not valid.", field="cursor")
    return sort_key, keyset.parse_id(ident)


async def list_learners(
    ctx: TenantContext,
    *,
    search: str = "",
    group: str = "",
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> LearnerPage:
    """The organization's learners in name order, `limit` at a time (keyset pagination):
    those whose name, email or external id contains `search`, in `group` when given."""
    require_learners_reader(ctx)
    search = clean_text(search, "q", max_length=200, required=False)
    group = clean_text(group, "group", max_length=GROUP_MAX_LENGTH, required=False)
    after = _decode_cursor(cursor)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT id, name, email, external_id, groups, user_id, created_at, updated_at,
                      lower(name) AS sort_key
               FROM learner
               WHERE tenant_id = $1
                 AND ($2 = '' OR name ILIKE $3 OR email ILIKE $3 OR external_id ILIKE $3)
                 AND ($4 = '' OR $4 = ANY(groups))
                 AND ($5::text IS NULL OR (lower(name), id) > ($5, $6::uuid))
               ORDER BY lower(name), id LIMIT $7""",
            ctx.tenant_id,
            search,
            contains_pattern(search),
            group,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor(rows[-1]["sort_key"], rows[-1]["id"]) if more else None
    return LearnerPage(rows, next_cursor)


async def learner_groups(ctx: TenantContext) -> list[str]:
    """The groups the organization's learners are in, in alphabetical order."""
    require_learners_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch(
            """SELECT DISTINCT g FROM learner, unnest(groups) AS g
               WHERE tenant_id = $1 ORDER BY g LIMIT 1000""",
            ctx.tenant_id,
        )
    return [row["g"] for row in rows]


async def count_learners(ctx: TenantContext) -> int:
    """How many learners the organization has."""
    require_learners_reader(ctx)
    async with tenant_transaction(ctx):
        rows = await fetch("SELECT count(*) AS n FROM learner WHERE tenant_id = $1", ctx.tenant_id)
    return int(rows[0]["n"])


def template_csv(locale: str) -> tuple[str, bytes]:
    """(file name, content) of an example file to fill in: French headers and `;` in French
    (what French Excel opens as columns), English headers and `,` otherwise; UTF-8 with BOM
    so that Excel reads the accents."""
    if locale == "fr":
        lines = [
            ["nom", "email", "matricule", "groupes"],
            ["Camille Martin", "camille.martin@example.org", "A1024", "Comptabilité|Lyon"],
            ["Karim Benali", "karim.benali@example.org", "A1025", "Lyon"],
        ]
        delimiter, name = ";", "apprenants.csv"
    else:
        lines = [
            ["name", "email", "external_id", "groups"],
            ["Camille Martin", "camille.martin@example.org", "A1024", "Accounting|Lyon"],
            ["Karim Benali", "karim.benali@example.org", "A1025", "Lyon"],
        ]
        delimiter, name = ",", "learners.csv"
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(lines)
    return name, b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")
