"""Exports for the reader's spreadsheet and in the audit log, over HTTP (issue 14, gaps 3
and 4): a French export opens as columns in French Excel (`;` between cells, `,` before
decimals), an English one with `,` and `.`; learners files of either kind import; every
download of people's results (CSV, XLSX, a background task's file) is in the audit log with
who, what and how many rows, shown on the console's audit page."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest

from campaigns.campaign_fields import CampaignFields
from campaigns.learner_csv import parse_learner_csv, template_csv
from campaigns.service import create_campaign
from core import database
from core.settings import get_settings
from tenants.members import add_member
from tests.api.conftest import Browser, audit_actions
from tests.api.test_learners_console import _upload
from tests.campaigns.test_exports import add_shared_results
from tests.conftest import HeldQueue, TenantFixture, make_user
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")

#: 1.1 at level 3, 1.2 at 4, 1.3 missing: area 1's mean level.
AREA_1 = 2.3


async def _campaign(tenant: TenantFixture, results: int = 2) -> Any:
    campaign = await create_campaign(
        tenant.owner_ctx, CampaignFields(name="Exported", profile_key="digcomp")
    )
    await add_shared_results(tenant.id, campaign.id, results)
    return campaign


async def _french_member(tenant: TenantFixture) -> Any:
    person = await make_user("Françoise Dupont", "fr")
    await add_member(tenant.owner_ctx, person, "member")
    return person


async def _details(tenant: TenantFixture) -> dict[str, Any]:
    """The details of the tenant's latest audit event."""
    import json

    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT actor_label, target_id, details FROM audit_event WHERE tenant_id = $1 "
            "ORDER BY occurred_at DESC, id DESC LIMIT 1",
            tenant.id,
        )
    return {
        **json.loads(rows[0]["details"]),
        **{k: rows[0][k] for k in ("actor_label", "target_id")},
    }


async def test_a_french_export_opens_as_columns_with_decimal_commas(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await _campaign(tenant_a)
    person = await _french_member(tenant_a)
    await browser.login(person)
    response = await browser.client.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.csv")
    assert response.status_code == 200
    assert response.content.startswith("\ufeff".encode())
    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header, data = rows[0], rows[1:]
    assert len(header) == 9 + 21 + 5  # fixed columns, competences, areas: each its column
    assert header[:2] == ["Name", "Email address"]  # the organization's language
    assert len(data) == 2
    assert all(len(row) == len(header) for row in data)
    assert {row[9] for row in data} == {"3"}  # 1.1's level
    assert {row[9 + 21] for row in data} == {"2,3"}  # area 1's mean, a French decimal
    # Moments stay ISO 8601 (a machine format), whatever the language.
    assert data[0][4].startswith("20")
    assert "T" in data[0][4]


async def test_an_english_export_uses_commas_and_decimal_points(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await _campaign(tenant_a)
    await browser.login(tenant_a.member)  # an English account
    response = await browser.client.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows[0]) == 9 + 21 + 5
    assert {row[9 + 21] for row in rows[1:]} == {str(AREA_1)}
    assert ";" not in response.content.decode("utf-8-sig").splitlines()[0]


async def test_the_person_may_choose_the_separator(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await _campaign(tenant_a)
    await browser.login(tenant_a.member)
    base = f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.csv"
    semicolons = await browser.client.get(f"{base}?separator=semicolon")
    rows = list(csv.reader(io.StringIO(semicolons.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows[0]) == 9 + 21 + 5
    assert rows[1][9 + 21] == "2,3"
    refused = await browser.client.get(f"{base}?separator=pipe")
    assert refused.status_code == 422
    assert "Choose a semicolon or a comma as separator." in refused.text


def _separator_form(page: str) -> tuple[str, str, str, list[str]]:
    """The campaign page's CSV form: its method, its action, the separator selected and
    the separators offered."""
    form = re.search(
        r'<form method="(\w+)" action="([^"]+)"[^>]*>(?:(?!</form>).)*?'
        r'<select id="csv-separator" name="separator">((?:(?!</select>).)*)</select>',
        page,
        re.S,
    )
    assert form is not None, "no separator choice on the page"
    options = re.findall(r'<option value="(\w+)"( selected)?>', form.group(3))
    selected = [value for value, chosen in options if chosen]
    assert len(selected) == 1
    return form.group(1), form.group(2), selected[0], [value for value, _ in options]


async def test_the_export_form_offers_the_separator_chosen_by_the_persons_language(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    """The campaign page's CSV download is a form with the separator to choose, preselected
    for the person's spreadsheet; what they choose is what the file has."""
    campaign = await _campaign(tenant_a)
    base = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(tenant_a.member)  # an English account
    page = (await browser.client.get(base)).text
    assert _separator_form(page) == ("get", f"{base}/results.csv", "comma", ["semicolon", "comma"])
    assert "Semicolon (Excel in French, Dutch, German)" in page
    assert "Comma (Excel in English)" in page

    french = await _french_member(tenant_a)
    await browser.login(french)
    page = (await browser.client.get(base)).text
    method, action, selected, _ = _separator_form(page)
    assert method == "get"
    assert selected == "semicolon"
    assert "Point-virgule (Excel en français, néerlandais, allemand)" in page
    # a French reader who opens the file in an English Excel picks the comma
    response = await browser.client.get(action, params={"separator": "comma"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows[0]) == 9 + 21 + 5
    assert rows[1][9 + 21] == "2.3"


@pytest.mark.usefixtures("low_threshold")
async def test_a_background_export_takes_the_separator_chosen_on_its_form(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await _campaign(tenant_a, 3)
    base = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(await _french_member(tenant_a))
    page = (await browser.client.get(base)).text
    assert _separator_form(page)[:3] == ("post", f"{base}/exports", "semicolon")
    started = await browser.post(
        f"{base}/exports", {"format": "csv", "separator": "comma"}, page=base
    )
    assert started.status_code == 303
    await held.run()
    download = await browser.client.get(f"{started.headers['location']}/download")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert len(rows) == 1 + 3
    assert len(rows[0]) == 9 + 21 + 5


@pytest.mark.parametrize("locale", ["fr", "en"])
async def test_the_template_of_each_language_imports(
    browser: Browser, tenant_a: TenantFixture, locale: str
) -> None:
    _, content = template_csv(locale)
    await browser.login(tenant_a.owner)
    response = await _upload(browser, tenant_a.slug, content)
    assert response.status_code == 303, response.text
    listing = await browser.get(f"/o/{tenant_a.slug}/learners")
    assert "Import done: 2 created, 0 updated, 0 unchanged." in listing.text
    assert "Camille Martin" in listing.text


async def test_a_semicolon_file_with_commas_in_its_cells_imports(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    """French Excel's file: `;` between cells, commas inside them (a name written
    "Martin, Camille", a decimal mark), Windows-1252."""
    content = (
        "Nom;Courriel;Matricule;Score\r\n"
        "Martin, Camille;camille@example.org;A1;2,5\r\n"
        "Benali, Karim;karim@example.org;A2;3,0\r\n"
    ).encode("cp1252")
    parsed = parse_learner_csv(content)
    assert parsed.delimiter == ";"
    assert [row.name for row in parsed.rows] == ["Martin, Camille", "Benali, Karim"]
    await browser.login(tenant_a.owner)
    response = await _upload(browser, tenant_a.slug, content)
    assert response.status_code == 303, response.text
    assert "Martin, Camille" in (await browser.get(f"/o/{tenant_a.slug}/learners")).text


def test_a_comma_file_with_quoted_semicolons_is_read_with_commas() -> None:
    content = (
        b"name,email,external_id\r\n"
        b'"Martin; Camille",camille@example.org,A1\r\n'
        b"Karim Benali,karim@example.org,A2\r\n"
    )
    parsed = parse_learner_csv(content)
    assert parsed.delimiter == ","
    assert parsed.rows[0].name == "Martin; Camille"


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
async def test_each_download_is_in_the_audit_log_with_its_rows(
    browser: Browser, tenant_a: TenantFixture, export_format: str
) -> None:
    campaign = await _campaign(tenant_a, 2)
    await browser.login(tenant_a.member)
    before = await audit_actions(tenant_a.id)
    response = await browser.client.get(
        f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.{export_format}"
    )
    assert response.status_code == 200
    assert await audit_actions(tenant_a.id) == [*before, "campaign.results_exported"]
    details = await _details(tenant_a)
    assert details["actor_label"] == tenant_a.member.email
    assert details["target_id"] == str(campaign.id)
    assert (details["format"], details["rows"]) == (export_format, 2)
    assert details["file"] == f"{campaign.code}-results.{export_format}"
    # The owner reads it on the console's audit page, in words.
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/audit")
    assert page.status_code == 200
    assert tenant_a.member.email in page.text
    assert f"{campaign.code}-results.{export_format}" in page.text


async def test_another_tenants_export_records_nothing(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await _campaign(tenant_b, 1)
    before_a, before_b = await audit_actions(tenant_a.id), await audit_actions(tenant_b.id)
    await browser.login(tenant_a.owner)
    for export_format in ("csv", "xlsx"):
        response = await browser.client.get(
            f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.{export_format}"
        )
        assert response.status_code == 404
    assert await audit_actions(tenant_a.id) == before_a
    assert await audit_actions(tenant_b.id) == before_b


@pytest.fixture
def low_threshold(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JALON_EXPORT_BACKGROUND_THRESHOLD", "2")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.usefixtures("low_threshold")
async def test_a_background_exports_file_download_is_audited_in_the_persons_dialect(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await _campaign(tenant_a, 3)
    person = await _french_member(tenant_a)
    base = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(person)
    started = await browser.post(f"{base}/exports", {"format": "csv"}, page=base)
    assert started.status_code == 303
    location = started.headers["location"]
    await held.run()
    before = await audit_actions(tenant_a.id)
    download = await browser.client.get(f"{location}/download")
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 1 + 3
    assert len(rows[0]) == 9 + 21 + 5
    assert await audit_actions(tenant_a.id) == [*before, "task.file_downloaded"]
    details = await _details(tenant_a)
    assert (details["actor_label"], details["rows"]) == (person.email, 3)
    assert details["file"] == f"{campaign.code}-results.csv"


async def test_a_workbook_keeps_numbers_as_numbers_whatever_the_language(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await _campaign(tenant_a, 1)
    await browser.login(await _french_member(tenant_a))
    response = await browser.client.get(f"/o/{tenant_a.slug}/campaigns/{campaign.id}/results.xlsx")
    rows = list(
        openpyxl.load_workbook(io.BytesIO(response.content))
        .worksheets[0]
        .iter_rows(values_only=True)
    )
    assert rows[1][9 + 21] == AREA_1


@pytest.mark.parametrize(
    ("locale", "delimiter"), [("fr", ";"), ("nl", ";"), ("de", ";"), ("en", ",")]
)
def test_the_import_template_uses_the_exports_separator(locale: str, delimiter: str) -> None:
    """The template to fill in is written with the separator the person's spreadsheets read,
    as the exports are (Dutch and German included)."""
    _, content = template_csv(locale)
    first_line = content.decode("utf-8-sig").splitlines()[0]
    assert first_line.count(delimiter) == 3
