"""Exports of shared results: XLSX with the CSV's columns, typed cells, headers in the
organization's language; the background job path; rows read from the database in batches."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from campaigns import exports
from campaigns.campaign_fields import Campaign
from core import database, jobs
from core.errors import Invalid, NotFound
from core.settings import get_settings
from tenants import tasks
from tests.api.conftest import audit_actions
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.seeding import insert_rows

pytestmark = pytest.mark.usefixtures("in_process")

FRENCH_HEADERS = [
    "Nom",
    "Adresse e-mail",
    "Identifiant externe",
    "Tentative",
    "Commencé le",
    "Terminé le",
    "Partagé le",
    "Niveau global",
    "Score",
    "1.1 Naviguer",
    "1.2 Évaluer",
    "4.1 Protéger les appareils",
    "1 Information",
    "4 Sécurité",
]
#: The XLSX's: Excel has no time zones, so its date columns name the organization's.
FRENCH_XLSX_HEADERS = [
    f"{header} (Europe/Paris)" if index in (4, 5, 6) else header
    for index, header in enumerate(FRENCH_HEADERS)
]
#: When the seeded learners started, and when the first of them shared.
STARTED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
FIRST_SHARE = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)


async def add_shared_results(
    tenant_id: UUID, campaign_id: UUID, count: int, name: str = "Learner", later: int = 0
) -> None:
    """`count` learners who shared a result (1.1 at level 3, 1.2 at 4, 4.1 missing), named
    `name 1`, `name 2`…, who shared in that order, `later` minutes after the first batch."""
    learners = [
        (tenant_id, uuid4(), f"{name} {n}", f"l{n}@example.org") for n in range(1, count + 1)
    ]
    participations = [
        (
            tenant_id,
            uuid4(),
            campaign_id,
            learner,
            1,
            "shared",
            STARTED,
            STARTED + timedelta(minutes=30),
            FIRST_SHARE + timedelta(minutes=later, seconds=n),
        )
        for n, (_, learner, _, _) in enumerate(learners, start=1)
    ]
    competences = json.dumps({"1.1": {"level": 3}, "1.2": {"level": 4}})
    results = [(tenant_id, uuid4(), p[1], 2, 250, competences) for p in participations]
    async with as_tenant(tenant_id):
        await insert_rows("learner", ("tenant_id", "id", "name", "email"), learners)
        await insert_rows(
            "participation",
            (
                "tenant_id",
                "id",
                "campaign_id",
                "learner_id",
                "attempt",
                "status",
                "created_at",
                "completed_at",
                "shared_at",
            ),
            participations,
        )
        await insert_rows(
            "result",
            ("tenant_id", "id", "participation_id", "level", "score", "competences"),
            results,
        )


async def _bytes(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def _sheet_rows(data: bytes) -> tuple[Any, list[tuple[Any, ...]]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    return sheet, list(sheet.iter_rows(values_only=True))


@pytest.fixture
async def campaign(tenant_a: TenantFixture) -> Campaign:
    found = await make_campaign(tenant_a)
    await add_shared_results(tenant_a.id, found.id, 1, name="=HYPERLINK")
    await add_shared_results(tenant_a.id, found.id, 2, later=1)
    return found


async def test_the_xlsx_has_the_columns_of_the_csv_with_typed_cells(
    tenant_a: TenantFixture, campaign: Campaign
) -> None:
    name, chunks = await exports.results_xlsx(tenant_a.member_ctx, campaign.id, "fr")
    assert name == f"{campaign.code}-results.xlsx"
    sheet, rows = _sheet_rows(await _bytes(chunks))
    assert sheet.title == "Résultats"
    # Excel has no time zones: the date columns say whose wall-clock time they hold.
    assert list(rows[0]) == FRENCH_XLSX_HEADERS
    assert sheet["A1"].font.b
    assert sheet["N1"].font.b
    assert sheet.freeze_panes == "A2"
    assert len(rows) == 1 + 3
    first = rows[1]
    # A name that looks like a formula stays a text.
    assert first[0] == "=HYPERLINK 1"
    assert sheet["A2"].data_type == "s"
    assert first[1:4] == ("l1@example.org", None, 1)
    # Dates are dates, in the organization's time zone (Europe/Paris, UTC+1 in March).
    paris = ZoneInfo("Europe/Paris")
    assert first[4:7] == tuple(
        datetime(2026, 3, day, hour, minute, second, tzinfo=paris).replace(tzinfo=None)
        for day, hour, minute, second in ((1, 9, 0, 0), (1, 9, 30, 0), (3, 0, 30, 1))
    )
    assert sheet["E2"].is_date
    # Numbers are numbers: global level and score, a level per competence, per area a mean.
    assert first[7:] == (2, 250, 3, 4, 0, 3.5, 0)

    _, lines = await exports.results_csv(tenant_a.member_ctx, campaign.id, "fr")
    text = "".join([line async for line in lines])
    # French spreadsheets: `;` between cells, `,` before decimals.
    csv_rows = list(csv.reader(io.StringIO(text.removeprefix(exports.BOM)), delimiter=";"))
    assert csv_rows[0] == FRENCH_HEADERS
    # The CSV's moments are a machine format: ISO 8601 in UTC, whatever the zone.
    assert csv_rows[1][4:7] == [
        "2026-03-01T08:00:00+00:00",
        "2026-03-01T08:30:00+00:00",
        "2026-03-02T23:30:01+00:00",
    ]
    assert [len(row) for row in csv_rows] == [len(row) for row in rows]
    assert [row[0] for row in csv_rows[1:]] == ["'=HYPERLINK 1", "Learner 1", "Learner 2"]
    assert csv_rows[1][7:] == ["2", "250", "3", "4", "0", "3,5", "0,0"]
    _, lines = await exports.results_csv(
        tenant_a.member_ctx, campaign.id, "fr", exports.csv_dialect("en")
    )
    english = "".join([line async for line in lines])
    english_rows = list(csv.reader(io.StringIO(english.removeprefix(exports.BOM))))
    assert english_rows[0] == FRENCH_HEADERS
    assert english_rows[1][7:] == ["2", "250", "3", "4", "0", "3.5", "0.0"]


@pytest.mark.parametrize(
    ("locale", "separator", "expected"),
    [
        ("fr", None, (";", ",")),
        ("nl", None, (";", ",")),
        ("de", None, (";", ",")),
        ("en", None, (",", ".")),
        ("fr", "comma", (",", ".")),
        ("en", "semicolon", (";", ",")),
        ("en", ";", (";", ",")),
    ],
)
def test_the_csv_dialect_follows_the_language_or_the_choice(
    locale: str, separator: str | None, expected: tuple[str, str]
) -> None:
    dialect = exports.csv_dialect(locale, separator)
    assert (dialect.delimiter, dialect.decimal) == expected


async def test_headers_follow_the_language_asked(
    tenant_a: TenantFixture, campaign: Campaign
) -> None:
    _, chunks = await exports.results_xlsx(tenant_a.owner_ctx, campaign.id, "en")
    sheet, rows = _sheet_rows(await _bytes(chunks))
    assert sheet.title == "Results"
    assert list(rows[0])[:2] == ["Name", "Email address"]
    assert list(rows[0])[9:] == [
        "1.1 Browsing",
        "1.2 Evaluating",
        "4.1 Protecting devices",
        "1 Information",
        "4 Safety",
    ]


async def test_the_external_identifier_column_takes_the_campaigns_label(
    tenant_a: TenantFixture,
) -> None:
    found = await make_campaign(tenant_a, external_id_label="Matricule")
    _, chunks = await exports.results_xlsx(tenant_a.owner_ctx, found.id, "fr")
    _, rows = _sheet_rows(await _bytes(chunks))
    assert rows == [(*FRENCH_XLSX_HEADERS[:2], "Matricule", *FRENCH_XLSX_HEADERS[3:])]


async def test_another_tenants_campaign_is_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture, campaign: Campaign
) -> None:
    with pytest.raises(NotFound):
        await exports.results_xlsx(tenant_b.owner_ctx, campaign.id, "en")
    with pytest.raises(NotFound):
        await exports.results_csv(tenant_b.owner_ctx, campaign.id, "en")
    with pytest.raises(NotFound):
        await exports.start_export(tenant_b.owner_ctx, campaign.id, "csv", "en")
    assert await tasks.list_tasks(tenant_b.owner_ctx) == []


def _begun(statements: list[str]) -> int:
    return sum(statement.startswith("BEGIN") for statement in statements)


async def test_a_download_is_checked_and_recorded_in_one_transaction_then_read_in_one(
    tenant_a: TenantFixture, campaign: Campaign, statements: list[str]
) -> None:
    """Access, the count and the audit record commit together before the first row; the
    rows come from a second transaction (a server-side cursor)."""
    statements.clear()
    _, lines = await exports.results_csv(tenant_a.member_ctx, campaign.id, "en")
    assert _begun(statements) == 1
    assert sum("INSERT INTO audit_event" in statement for statement in statements) == 1
    assert statements[-1] == "COMMIT"
    assert len([line async for line in lines]) == 4  # the headers and three results
    assert _begun(statements) == 2


async def test_a_download_past_the_threshold_runs_in_the_background_unrecorded(
    tenant_a: TenantFixture, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await audit_actions(tenant_a.id)
    monkeypatch.setenv("JALON_EXPORT_BACKGROUND_THRESHOLD", "2")
    get_settings.cache_clear()
    try:
        for download in (exports.results_csv, exports.results_xlsx):
            with pytest.raises(exports.RunsInBackground):
                await download(tenant_a.member_ctx, campaign.id, "en")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert await audit_actions(tenant_a.id) == before


async def test_an_unknown_format_is_refused(tenant_a: TenantFixture, campaign: Campaign) -> None:
    with pytest.raises(Invalid):
        await exports.start_export(tenant_a.owner_ctx, campaign.id, "pdf", "en")


@pytest.mark.parametrize(
    ("threshold", "shared", "background"),
    [
        (5000, 5000, False),
        (5000, 5001, True),
        (2, 2, False),
        (2, 3, True),
        (0, 0, False),
        (0, 1, True),
    ],
)
def test_an_export_of_more_results_than_the_threshold_runs_in_the_background(
    monkeypatch: pytest.MonkeyPatch, threshold: int, shared: int, background: bool
) -> None:
    monkeypatch.setenv("JALON_EXPORT_BACKGROUND_THRESHOLD", str(threshold))
    get_settings.cache_clear()
    try:
        assert exports.runs_in_background(shared) is background
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def _drained() -> None:
    queue = jobs.get_queue()
    assert isinstance(queue, jobs.InProcessQueue)
    await queue.drain()


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
async def test_an_export_runs_as_a_task_with_the_same_file(
    tenant_a: TenantFixture, campaign: Campaign, export_format: str
) -> None:
    ctx = tenant_a.member_ctx
    task_id = await exports.start_export(ctx, campaign.id, export_format, "en")
    await _drained()
    task = await tasks.get_task(ctx, task_id)
    assert (task.kind, task.status, task.done, task.total) == (exports.TASK_KIND, "done", 3, 3)
    assert task.file_name == f"{campaign.code}-results.{export_format}"
    assert task.content_type == exports.CONTENT_TYPES[export_format]
    _, chunks = await tasks.download(ctx, task_id)
    data = await _bytes(chunks)
    if export_format == "xlsx":
        _, rows = _sheet_rows(data)
        assert [row[0] for row in rows] == ["Name", "=HYPERLINK 1", "Learner 1", "Learner 2"]
    else:
        assert data.startswith(exports.BOM.encode())
        lines = data.decode("utf-8-sig").splitlines()
        assert len(lines) == 4
        assert lines[0].startswith("Name,Email address,")


# --- bounded memory: the rows come from the database in batches ------------------------


class ExecuteCounter:
    """A TCP relay between the pool and PostgreSQL that reads the frontend protocol and
    keeps the row limit of every Execute message: how the driver pulls rows, seen on the
    wire rather than guessed from the code."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        self.host = parts.hostname or query.get("host", [""])[0]
        self.port = parts.port or int(query.get("port", ["5432"])[0])
        self.limits: list[int] = []
        self.server: asyncio.Server | None = None

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self.host}/.s.PGSQL.{self.port}")
        return await asyncio.open_connection(self.host, self.port)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _client_side(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Parse what the client sends: untyped start-up messages, then typed ones."""
        started = False
        while True:
            try:
                if not started:
                    head = await reader.readexactly(4)
                    (length,) = struct.unpack("!i", head)
                    body = await reader.readexactly(length - 4)
                    code = struct.unpack("!i", body[:4])[0]
                    # 80877103 asks for TLS, 80877104 for GSS: the start-up comes after.
                    started = code not in (80877103, 80877104)
                    writer.write(head + body)
                else:
                    kind = await reader.readexactly(1)
                    head = await reader.readexactly(4)
                    (length,) = struct.unpack("!i", head)
                    body = await reader.readexactly(length - 4)
                    if kind == b"E":
                        self.limits.append(struct.unpack("!i", body[-4:])[0])
                    writer.write(kind + head + body)
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._upstream()
        await asyncio.gather(
            self._client_side(reader, up_writer),
            self._relay(up_reader, writer),
            return_exceptions=True,
        )

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port


@pytest.fixture
async def wire(db: str) -> AsyncIterator[ExecuteCounter]:
    """The pool reconnected through an `ExecuteCounter`, then restored."""
    counter = ExecuteCounter(db)
    port = await counter.start()
    parts = urlsplit(db)
    user = parts.username or ""
    password = f":{parts.password}" if parts.password else ""
    # Plain text on the relay, or it could not read the messages: a server with TLS on would
    # otherwise be asked for it, and encrypt what the relay parses.
    database_name = parts.path.lstrip("/")
    # The pool's own options stay (statement_cache_size=0 through PgBouncer: tests/conftest.py).
    options = f"&{parts.query}" if parts.query else ""
    relayed = (
        f"postgresql://{user}{password}@127.0.0.1:{port}/{database_name}?sslmode=disable{options}"
    )
    await database.close_pool()
    try:
        database.configure(relayed, pool_size=5)
        await database.start_pool()
        yield counter
    finally:
        await database.close_pool()
        database.configure(db, pool_size=5)
        await database.start_pool()
        assert counter.server is not None
        counter.server.close()


async def test_a_large_export_reads_its_rows_in_batches(
    tenant_a: TenantFixture, wire: ExecuteCounter
) -> None:
    rows = 3 * exports.BATCH_ROWS + 123
    found = await make_campaign(tenant_a)
    await add_shared_results(tenant_a.id, found.id, rows)
    wire.limits.clear()
    task_id = await exports.start_export(tenant_a.owner_ctx, found.id, "csv", "en")
    await _drained()

    task = await tasks.get_task(tenant_a.owner_ctx, task_id)
    assert (task.status, task.done, task.total) == ("done", rows, rows)
    # The cursor asked for BATCH_ROWS rows at a time, never for the whole result (0).
    batches = [limit for limit in wire.limits if limit == exports.BATCH_ROWS]
    assert len(batches) >= rows // exports.BATCH_ROWS + 1
    _, chunks = await tasks.download(tenant_a.owner_ctx, task_id)
    lines = (await _bytes(chunks)).decode("utf-8-sig").splitlines()
    assert len(lines) == 1 + rows
