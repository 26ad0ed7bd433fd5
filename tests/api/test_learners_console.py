"""Learners in the console over HTTP: the list with its search and pages, the import of a CSV
upload and its report, the template file; who may do what."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest

from campaigns.learner_csv import parse_learner_csv
from campaigns.learner_import import SYNC_MAX_ROWS, import_learners
from core import database, jobs
from tests.api.conftest import Browser, audit_actions
from tests.conftest import TenantFixture
from tests.db import as_tenant

GOOD = (
    b"name,email,external_id,groups\r\n"
    b"Camille Martin,camille@example.org,A1,Accounting|Lyon\r\n"
    b"Karim Benali,karim@example.org,A2,Lyon\r\n"
)


@pytest.fixture
def queue(db: str) -> Iterator[jobs.InProcessQueue]:
    """Jobs in this process (the HTTP tests' app may have left a Redis queue in place)."""
    previous = jobs.get_queue()
    in_process = jobs.configure_queue(None)
    assert isinstance(in_process, jobs.InProcessQueue)
    yield in_process
    jobs.use_queue(previous)


async def _upload(
    browser: Browser,
    slug: str,
    content: bytes,
    filename: str = "learners.csv",
    *,
    check_only: bool = False,
) -> httpx.Response:
    """Send the import form from the learners page, with its CSRF token."""
    page = f"/o/{slug}/learners"
    await browser.get(page)
    data = {"_csrf_token": browser.csrf}
    if check_only:
        data["check_only"] = "yes"
    response = await browser.client.post(
        f"{page}/import", data=data, files={"file": (filename, content, "text/csv")}
    )
    return await _report_of(browser, response)


async def _report_of(browser: Browser, response: httpx.Response) -> httpx.Response:
    """The report page an import's 303 leads to (Post/Redirect/Get), as a browser follows it;
    any other answer as it is."""
    if response.status_code == 303 and response.headers["location"].endswith("/learners/import"):
        return await browser.get(response.headers["location"])
    return response


async def _names(tenant: TenantFixture) -> list[str]:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT name FROM learner WHERE tenant_id = $1 ORDER BY name", tenant.id
        )
    return [row["name"] for row in rows]


def _report_rows(html: str) -> list[tuple[str, ...]]:
    """(line, column, value, problem) of each row of the report table, tags stripped."""
    body = html.split('<table class="data import-report">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</tr>", body, flags=re.S)
    cells = []
    for row in rows:
        parts = re.split(r"</th>|</td>", row)
        cells.append(tuple(" ".join(re.sub(r"<[^>]+>", " ", p).split()) for p in parts[:4]))
    return cells


async def test_an_owner_imports_a_file_and_sees_the_learners(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/learners"
    empty = await browser.get(page)
    assert empty.status_code == 200
    assert "No learner yet." in empty.text
    assert 'enctype="multipart/form-data"' in empty.text
    response = await _upload(browser, tenant_a.slug, GOOD)
    assert response.status_code == 303
    assert response.headers["location"] == page
    listing = await browser.get(page)
    assert "Import done: 2 created, 0 updated, 0 unchanged." in listing.text
    assert "Camille Martin" in listing.text
    assert "karim@example.org" in listing.text
    assert (await audit_actions(tenant_a.id))[-1] == "learners.imported"
    again = await _upload(browser, tenant_a.slug, GOOD)
    assert again.status_code == 303
    assert "0 created, 0 updated, 2 unchanged." in (await browser.get(page)).text


async def test_the_report_lists_every_bad_line_and_nothing_is_written(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    before = await audit_actions(tenant_a.id)
    content = (
        "Nom;Courriel;Matricule\n"
        "Anne Lévy;anne@example.org;M1\n"
        ";sans-nom@example.org;M2\n"
        "Bob;pas-une-adresse;M3\n"
        "Chloé;ANNE@example.org;M4\n"
    ).encode()
    response = await _upload(browser, tenant_a.slug, content, "équipe.csv")
    assert response.status_code == 422
    assert "3 rows of 4 must be fixed. Nothing has been imported" in response.text
    assert "équipe.csv" in response.text
    assert _report_rows(response.text) == [
        ("3", "Nom (A)", "", "The name is missing."),
        ("4", "Courriel (B)", "pas-une-adresse", "This email address is not valid."),
        ("5", "Courriel (B)", "ANNE@example.org", "This email address is already on line 2."),
    ]
    assert await _names(tenant_a) == []
    assert await audit_actions(tenant_a.id) == before


async def test_the_report_speaks_the_persons_language(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    await browser.post("/locale", {"locale": "fr"}, page=f"/o/{tenant_a.slug}/learners")
    response = await _upload(browser, tenant_a.slug, b"nom;email\nBob;faux\n")
    assert response.status_code == 422
    # ngettext since 623621a (issue 14, defect 9): one row is singular, agreed in French.
    assert "1 ligne sur 1 doit être corrigée." in response.text
    assert "Cette adresse e-mail n’est pas valide." in response.text


async def test_unreadable_files_get_a_clear_message(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    cases: list[tuple[bytes, str]] = [
        (b"", "The file is empty."),
        (b"email,groups\nx@example.org,a\n", "The file has no name column."),
        ("nom;email\nAnn\x81e;a@example.org\n".encode("latin-1"), "encoding is not recognised"),
        (b"PK\x03\x04\x14\x00\x06\x00", "This is a spreadsheet workbook, not a CSV file."),
        (os.urandom(10 * 1024 * 1024), "This file is larger than 5 MB."),
    ]
    for content, message in cases:
        response = await _upload(browser, tenant_a.slug, content)
        assert response.status_code == 422, message
        assert "The file was not imported: nothing has changed." in response.text
        assert message in response.text.replace("&#39;", "’").replace("&#x27;", "’")
    page = f"/o/{tenant_a.slug}/learners"
    await browser.get(page)
    response = await _report_of(
        browser,
        await browser.client.post(f"{page}/import", data={"_csrf_token": browser.csrf}),
    )
    assert response.status_code == 422
    assert "Choose a CSV file to import." in response.text
    assert await _names(tenant_a) == []


async def test_a_check_only_run_says_what_would_change(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    response = await _upload(browser, tenant_a.slug, GOOD, check_only=True)
    assert response.status_code == 200
    assert "Importing it would add 2 learners and update 0" in response.text
    assert await _names(tenant_a) == []


async def test_windows_1252_files_are_read_and_flagged(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    content = "nom;email\nFrançois Pérez;francois@example.org\n".encode("cp1252")
    response = await _upload(browser, tenant_a.slug, content, check_only=True)
    assert response.status_code == 200
    assert "The file was read as Windows-1252" in response.text
    assert (await _upload(browser, tenant_a.slug, content)).status_code == 303
    assert await _names(tenant_a) == ["François Pérez"]


async def test_the_list_searches_filters_and_pages(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    rows = "".join(
        f"Person {i:02},p{i}@example.org,{'North' if i % 2 else 'South'}\n" for i in range(60)
    )
    await import_learners(tenant_a.owner_ctx, f"name,email,groups\n{rows}".encode())
    await browser.login(tenant_a.member)
    page = f"/o/{tenant_a.slug}/learners"
    first = await browser.get(page)
    assert "60 learners in the organization." in first.text
    assert "Person 49" in first.text
    assert "Person 50" not in first.text
    cursor = re.search(r"cursor=([\w-]+)", first.text)
    assert cursor
    second = await browser.get(f"{page}?cursor={cursor.group(1)}")
    assert "Person 50" in second.text
    assert "Person 49" not in second.text
    assert "Next learners" not in second.text
    found = await browser.get(f"{page}?q=P7%40EXAMPLE")
    assert "p7@example.org" in found.text
    assert "p17@example.org" not in found.text
    north = await browser.get(f"{page}?group=North")
    assert "Person 01" in north.text
    assert "Person 02" not in north.text
    forged = await browser.get(f"{page}?cursor=forged")
    assert forged.status_code == 422
    assert "This page link is not valid." in forged.text


async def test_a_bad_search_is_told_beside_the_search_field(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    response = await browser.get(f"/o/{tenant_a.slug}/learners?q={'x' * 201}")
    assert response.status_code == 422
    assert '<p class="field-error" id="f-q-error">' in response.text
    assert 'aria-describedby="f-q-error"' in response.text


async def test_a_plain_member_reads_but_cannot_import(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await import_learners(tenant_a.owner_ctx, GOOD)
    await browser.login(tenant_a.member)
    page = f"/o/{tenant_a.slug}/learners"
    listing = await browser.get(page)
    assert listing.status_code == 200
    assert "Camille Martin" in listing.text
    assert "Import learners" not in listing.text
    before = await audit_actions(tenant_a.id)
    refused = await _upload(browser, tenant_a.slug, GOOD.replace(b"Camille", b"Changed"))
    assert refused.status_code == 403
    assert (await browser.get(f"{page}/template.csv")).status_code == 403
    assert await _names(tenant_a) == ["Camille Martin", "Karim Benali"]
    assert await audit_actions(tenant_a.id) == before


async def test_another_organizations_learners_are_a_404(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await import_learners(tenant_b.owner_ctx, GOOD)
    await browser.login(tenant_a.owner)
    assert (await browser.get(f"/o/{tenant_b.slug}/learners")).status_code == 404
    await browser.get(f"/o/{tenant_a.slug}/learners")
    response = await browser.client.post(
        f"/o/{tenant_b.slug}/learners/import",
        data={"_csrf_token": browser.csrf},
        files={"file": ("x.csv", GOOD.replace(b"Camille", b"Hijack"), "text/csv")},
    )
    assert response.status_code == 404
    assert await _names(tenant_b) == ["Camille Martin", "Karim Benali"]
    own = await browser.get(f"/o/{tenant_a.slug}/learners")
    assert "Camille Martin" not in own.text


async def test_the_template_downloads_in_the_persons_language(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    response = await browser.get(f"/o/{tenant_a.slug}/learners/template.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="learners.csv"' in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbfname,email,external_id,groups")
    assert len(parse_learner_csv(response.content).rows) == 2


async def test_a_large_file_goes_to_a_task_page(
    browser: Browser, tenant_a: TenantFixture, queue: jobs.InProcessQueue
) -> None:
    count = SYNC_MAX_ROWS + 1
    content = "name,email\n" + "".join(f"P{i},p{i}@example.org\n" for i in range(count))
    await browser.login(tenant_a.owner)
    response = await _upload(browser, tenant_a.slug, content.encode(), "big.csv")
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(rf"/o/{tenant_a.slug}/tasks/[0-9a-f-]{{36}}", location)
    await queue.drain()
    task = await browser.get(location)
    assert task.status_code == 200
    assert "Learner import" in task.text
    assert f"Import done: {count} created, 0 updated, 0 unchanged." in task.text
    assert len(await _names(tenant_a)) == count


@pytest.mark.parametrize(
    ("filename", "recorded"),
    [("a\x00b.csv", "ab.csv"), ("\x00\x1f\x7f", "learners.csv"), ("x" * 300 + ".csv", "x" * 200)],
)
async def test_a_file_name_with_control_characters_is_cleaned_in_the_audit_log(
    browser: Browser, tenant_a: TenantFixture, filename: str, recorded: str
) -> None:
    # The name goes into the audit entry's jsonb, which refuses a NUL: this was a 500.
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/learners"
    await browser.get(page)
    # Written by hand: httpx would percent-encode the control characters of the name.
    body = b"".join(
        [
            b'--b\r\nContent-Disposition: form-data; name="_csrf_token"\r\n\r\n',
            browser.csrf.encode(),
            b'\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="',
            filename.encode(),
            b'"\r\nContent-Type: text/csv\r\n\r\n',
            GOOD,
            b"\r\n--b--\r\n",
        ]
    )
    response = await browser.client.post(
        f"{page}/import",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 303, response.text
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT details->>'file' AS file FROM audit_event "
            "WHERE tenant_id = $1 AND action = 'learners.imported'",
            tenant_a.id,
        )
    assert [row["file"] for row in rows] == [recorded]


async def test_the_import_report_is_a_page_of_its_own_that_reloads(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    """Post/Redirect/Get: the report (a check, or refused rows) is shown by a GET page, so
    that reloading or bookmarking it never answers 405; shown once, then the form alone."""
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/learners"
    await browser.get(page)
    posted = await browser.client.post(
        f"{page}/import",
        data={"_csrf_token": browser.csrf, "check_only": "yes"},
        files={"file": ("learners.csv", GOOD, "text/csv")},
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == f"{page}/import"
    report = await browser.get(f"{page}/import")
    assert report.status_code == 200
    assert "learners.csv" in report.text
    reloaded = await browser.get(f"{page}/import")
    assert reloaded.status_code == 200
    assert "learners.csv" not in reloaded.text
    assert 'type="file"' in reloaded.text
    assert await _names(tenant_a) == []


async def test_an_import_report_shows_on_its_own_organizations_page_only(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    """A person in two organizations imports a bad file in A, then opens B's import page: A's
    rows must not appear under B; A's page still shows them, once."""
    from tenants.members import add_member

    await add_member(tenant_b.owner_ctx, tenant_a.owner, "admin")
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/learners"
    await browser.get(page)
    posted = await browser.client.post(
        f"{page}/import",
        data={"_csrf_token": browser.csrf},
        files={"file": ("alpha-secret.csv", b"name,email\nAnn,not-an-address\n", "text/csv")},
    )
    assert posted.status_code == 303
    other = await browser.get(f"/o/{tenant_b.slug}/learners/import")
    assert other.status_code == 200
    assert "alpha-secret.csv" not in other.text
    assert "not-an-address" not in other.text
    own = await browser.get(f"{page}/import")
    assert own.status_code == 422
    assert "alpha-secret.csv" in own.text
    assert "not-an-address" in own.text


async def test_a_report_of_many_bad_rows_lists_a_hundred_and_counts_the_rest(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    rows = "".join(f"Person {n},bad-{n}-{'x' * 500}\n" for n in range(300))
    response = await _upload(browser, tenant_a.slug, f"name,email\n{rows}".encode())
    assert response.status_code == 422
    assert len(_report_rows(response.text)) == 100
    assert "And 200 more problems, shown once these are fixed." in response.text
    assert "x" * 201 not in response.text
