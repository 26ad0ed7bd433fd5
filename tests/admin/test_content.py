"""The content editors' back office: the framework and the bank, a challenge's preview, the
problem-report queue (the same rules as `jalon reports`), calibration runs on two tenants'
answers, per-challenge statistics, and the import of a bank file. Content editors and
superadmins only; no tenant and no person is ever shown."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from campaigns import content as content_service
from campaigns.content import current_bank
from campaigns.participation.start import start_or_resume
from campaigns.problem_reports import forget_withdrawn, report_problem, retire
from core import database, jobs
from engine import Bank, load_bank
from tests.admin.conftest import StaffFixture, staff_login
from tests.api.conftest import Browser
from tests.campaigns.conftest import (
    Simulee,
    make_campaign,
    make_participant,
    start_a_test,
    take_test,
)
from tests.conftest import TenantFixture

DEMO = Path(content_service.DEMO_BANK)


@pytest.fixture(autouse=True)
async def _no_flag_outlives_its_test(db: str) -> AsyncIterator[None]:
    """Flags are global: each test's are reviewed away, so no other test meets a withdrawn
    challenge (as tests/campaigns/test_problem_reports.py does)."""
    yield
    async with database.global_transaction():
        await database.execute(
            """UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(),
                   recent_reports = 0, retired_at = NULL"""
        )
    forget_withdrawn()


@pytest.fixture
async def editor(browser: Browser, content_editor: StaffFixture) -> Browser:
    await staff_login(browser, content_editor)
    return browser


async def _trail(actor: StaffFixture) -> list[dict[str, Any]]:
    async with database.global_transaction():
        rows = await database.fetch(
            """SELECT action, reason, organization_id, target_id, details FROM staff_audit
               WHERE staff_user_id = $1 ORDER BY occurred_at, id""",
            actor.user.id,
        )
    return [dict(row) for row in rows]


async def _drain() -> None:
    queue = jobs.get_queue()
    assert isinstance(queue, jobs.InProcessQueue)  # the `in_process` fixture's
    await queue.drain()


# --- permissions ---------------------------------------------------------------------------

PAGES = [
    "/admin/content",
    "/admin/content/challenges",
    "/admin/content/challenges/ch-1.1-001",
    "/admin/content/stats",
    "/admin/content/reports",
    "/admin/content/calibration",
    "/admin/content/import",
]


async def test_content_pages_are_for_content_editors_and_superadmins(
    browser: Browser,
    content_editor: StaffFixture,
    superadmin: StaffFixture,
    account_manager: StaffFixture,
    support: StaffFixture,
    tenant_a: TenantFixture,
) -> None:
    for staff in (content_editor, superadmin):
        await staff_login(browser, staff)
        for path in PAGES:
            response = await browser.get(path)
            assert response.status_code == 200, (staff.role, path, response.text[:300])
        browser.client.cookies.clear()
    for staff in (account_manager, support):
        await staff_login(browser, staff)
        for path in PAGES:
            assert (await browser.get(path)).status_code == 403, (staff.role, path)
        response = await browser.post(
            "/admin/content/calibration", {"model": "2PL", "min_answers": "1"}, page="/admin"
        )
        assert response.status_code == 403
        browser.client.cookies.clear()
    await browser.login(tenant_a.owner)
    for path in PAGES:
        assert (await browser.get(path)).status_code == 404, path


# --- the framework, the bank, the preview ---------------------------------------------------


async def test_the_framework_counts_challenges_per_competence(editor: Browser) -> None:
    bank = current_bank()
    page = (await editor.get("/admin/content")).text
    for competence in bank.competences.values():
        assert competence.code in page
        assert competence.title["en"] in page
    assert bank.version in page
    some_tube = next(iter(bank.tubes.values()))
    assert some_tube.skills[0].code in page


async def test_the_bank_filters_by_competence_type_status_language_and_statement(
    editor: Browser,
) -> None:
    bank = current_bank()
    page = (await editor.get("/admin/content/challenges?competence=1.1")).text
    in_competence = [c.id for c in bank.challenges if bank.skills[c.skill].competence == "1.1"]
    assert all(cid in page for cid in in_competence)
    other = next(c.id for c in bank.challenges if bank.skills[c.skill].competence != "1.1")
    assert other not in page
    first = bank.challenge_by_id["ch-1.1-001"]
    page = (await editor.get("/admin/content/challenges?search=library+LYON")).text
    assert "ch-1.1-001" in page
    assert first.statement["en"][:30] in page
    page = (await editor.get("/admin/content/challenges?search=zzzqqq")).text
    assert "No challenge matches these filters." in page
    short = [c.id for c in bank.challenges if c.type == "short_text"]
    page = (await editor.get("/admin/content/challenges?type=short_text&locale=fr")).text
    assert all(cid in page for cid in short)
    assert "ch-1.1-001" not in page
    page = (await editor.get("/admin/content/challenges?status=active")).text
    assert "ch-1.1-001" in page


async def test_bad_filters_are_refused_with_a_message(editor: Browser) -> None:
    for query, message in [
        ("competence=9.9", "Choose a competence of the bank."),
        ("status=lost", "Choose a status."),
        ("locale=xx", "Choose a language of the bank."),
        ("type=essay", "Choose a type of question."),
        ("page=0", "Choose a page number."),
        ("search=" + "a" * 201, "Search with 200 characters at most."),
    ]:
        response = await editor.get(f"/admin/content/challenges?{query}")
        assert response.status_code == 422, query
        assert message in response.text, query


async def test_the_bank_is_paged(editor: Browser) -> None:
    bank = current_bank()
    if len(bank.challenges) <= 50:
        pytest.skip("the demo bank fits on one page")  # pragma: no cover
    first = (await editor.get("/admin/content/challenges")).text
    second = (await editor.get("/admin/content/challenges?page=2")).text
    assert bank.challenges[0].id in first
    assert bank.challenges[0].id not in second
    assert bank.challenges[50].id in second
    assert 'rel="prev"' in second


async def test_a_challenge_is_previewed_in_each_of_its_languages(editor: Browser) -> None:
    challenge = current_bank().challenge_by_id["ch-1.1-001"]
    english = (await editor.get("/admin/content/challenges/ch-1.1-001")).text
    assert challenge.statement["en"].replace("’", "&#39;")[:40] in english or (
        challenge.statement["en"][:40] in english
    )
    for proposal in challenge.proposals["en"]:
        assert proposal in english
    assert 'type="radio"' in english
    assert "Choose one answer." in english
    assert challenge.explanation["en"][:40] in english
    french = (await editor.get("/admin/content/challenges/ch-1.1-001?locale=fr")).text
    assert challenge.proposals["fr"][0] in french
    assert 'lang="fr"' in french
    assert (await editor.get("/admin/content/challenges/nope")).status_code == 404
    for locale in ("nl", "de"):  # the demo bank is in four languages since 4bf838a
        page = (await editor.get(f"/admin/content/challenges/ch-1.1-001?locale={locale}")).text
        assert challenge.proposals[locale][0] in page
        assert f'lang="{locale}"' in page
    response = await editor.get("/admin/content/challenges/ch-1.1-001?locale=es")
    assert response.status_code == 422
    assert "This question is not written in that language." in response.text


# --- the problem-report queue -----------------------------------------------------------------


async def _reported(tenant: TenantFixture, comment: str = "The key is wrong") -> str:
    """A challenge reported in `tenant`: the one its new test shows first."""
    _campaign, paula, participation, view = await start_a_test(tenant)
    await report_problem(
        paula.ctx, participation.id, view.challenge_id, "wrong_answer_key", comment
    )
    return view.challenge_id


async def _status(challenge_id: str) -> str:
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT status FROM challenge_flag WHERE challenge_id = $1", challenge_id
        )
    return str(rows[0]["status"])


async def test_the_queue_shows_reports_without_tenant_or_person(
    editor: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    challenge_id = await _reported(tenant_a, "Two answers are right")
    page = (await editor.get("/admin/content/reports")).text
    assert challenge_id in page
    assert "Two answers are right" in page
    assert "The expected answer seems wrong" in page
    for tenant in (tenant_a, tenant_b):
        assert tenant.slug not in page
        assert tenant.owner_ctx.tenant.name not in page
        assert tenant.owner.email not in page
    assert "@example.org" not in page
    bad = await editor.get("/admin/content/reports?status=lost")
    assert bad.status_code == 422
    assert "Unknown status." in bad.text


async def test_retiring_asks_for_confirmation_and_a_reason_then_restoring_undoes_it(
    editor: Browser, content_editor: StaffFixture, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    challenge_id = await _reported(tenant_a)
    path = f"/admin/content/reports/{challenge_id}"
    confirm = await editor.post(f"{path}/retire", {}, page="/admin/content/reports")
    assert confirm.status_code == 200
    assert "No test will serve this challenge any more" in confirm.text
    assert await _status(challenge_id) == "open"
    for reason, message in [("", "reason"), ("x", "reason")]:
        refused = await editor.post(
            f"{path}/retire", {"confirm": "yes", "reason": reason}, page="/admin/content/reports"
        )
        assert refused.status_code == 422
        assert 'id="f-reason-error"' in refused.text, message
        assert await _status(challenge_id) == "open"
    done = await editor.post(
        f"{path}/retire",
        {"confirm": "yes", "reason": "Answer key wrong in French"},
        page="/admin/content/reports",
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/content/reports"
    assert await _status(challenge_id) == "retired"
    assert challenge_id in await content_service_withdrawn()
    # restore: the same confirmation, a reason required
    refused = await editor.post(
        f"{path}/restore", {"confirm": "yes", "reason": ""}, page="/admin/content/reports"
    )
    assert refused.status_code == 422
    assert await _status(challenge_id) == "retired"
    done = await editor.post(
        f"{path}/restore", {"confirm": "yes", "reason": "Key fixed"}, page="/admin/content/reports"
    )
    assert done.status_code == 303
    assert await _status(challenge_id) == "reviewed"
    # restoring what is not retired, or retiring what nobody reported: not found
    again = await editor.post(
        f"{path}/restore", {"confirm": "yes", "reason": "Again"}, page="/admin/content/reports"
    )
    assert again.status_code == 404
    unknown = await editor.post(
        "/admin/content/reports/never-reported/retire",
        {"confirm": "yes", "reason": "No such flag"},
        page="/admin/content/reports",
    )
    assert unknown.status_code == 404
    trail = await _trail(content_editor)
    actions = [(row["action"], row["reason"], row["target_id"]) for row in trail]
    assert ("content.challenge.retired", "Answer key wrong in French", challenge_id) in actions
    assert ("content.challenge.restored", "Key fixed", challenge_id) in actions
    assert all(row["organization_id"] is None for row in trail)


async def content_service_withdrawn() -> frozenset[str]:
    from campaigns.problem_reports import withdrawn_challenges

    return await withdrawn_challenges()


async def _flag_row(challenge_id: str) -> dict[str, Any] | None:
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT * FROM challenge_flag WHERE challenge_id = $1", challenge_id
        )
    return dict(rows[0]) if rows else None


async def _unreported() -> str:
    """A challenge of the bank in use that has no flag (flags are global: earlier tests'
    remain, reviewed)."""
    async with database.global_transaction():
        flagged = {r["challenge_id"] for r in await database.fetch("SELECT * FROM challenge_flag")}
    return next(c.id for c in current_bank().challenges if c.id not in flagged)


async def test_a_challenge_nobody_reported_is_retired_then_restored_from_its_preview(
    editor: Browser, content_editor: StaffFixture
) -> None:
    challenge_id = await _unreported()
    preview = f"/admin/content/challenges/{challenge_id}"
    page = (await editor.get(preview)).text
    assert f'action="{preview}/retire"' in page
    assert f'action="{preview}/restore"' not in page
    assert "Retired " not in page

    # the queue's confirmation, coming back to the preview
    confirm = await editor.post(f"{preview}/retire", {}, page=preview)
    assert confirm.status_code == 200
    assert "No test will serve this challenge any more" in confirm.text
    assert f'action="{preview}/retire"' in confirm.text
    assert f'<a href="{preview}">' in confirm.text  # cancel
    assert await _flag_row(challenge_id) is None
    for reason in ("", "x"):
        refused = await editor.post(
            f"{preview}/retire", {"confirm": "yes", "reason": reason}, page=preview
        )
        assert refused.status_code == 422
        assert 'id="f-reason-error"' in refused.text
        assert await _flag_row(challenge_id) is None
    done = await editor.post(
        f"{preview}/retire", {"confirm": "yes", "reason": "Outdated since the reform"}, page=preview
    )
    assert done.status_code == 303
    assert done.headers["location"] == preview
    flag = await _flag_row(challenge_id)
    assert flag is not None
    assert (flag["status"], flag["reviewed_by"]) == ("retired", content_editor.user.id)
    # nobody reported it: no report dates are made up
    assert (flag["first_reported_at"], flag["last_reported_at"]) == (None, None)
    assert challenge_id in await content_service_withdrawn()  # selection skips it
    page = html.unescape((await editor.get(preview)).text)
    assert f"{challenge_id} is retired: no test serves it." in page  # the flash
    assert "no test serves this challenge, in any organization, until it is restored" in page
    assert f'action="{preview}/restore"' in page
    assert f'action="{preview}/retire"' not in page
    queue = html.unescape((await editor.get("/admin/content/reports?status=retired")).text)
    assert challenge_id in queue
    assert "Nobody reported it: it was retired from its preview." in queue

    # restoring: the same confirmation, a reason required, back to the preview
    confirm = await editor.post(f"{preview}/restore", {}, page=preview)
    assert confirm.status_code == 200
    assert "Tests will serve this challenge again" in confirm.text
    refused = await editor.post(
        f"{preview}/restore", {"confirm": "yes", "reason": ""}, page=preview
    )
    assert refused.status_code == 422
    assert (await _flag_row(challenge_id) or {}).get("status") == "retired"
    done = await editor.post(
        f"{preview}/restore", {"confirm": "yes", "reason": "The reform was postponed"}, page=preview
    )
    assert done.status_code == 303
    assert done.headers["location"] == preview
    assert await _status(challenge_id) == "reviewed"
    assert challenge_id not in await content_service_withdrawn()
    page = html.unescape((await editor.get(preview)).text)
    assert f"{challenge_id} is restored: it is selected again." in page
    assert f'action="{preview}/retire"' in page
    # restoring what is not retired: not found
    again = await editor.post(
        f"{preview}/restore", {"confirm": "yes", "reason": "Once more"}, page=preview
    )
    assert again.status_code == 404

    trail = [r for r in await _trail(content_editor) if r["action"].startswith("content.")]
    assert [(r["action"], r["reason"], r["target_id"]) for r in trail] == [
        ("content.challenge.retired", "Outdated since the reform", challenge_id),
        ("content.challenge.restored", "The reform was postponed", challenge_id),
    ]


async def test_a_reported_challenge_retired_from_its_preview_keeps_its_reports(
    editor: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    challenge_id = await _reported(tenant_a)
    before = await _flag_row(challenge_id)
    assert before is not None
    preview = f"/admin/content/challenges/{challenge_id}"
    done = await editor.post(
        f"{preview}/retire", {"confirm": "yes", "reason": "Answer key wrong"}, page=preview
    )
    assert done.headers["location"] == preview
    flag = await _flag_row(challenge_id)
    assert flag is not None
    assert flag["status"] == "retired"
    assert flag["first_reported_at"] == before["first_reported_at"]
    assert flag["last_reported_at"] == before["last_reported_at"]
    assert challenge_id in await content_service_withdrawn()


async def test_only_content_editors_retire_from_the_preview(
    browser: Browser,
    superadmin: StaffFixture,
    account_manager: StaffFixture,
    support: StaffFixture,
    tenant_a: TenantFixture,
) -> None:
    challenge_id = await _unreported()
    preview = f"/admin/content/challenges/{challenge_id}"
    confirmed = {"confirm": "yes", "reason": "Not mine to retire"}
    for staff in (account_manager, support):
        await staff_login(browser, staff)
        for action in ("retire", "restore"):
            for data in ({}, confirmed):
                response = await browser.post(f"{preview}/{action}", data, page="/admin")
                assert response.status_code == 403, (staff.role, action, data)
        browser.client.cookies.clear()
    await browser.login(tenant_a.owner)
    for action in ("retire", "restore"):
        response = await browser.post(f"{preview}/{action}", confirmed, page="/account")
        assert response.status_code == 404
    browser.client.cookies.clear()
    assert await _flag_row(challenge_id) is None
    # superadmins hold the content permission
    await staff_login(browser, superadmin)
    done = await browser.post(f"{preview}/retire", confirmed, page=preview)
    assert done.status_code == 303
    assert await _status(challenge_id) == "retired"


async def test_retiring_a_challenge_the_bank_does_not_hold_from_a_preview_is_a_404(
    editor: Browser,
) -> None:
    for action in ("retire", "restore"):
        for data in ({}, {"confirm": "yes", "reason": "No such challenge"}):
            response = await editor.post(
                f"/admin/content/challenges/no-such-challenge/{action}", data, page="/admin/content"
            )
            assert response.status_code == 404, (action, data)
    assert await _flag_row("no-such-challenge") is None


async def test_reviewing_serves_the_challenge_again(
    editor: Browser, content_editor: StaffFixture, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    challenge_id = await _reported(tenant_a)
    response = await editor.post(
        f"/admin/content/reports/{challenge_id}/review", {}, page="/admin/content/reports"
    )
    assert response.status_code == 303
    assert await _status(challenge_id) == "reviewed"
    assert [r["action"] for r in await _trail(content_editor)].count(
        "content.challenge.reviewed"
    ) == 1


async def test_reviewing_does_not_bring_back_a_retired_challenge(
    editor: Browser, content_editor: StaffFixture, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    """Changed deliberately: reviewing used to un-retire a challenge without the reason that
    restoring requires. A retired challenge (here from the command line) stays retired."""
    challenge_id = await _reported(tenant_a)
    await retire(content_editor.user.id, challenge_id)
    response = await editor.post(
        f"/admin/content/reports/{challenge_id}/review", {}, page="/admin/content/reports"
    )
    assert response.status_code == 409
    assert "restore it, with a reason" in html.unescape(response.text)
    assert await _status(challenge_id) == "retired"
    assert "content.challenge.reviewed" not in [r["action"] for r in await _trail(content_editor)]


# --- calibration and statistics -----------------------------------------------------------------


async def _answers(tenant: TenantFixture, people: int, bank: Bank, seed: int) -> None:
    campaign = await make_campaign(tenant)
    for n in range(people):
        person = await make_participant(tenant, f"Pat{n} Participant")
        participation = await start_or_resume(person.ctx, campaign.id)
        await take_test(person.ctx, participation.id, Simulee(bank, (n % 5) - 2.0, seed + n))


async def _tests_answered(owner_url: str, bank_version: str) -> int:
    """Every organization's tests with an answer on `bank_version`, read as the owner: what a
    calibration reads, with the tests earlier tests of the suite left in the database."""
    connection = await asyncpg.connect(owner_url)
    try:
        count: int = await connection.fetchval(
            """SELECT count(DISTINCT a.participation_id) FROM answer a
               JOIN participation p ON p.tenant_id = a.tenant_id AND p.id = a.participation_id
               JOIN campaign c ON c.tenant_id = p.tenant_id AND c.id = p.campaign_id
               WHERE c.bank_version = $1""",
            bank_version,
        )
    finally:
        await connection.close()
    return count


async def test_a_calibration_reads_every_tenants_answers_and_reports_anonymously(
    in_process: jobs.InProcessQueue,
    editor: Browser,
    content_editor: StaffFixture,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    owner_url: str,
) -> None:
    bank = current_bank()
    before_ours = await _tests_answered(owner_url, bank.version)
    await _answers(tenant_a, 4, bank, 1)
    await _answers(tenant_b, 4, bank, 100)
    tests = await _tests_answered(owner_url, bank.version)
    assert tests == before_ours + 8
    async with database.global_transaction():
        before = await database.fetch("SELECT count(*) AS n FROM calibration_run")
    for values, message in [
        ({"model": "2PL", "min_answers": "abc", "reason": "Check"}, "Enter a whole number"),
        ({"model": "2PL", "min_answers": "0", "reason": "Check"}, "Enter a whole number"),
        ({"model": "4PL", "min_answers": "2", "reason": "Check"}, "Choose a model."),
        ({"model": "2PL", "min_answers": "2", "reason": "x"}, "reason"),
    ]:
        refused = await editor.post(
            "/admin/content/calibration", values, page="/admin/content/calibration"
        )
        assert refused.status_code == 422
        assert message in refused.text
    async with database.global_transaction():
        after = await database.fetch("SELECT count(*) AS n FROM calibration_run")
    assert after[0]["n"] == before[0]["n"]
    started = await editor.post(
        "/admin/content/calibration",
        {"model": "2PL", "min_answers": "2", "reason": "Monthly check"},
        page="/admin/content/calibration",
    )
    assert started.status_code == 303
    location = started.headers["location"]
    await _drain()
    report = (await editor.get(location)).text
    assert "Done" in report
    async with database.global_transaction():
        [run] = await database.fetch(
            "SELECT * FROM calibration_run WHERE id = $1", location.rsplit("/", 1)[1]
        )
        items = await database.fetch("SELECT * FROM calibration_item WHERE run_id = $1", run["id"])
    assert run["status"] == "done"
    assert run["tests"] == tests  # both organizations' tests, and any other's
    assert run["answers"] == sum(item["answers"] for item in items) > 0
    calibrated = [item for item in items if item["calibrated"]]
    assert calibrated
    assert all(item["a"] > 0 and item["infit"] is not None for item in calibrated)
    assert calibrated[0]["challenge_id"] in report
    stats = (await editor.get("/admin/content/stats?sort=answers&order=desc")).text
    assert calibrated[0]["challenge_id"] in stats
    assert 'aria-sort="descending"' in stats
    for page in (report, stats):
        for tenant in (tenant_a, tenant_b):
            assert tenant.owner_ctx.tenant.name not in page
            assert tenant.slug not in page
        assert "pat0-" not in page
        assert "Pat0" not in page
    assert ("content.calibration.started", "Monthly check") in [
        (row["action"], row["reason"]) for row in await _trail(content_editor)
    ]
    # a second run compares with the first
    again = await editor.post(
        "/admin/content/calibration",
        {"model": "2PL", "min_answers": "2", "reason": "Second check"},
        page="/admin/content/calibration",
    )
    await _drain()
    async with database.global_transaction():
        rows = await database.fetch(
            """SELECT previous_b FROM calibration_item WHERE run_id = $1 AND calibrated""",
            again.headers["location"].rsplit("/", 1)[1],
        )
    assert rows
    assert all(row["previous_b"] is not None for row in rows)


async def test_statistics_refuse_an_unknown_sort_and_a_run_id_must_exist(
    editor: Browser,
) -> None:
    response = await editor.get("/admin/content/stats?sort=tenant")
    assert response.status_code == 422
    assert "Choose a column to sort by." in response.text
    response = await editor.get("/admin/content/stats?order=sideways")
    assert response.status_code == 422
    missing = await editor.get("/admin/content/calibration/5f0c6b1e-0000-4000-8000-000000000000")
    assert missing.status_code == 404


# --- importing a bank file ------------------------------------------------------------------------


def _single_file_bank(**changes: Any) -> dict[str, Any]:
    """The demo bank as one file (its parts inlined), with `changes` to its manifest."""
    manifest: dict[str, Any] = json.loads((DEMO / "bank.json").read_text(encoding="utf-8"))
    areas: list[Any] = []
    challenges: list[Any] = []
    for part in manifest.pop("parts"):
        data = json.loads((DEMO / part).read_text(encoding="utf-8"))
        areas.extend(data.get("areas", []))
        challenges.extend(data.get("challenges", []))
    manifest.update(areas=areas, challenges=challenges)
    manifest.update(changes)
    return manifest


@pytest.fixture
def banks_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Imports are stored in a directory of the test's own."""
    monkeypatch.setattr(content_service, "_banks_dir", lambda: tmp_path / "banks")
    return tmp_path / "banks"


async def _upload(web: Browser, data: bytes, name: str = "bank.json") -> Any:
    return await web.post(
        "/admin/content/import",
        {},
        page="/admin/content/import",
        files={"file": (name, data, "application/json")},
    )


async def test_bad_bank_files_are_refused_with_a_clear_message(
    editor: Browser, banks_dir: Path
) -> None:
    for data, message in [
        (b"", "The file is empty."),
        (b"\xff\xfe{}", "The file is not UTF-8 text"),
        (b"{not json", "The file is not JSON (line 1, column 2"),
        (b'{"format": "other"}', "The file is not a bank file (jalon-bank/1)."),
        (
            json.dumps({"format": "jalon-bank/1", "parts": ["a.json"]}).encode(),
            "Upload the bank as one file",
        ),
        (b" " * (content_service.MAX_BANK_BYTES + 1), "The file is too large: 5 MB at most."),
    ]:
        response = await _upload(editor, data)
        assert response.status_code == 422, message
        assert message in response.text, message
    # a request far over the limit is refused before it is read
    huge = await _upload(editor, b" " * (content_service.MAX_BANK_BYTES * 2))
    assert huge.status_code == 413
    assert "What you sent is too large." in huge.text
    no_file = await editor.post("/admin/content/import", {}, page="/admin/content/import")
    assert no_file.status_code == 422
    assert "Choose a bank file (JSON) to import." in no_file.text
    assert not list(banks_dir.glob("*/bank.json"))  # noqa: ASYNC240 - a test's own files


async def test_an_invalid_bank_shows_the_engines_errors_with_their_place(
    editor: Browser, banks_dir: Path
) -> None:
    bank = _single_file_bank(version="2099.1.0")
    bank["challenges"][3]["irt"]["a"] = -1
    bank["challenges"][5]["skill"] = "@nowhere1"
    response = await _upload(editor, json.dumps(bank).encode())
    assert response.status_code == 422
    assert "bank.json: challenges[3].irt.a" in response.text
    assert "must be &gt; 0" in response.text
    assert "challenges[5].skill" in response.text
    assert "/admin/content/import/confirm" not in response.text


async def test_a_valid_bank_is_compared_then_stored_once_confirmed_with_a_reason(
    editor: Browser, content_editor: StaffFixture, banks_dir: Path
) -> None:
    bank = _single_file_bank(version="2099.2.0")
    removed = bank["challenges"].pop()["id"]
    bank["challenges"][0]["irt"]["b"] = 0.5
    changed = bank["challenges"][0]["id"]
    fresh = json.loads(json.dumps(bank["challenges"][1]))
    fresh["id"] = "ch-new-001"
    bank["challenges"].append(fresh)
    response = await _upload(editor, json.dumps(bank).encode())
    assert response.status_code == 200, response.text[:2000]
    page = response.text
    assert "The file is valid: version 2099.2.0" in page
    assert removed in page
    assert changed in page
    assert "ch-new-001" in page
    assert "Challenges of the bank in use that are missing: 1." in page
    assert not (banks_dir / "2099.2.0").exists()  # nothing applied yet
    token = page.split('name="token" value="')[1].split('"')[0]
    refused = await editor.post(
        "/admin/content/import/confirm",
        {"token": token, "reason": ""},
        page="/admin/content/import",
    )
    assert refused.status_code == 422
    assert 'id="f-reason-error"' in refused.text
    assert not (banks_dir / "2099.2.0").exists()
    forged = await editor.post(
        "/admin/content/import/confirm",
        {"token": "../../etc/passwd", "reason": "New questions"},
        page="/admin/content/import",
    )
    assert forged.status_code == 422
    assert "Upload the file again." in forged.text
    done = await editor.post(
        "/admin/content/import/confirm",
        {"token": token, "reason": "New questions"},
        page="/admin/content/import",
    )
    assert done.status_code == 303
    assert load_bank(banks_dir / "2099.2.0").version == "2099.2.0"
    assert current_bank().version != "2099.2.0"  # stored, not in use
    assert "2099.2.0" in (await editor.get("/admin/content/import")).text
    [row] = [r for r in await _trail(content_editor) if r["action"] == "content.bank.imported"]
    assert row["reason"] == "New questions"
    assert row["target_id"] == "2099.2.0"
    again = await _upload(editor, json.dumps(bank).encode())
    assert again.status_code == 422
    assert "version 2099.2.0 is already stored" in again.text


async def test_a_changed_bank_needs_a_new_version(editor: Browser, banks_dir: Path) -> None:
    bank = _single_file_bank()
    bank["challenges"][0]["irt"]["b"] = 1.5
    response = await _upload(editor, json.dumps(bank).encode())
    assert response.status_code == 422
    assert "a changed bank needs a new version" in response.text


async def test_a_run_is_done_once_and_a_run_on_another_bank_version_fails_with_its_reason(
    in_process: jobs.InProcessQueue, content_editor: StaffFixture
) -> None:
    from campaigns.calibration_runs import (
        calibrate_bank,
        dangerously_calibration_report,
        dangerously_start_calibration,
    )

    run_id = await dangerously_start_calibration(content_editor.ctx, "3PL", 5)
    await in_process.drain()
    assert await calibrate_bank({}, str(run_id)) == "finished"  # delivered twice: no harm
    run, _items = await dangerously_calibration_report(content_editor.ctx, run_id)
    assert run.status == "done"
    assert run.model == "3PL"
    stale = await dangerously_start_calibration(content_editor.ctx, "2PL", 5)
    await in_process.drain()
    async with database.global_transaction():
        await database.execute(
            """UPDATE calibration_run SET status = 'queued', bank_version = 'gone'
               WHERE id = $1""",
            stale,
        )
    assert await calibrate_bank({}, str(stale)) == "failed"
    failed, items = await dangerously_calibration_report(content_editor.ctx, stale)
    assert failed.status == "failed"
    assert "not gone" in failed.error
    assert items == []


async def test_statistics_show_the_service_wide_exposure_rate(
    editor: Browser, content_editor: StaffFixture, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    from campaigns.calibration_runs import dangerously_bank_statistics
    from campaigns.exposure import refresh_exposure

    bank = current_bank()
    await _answers(tenant_a, 1, bank, 7)
    await _answers(tenant_b, 1, bank, 8)
    await refresh_exposure({})
    statistics = await dangerously_bank_statistics(content_editor.ctx, "exposure_rate", "desc")
    assert statistics.tests is not None
    assert statistics.tests >= 2
    top = statistics.items[0]
    assert top.exposure_rate is not None
    assert 0 < top.exposure_rate <= 1
    page = (await editor.get("/admin/content/stats?sort=exposure_rate&order=desc")).text
    assert f"{top.exposure_rate * 100:.1f} %" in page


async def test_a_bank_version_that_is_not_a_plain_name_is_refused(
    editor: Browser, banks_dir: Path, tmp_path: Path
) -> None:
    """The version names the directory the bank is stored in: a path or a control
    character in it is refused in the report, and nothing is written anywhere."""
    for version in ["../../escaped", "/abs", str(tmp_path / "abs"), "2099.9.0\x00x", ".hidden"]:
        response = await _upload(editor, json.dumps(_single_file_bank(version=version)).encode())
        assert response.status_code == 422, version
        assert "bank.json: version" in response.text, version
        assert "must be 1 to 64 letters, digits" in response.text, version
        assert "/admin/content/import/confirm" not in response.text, version
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "abs").exists()
    assert not list(tmp_path.rglob("bank.json"))  # noqa: ASYNC240 - a test's own files


def test_a_stored_bank_never_lands_outside_the_banks_directory(banks_dir: Path) -> None:
    from core.errors import Invalid

    assert content_service._version_dir("2099.1.0") == banks_dir / "2099.1.0"
    for version in ["../x", "/abs", "a/../../b", "x\x00y", "..", ""]:
        with pytest.raises(Invalid):
            content_service._version_dir(version)


# --- a reason to start a calibration; ids in paths that name nothing (fixer F4) -------------


async def test_a_calibration_without_a_reason_is_refused_and_nothing_queued(
    in_process: jobs.InProcessQueue, editor: Browser, content_editor: StaffFixture
) -> None:
    page = await editor.get("/admin/content/calibration")
    assert "Reason (optional)" not in page.text
    async with database.global_transaction():
        before = await database.fetch("SELECT count(*) AS n FROM calibration_run")
    for data in (
        {"model": "2PL", "min_answers": "2"},
        {"model": "2PL", "min_answers": "2", "reason": " "},
    ):
        refused = await editor.post(
            "/admin/content/calibration", data, page="/admin/content/calibration"
        )
        assert refused.status_code == 422
        assert "Give the reason for this action." in refused.text
    async with database.global_transaction():
        after = await database.fetch("SELECT count(*) AS n FROM calibration_run")
    assert after[0]["n"] == before[0]["n"]
    assert "content.calibration.started" not in [r["action"] for r in await _trail(content_editor)]
    started = await editor.post(
        "/admin/content/calibration",
        {"model": "2PL", "min_answers": "2", "reason": "Quarterly drift check"},
        page="/admin/content/calibration",
    )
    assert started.status_code == 303
    run_id = started.headers["location"].rsplit("/", 1)[1]
    async with database.global_transaction():
        [run] = await database.fetch("SELECT reason FROM calibration_run WHERE id = $1", run_id)
    assert run["reason"] == "Quarterly drift check"
    assert ("content.calibration.started", "Quarterly drift check") in [
        (row["action"], row["reason"]) for row in await _trail(content_editor)
    ]
    await _drain()


@pytest.mark.parametrize("bad", ["ab%00c", "c" * 300, "ab%0Ac"])
async def test_a_challenge_id_that_names_nothing_is_a_404_on_every_challenge_route(
    editor: Browser, bad: str
) -> None:
    assert (await editor.get(f"/admin/content/challenges/{bad}")).status_code == 404
    for action in ("review", "retire", "restore"):
        for data in ({}, {"reason": "A wrong key"}, {"confirm": "yes", "reason": "A wrong key"}):
            response = await editor.post(
                f"/admin/content/reports/{bad}/{action}", data, page="/admin/content/reports"
            )
            assert response.status_code == 404, (action, data, response.text[:300])
            if action != "review":
                response = await editor.post(
                    f"/admin/content/challenges/{bad}/{action}", data, page="/admin/content"
                )
                assert response.status_code == 404, (action, data, response.text[:300])
