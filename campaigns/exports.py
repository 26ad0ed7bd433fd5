"""Exports of a campaign's results for its organizers: CSV and XLSX, in bounded memory.

Only participations their owners shared appear (the same rule as the dashboard). Both formats
have the same columns, built in one place (`_layout` and `_rows`): headers in the
organization's language, one column per competence of the campaign's profile and one per
area (the mean level of its competences in the profile). Rows come from a server-side
cursor, so 100,000 participations never sit in memory together. On Citus the query, filtered
on the tenant in every table, goes to the tenant's shard; the coordinator gathers its rows in a
tuple store (spilled to disk past `work_mem`) and the cursor still hands them over a batch at
a time.

- CSV is UTF-8 with a byte-order mark (so spreadsheet software opens accents right), in the
  dialect the reader's spreadsheet expects (`csv_dialect`): `;` between cells and `,` before
  decimals in French, Dutch and German (what Excel opens as columns there), `,` and `.` in
  English. Moments stay ISO 8601 in UTC, a machine format.
- XLSX is written by openpyxl in write-only mode (rows go to a temporary file): numbers are
  numbers, dates are dates in the organization's time zone (Excel has none), so each date
  column's header names that zone ("Completed on (Europe/Paris)"); the header row is bold and
  frozen.

Every download of the file (streamed here, or a background task's file in `tenants.tasks`)
is recorded in the organization's audit log: who, which campaign, which format, how many rows.

Small exports stream in the request; above `JALON_EXPORT_BACKGROUND_THRESHOLD` shared results
(`runs_in_background`) `start_export` runs the same code as a background task (ADR 0014) with
its progress shown.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Literal
from uuid import UUID

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from campaigns.access import require_reader
from campaigns.campaign_fields import Campaign
from campaigns.content import frozen_bank
from campaigns.service import access_campaign
from core.database import fetch, stream, tenant_transaction
from core.errors import Invalid
from core.i18n import N_, in_language, translate
from core.l10n import csv_delimiter, zone_name
from core.settings import get_settings
from core.tasks import TaskRun, task_job
from tenants import audit
from tenants.context import TenantContext
from tenants.tasks import start_task, starter_context

BOM = "\ufeff"
ExportFormat = Literal["csv", "xlsx"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx")
CONTENT_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: Rows the server-side cursor holds in memory at once.
BATCH_ROWS = 500
#: A background export reports its progress every this many rows.
PROGRESS_EVERY = 500
#: Bytes read at a time from a finished XLSX file while it is sent.
CHUNK_BYTES = 64 * 1024
TASK_KIND = "campaign.results_export"

#: Fixed columns, translated into the organization's language.
FIXED_HEADERS = (
    N_("Name"),
    N_("Email address"),
    N_("External identifier"),
    N_("Attempt"),
    N_("Started on"),
    N_("Completed on"),
    N_("Shared on"),
    N_("Global level"),
    N_("Score"),
)
#: Where the moments (started, completed, shared) stand among `FIXED_HEADERS`.
MOMENT_COLUMNS = frozenset({4, 5, 6})
SHEET_TITLE = N_("Results")

_SHARED_RESULTS = """
SELECT l.name, l.email, p.external_id, p.attempt, p.created_at, p.completed_at, p.shared_at,
       r.level, r.score, r.competences
FROM participation p
JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
JOIN result r ON r.tenant_id = $1 AND r.participation_id = p.id
WHERE p.tenant_id = $1 AND p.campaign_id = $2 AND p.status = 'shared'
ORDER BY p.shared_at, p.id
"""

_SHARED_COUNT = """
SELECT count(*) AS shared FROM participation
WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'shared'
"""


#: The separators a person may choose on the export form, by their name in the query.
SEPARATORS = {"semicolon": ";", "comma": ","}


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file separates cells and writes decimals, for one spreadsheet's habits."""

    delimiter: str
    decimal: str


def csv_dialect(locale: str, separator: str | None = None) -> CsvDialect:
    """The dialect of `locale`'s spreadsheets (`;` and `,` in French, Dutch and German; `,`
    and `.` otherwise), or the `separator` chosen by name (`semicolon`, `comma`, or the
    character itself); `Invalid` for another separator."""
    if separator:
        delimiter = SEPARATORS.get(separator, separator)
        if delimiter not in SEPARATORS.values():
            raise Invalid("Choose a semicolon or a comma as separator.", field="separator")
    else:
        delimiter = csv_delimiter(locale)
    # A comma before decimals only where it does not also separate the cells.
    return CsvDialect(delimiter, "," if delimiter == ";" else ".")


ENGLISH_CSV = CsvDialect(",", ".")


def _cell(value: Any) -> Any:
    """A text a spreadsheet would run as a formula (=, +, -, @…) is quoted with ' first."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_value(value: Any, dialect: CsvDialect) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return repr(value).replace(".", dialect.decimal)
    return _cell(value)


def _line(values: list[Any], dialect: CsvDialect = ENGLISH_CSV) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=dialect.delimiter, lineterminator="\r\n").writerow(
        [_csv_value(value, dialect) for value in values]
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class Layout:
    """The columns of a campaign's export, in the organization's language."""

    campaign: Campaign
    headers: list[str]
    competences: tuple[str, ...]
    areas: list[tuple[str, list[str]]]

    def filename(self, export_format: str) -> str:
        return f"{self.campaign.code}-results.{export_format}"


class RunsInBackground(Exception):
    """A download of more results than stream in a request (`runs_in_background`): it is
    started as a background task instead, and nothing was recorded."""


def _columns(campaign: Campaign, locale: str) -> Layout:
    """The export's columns for `campaign`, named in `locale`."""
    bank = frozen_bank(campaign.bank_version)
    competences = tuple(campaign.profile.competences)
    areas = [
        (area, [c.code for c in area.competences if c.code in competences])
        for area in bank.areas
        if any(c.code in competences for c in area.competences)
    ]
    headers = [translate(locale, header) for header in FIXED_HEADERS]
    if campaign.external_id_label:
        headers[2] = campaign.external_id_label
    titles = {code: in_language(bank.competences[code].title, locale) for code in competences}
    headers += [f"{code} {titles[code]}" for code in competences]
    headers += [f"{area.code} {in_language(area.title, locale)}" for area, _ in areas]
    return Layout(campaign, headers, competences, [(area.code, codes) for area, codes in areas])


async def _layout(
    ctx: TenantContext, campaign_id: UUID | str, locale: str, download: str | None = None
) -> Layout:
    """Check access (404 alike for another tenant's campaign) and name the columns. For a
    `download` (its format), in the same transaction: `RunsInBackground` past the threshold,
    else the download recorded in the audit log (personal data) with the number of rows it
    holds, committed before the first row is sent."""
    require_reader(ctx)
    async with tenant_transaction(ctx):
        campaign, _ = await access_campaign(ctx, campaign_id)
        layout = _columns(campaign, locale)
        if download is not None:
            rows = await fetch(_SHARED_COUNT, ctx.tenant_id, campaign.id)
            if runs_in_background(rows[0]["shared"]):
                raise RunsInBackground
            await audit.record(
                ctx,
                "campaign.results_exported",
                "campaign",
                campaign.id,
                campaign=campaign.name,
                format=download,
                file=layout.filename(download),
                rows=rows[0]["shared"],
            )
    return layout


async def _rows(ctx: TenantContext, layout: Layout) -> AsyncIterator[list[Any]]:
    """The export's rows as typed values (texts, numbers, datetimes or None), one at a
    time from a server-side cursor (`BATCH_ROWS` in memory); the transaction stays open
    while the caller iterates."""
    async with tenant_transaction(ctx):
        async for row in stream(
            _SHARED_RESULTS, ctx.tenant_id, layout.campaign.id, prefetch=BATCH_ROWS
        ):
            levels = {
                code: int(value.get("level", 0))
                for code, value in json.loads(row["competences"]).items()
            }
            yield [
                row["name"],
                row["email"] or "",
                row["external_id"] or "",
                row["attempt"],
                row["created_at"],
                row["completed_at"],
                row["shared_at"],
                row["level"],
                row["score"],
                *(levels.get(code, 0) for code in layout.competences),
                *(
                    round(sum(levels.get(c, 0) for c in codes) / len(codes), 1)
                    for _, codes in layout.areas
                ),
            ]


async def _csv_lines(
    ctx: TenantContext,
    layout: Layout,
    dialect: CsvDialect,
    run: TaskRun[TenantContext] | None = None,
) -> AsyncIterator[str]:
    yield BOM + _line(layout.headers, dialect)
    count = 0
    async for values in _rows(ctx, layout):
        yield _line(values, dialect)
        count += 1
        if run is not None and count % PROGRESS_EVERY == 0:
            await run.progress(count)


async def results_csv(
    ctx: TenantContext, campaign_id: UUID | str, locale: str, dialect: CsvDialect | None = None
) -> tuple[str, AsyncIterator[str]]:
    """The file name and the lines of the campaign's shared results as CSV, in `dialect`
    (by default that of `locale`'s spreadsheets), the download recorded in the audit log.

    Access is checked and the download recorded before the first line (404 alike for another
    tenant's campaign; `RunsInBackground` for a large one); the lines are produced while the
    caller sends them."""
    layout = await _layout(ctx, campaign_id, locale, download="csv")
    return layout.filename("csv"), _csv_lines(ctx, layout, dialect or csv_dialect(locale))


def _xlsx_text(sheet: WriteOnlyWorksheet, value: str) -> Cell | str:
    """A text cell that stays text: never a formula, without the characters XML refuses."""
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if not value.startswith("="):
        return value
    cell = WriteOnlyCell(sheet, value)
    cell.data_type = "s"
    return cell


async def _write_xlsx(
    ctx: TenantContext,
    layout: Layout,
    locale: str,
    target: IO[bytes],
    run: TaskRun[TenantContext] | None = None,
) -> None:
    """Write the workbook into `target`; rows pass through openpyxl's temporary file."""
    zone = ctx.tenant.zone
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=translate(locale, SHEET_TITLE)[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header_cells = []
    for index, header in enumerate(layout.headers):
        if index in MOMENT_COLUMNS:  # wall-clock times: say whose wall
            header = f"{header} ({zone_name(zone)})"
        cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", header))
        cell.data_type = "s"
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    count = 0
    async for values in _rows(ctx, layout):
        cells: list[Any] = []
        for value in values:
            if isinstance(value, datetime):
                # Excel has no time zones: the organization's wall-clock time.
                cell = WriteOnlyCell(sheet, value.astimezone(zone).replace(tzinfo=None))
                cell.number_format = "yyyy-mm-dd hh:mm"
                cells.append(cell)
            elif isinstance(value, str):
                cells.append(_xlsx_text(sheet, value))
            else:
                cells.append(value)
        sheet.append(cells)
        count += 1
        if run is not None and count % PROGRESS_EVERY == 0:
            await run.progress(count)
    book.save(target)


async def results_xlsx(
    ctx: TenantContext, campaign_id: UUID | str, locale: str
) -> tuple[str, AsyncIterator[bytes]]:
    """The file name and the bytes of the campaign's shared results as XLSX, the download
    recorded in the audit log.

    Access is checked and the download recorded first (as `results_csv`); the workbook is
    built into a temporary file while the caller starts sending, then read back in chunks."""
    layout = await _layout(ctx, campaign_id, locale, download="xlsx")

    async def chunks() -> AsyncIterator[bytes]:
        with tempfile.TemporaryFile() as target:
            await _write_xlsx(ctx, layout, locale, target)
            target.seek(0)
            while chunk := target.read(CHUNK_BYTES):
                yield chunk

    return layout.filename("xlsx"), chunks()


def runs_in_background(shared: int) -> bool:
    """Whether an export of `shared` results runs as a background task (more than
    `JALON_EXPORT_BACKGROUND_THRESHOLD`) rather than streaming in the request."""
    return shared > get_settings().export_background_threshold


async def start_export(
    ctx: TenantContext,
    campaign_id: UUID | str,
    export_format: str,
    locale: str,
    dialect: CsvDialect | None = None,
) -> UUID:
    """Start the export as a background task (for large campaigns); the task's id. A CSV
    is written in `dialect` (by default that of `locale`'s spreadsheets)."""
    if export_format not in FORMATS:
        raise Invalid("Choose CSV or XLSX.", field="format")
    dialect = dialect or csv_dialect(locale)
    require_reader(ctx)
    async with tenant_transaction(ctx):
        campaign, _ = await access_campaign(ctx, campaign_id)
        rows = await fetch(_SHARED_COUNT, ctx.tenant_id, campaign.id)
        return await start_task(
            ctx,
            TASK_KIND,
            "export_campaign_results",
            [str(campaign.id), export_format, locale, dialect.delimiter],
            total=rows[0]["shared"],
        )


@task_job(acting_as=starter_context)
async def export_campaign_results(
    run: TaskRun[TenantContext],
    campaign_id: str,
    export_format: str,
    locale: str,
    delimiter: str = "",
) -> None:
    """Write the export into a temporary file with progress, then keep it with the task.
    (`delimiter` is absent from the tasks queued before it was chosen: `locale`'s then.)"""
    layout = await _layout(run.ctx, campaign_id, locale)
    dialect = csv_dialect(locale, delimiter or None)
    with tempfile.TemporaryFile() as target:
        if export_format == "xlsx":
            await _write_xlsx(run.ctx, layout, locale, target, run)
        else:
            async for line in _csv_lines(run.ctx, layout, dialect, run):
                target.write(line.encode("utf-8"))
        target.seek(0)
        await run.finish(layout.filename(export_format), CONTENT_TYPES[export_format], target)
