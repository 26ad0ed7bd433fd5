"""What the participant's answer cycle costs the database, counted over HTTP (ADR 0023).

A cycle is what a participant does for each question: GET the test page, then POST the answer
form and get the 303. A request opens one transaction at most, the account and the organization
read in the page's own (`core.database.transaction_count` counts them), where it took three
(and with asyncpg's reset on each release, twelve round trips of transaction control alone a
cycle). The GET that follows an answer's redirect opens none: it shows the page the answer
just wrote, kept by the process for that session (ADR 0023, addendum 5). So the first cycle
opens two, and each one after it one.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from litestar import Request

from api.routes import participant
from campaigns.participation.answering import ChallengeView
from core import database
from tenants import organizations
from tests.api.conftest import Browser, browser_on
from tests.api.test_participant import _participant, _start, right_answer, short_campaign
from tests.conftest import TenantFixture, make_user
from web.sessions import Session

_CHALLENGE = re.compile(r'name="challenge_id" value="([^"]+)"')
_TYPE = re.compile(r'name="type" value="([^"]+)"')
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
#: On a timed question's page only.
_TIMED = 'class="timer notice"'

#: The most transactions a cycle (GET and POST together) may open: the issue's bound.
MAX_TRANSACTIONS_PER_CYCLE = 3


@pytest.fixture(autouse=True)
def _slow_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy CI machine may take seconds between an answer and its redirect: the kept page
    must not go stale in these tests unless they say so."""
    monkeypatch.setattr(participant, "ANSWERED_PAGE_SECONDS", 60.0)


async def _cycle(client: httpx.AsyncClient, page: str) -> tuple[int, httpx.Response, bool]:
    """One answer cycle as a browser makes it (a right answer); the transactions it opened,
    the POST's response, and whether the question was timed (its page writes when first
    shown, so it is never served from the answer before it)."""
    before = database.transaction_count()
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    challenge = _CHALLENGE.search(shown.text)
    kind = _TYPE.search(shown.text)
    csrf = _CSRF.search(shown.text)
    assert challenge
    assert kind
    assert csrf
    form: dict[str, Any] = {
        "_csrf_token": csrf.group(1),
        "challenge_id": challenge.group(1),
        "type": kind.group(1),
        **right_answer(challenge.group(1)),
    }
    answered = await client.post(page, data=form)
    assert answered.status_code == 303, answered.text
    return database.transaction_count() - before, answered, _TIMED in shown.text


async def test_an_answer_cycle_opens_one_transaction_per_request(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, length=8)
    await _participant(browser)
    page = await _start(browser, campaign)
    counts, expected = [], []
    for _ in range(8):
        opened, answered, timed = await _cycle(browser.client, page)
        counts.append(opened)
        # the first page, and a timed one (its clock starts), are read; the others are not
        expected.append(2 if not counts[:-1] or timed else 1)
        if answered.headers["location"] != page:
            break
    assert answered.headers["location"] == page + "/results"
    # the same at the second question and the last (the result stored with the last answer)
    assert counts == expected
    assert max(counts) <= MAX_TRANSACTIONS_PER_CYCLE


async def test_a_session_whose_account_is_gone_is_signed_out_on_the_test_page(
    browser: Browser, tenant_a: TenantFixture, owner_url: str
) -> None:
    campaign = await short_campaign(tenant_a)
    person = await _participant(browser)
    page = await _start(browser, campaign)
    assert (await browser.get(page)).status_code == 200
    owner = await asyncpg.connect(owner_url)
    try:
        await owner.execute("UPDATE user_account SET is_active = false WHERE id = $1", person.id)
        response = await browser.get(page)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
        # the session ended: signed out even once the account is back
        await owner.execute("UPDATE user_account SET is_active = true WHERE id = $1", person.id)
        assert (await browser.get(page)).status_code == 303
    finally:
        await owner.close()


async def test_an_unknown_organization_in_the_test_pages_path_is_not_found(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a)
    await _participant(browser)
    page = await _start(browser, campaign)
    participation = page.rsplit("/", 1)[1]
    for slug in ("no-such-org", "Not%20a%20slug", "x" * 60):
        assert (await browser.get(f"/p/{slug}/{participation}")).status_code == 404


#: A statement (a string's start, or after a `;`) setting a parameter for the whole session.
_SESSION_SET = re.compile(
    r"(?:\A|;)\s*SET\s+(?!LOCAL\b|TRANSACTION\b)(?:SESSION\s+)?(?:ROLE\b|[\w.\"]+\s*(?:=|TO\b))",
    re.IGNORECASE,
)
_ROOT = Path(__file__).resolve().parents[2]
_APPLICATION = ("core", "tenants", "sso", "billing", "campaigns", "engine", "web", "admin", "api")


def test_the_application_sets_nothing_for_the_session() -> None:
    """The pool gives connections back without asyncpg's `RESET ALL` (ADR 0023): safe only
    while every setting is `SET LOCAL` (gone with its transaction) and no `set_config` is
    session-wide. Any other `SET` in a string of the application's source fails here."""
    wrong = []
    for package in _APPLICATION:
        for path in (_ROOT / package).rglob("*.py"):
            if "piccolo_migrations" in path.parts:
                continue  # migrations run on the owner's own connection, not the pool
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value
                    if _SESSION_SET.search(text) or re.search(
                        r"set_config\([^)]*,\s*false\s*\)", text, re.IGNORECASE
                    ):
                        wrong.append(f"{path.relative_to(_ROOT)}: {text[:60]!r}")
    assert wrong == []


async def test_an_answer_cycle_sends_seven_statements_once_its_organization_is_known(
    browser: Browser, tenant_a: TenantFixture, statements: list[str]
) -> None:
    """The organization a slug names is remembered by the process (a hint): the next page
    sets the tenant in its `BEGIN`, and reads the person, the organization and the page's
    state in one statement (ADR 0023, addendum 3). A test page is `BEGIN` with its settings,
    that statement and `COMMIT`; an answer is `BEGIN`, that statement (the state locked and
    the answers so far), the write and `COMMIT`. No separate `SET`."""
    campaign = await short_campaign(tenant_a)
    await _participant(browser)
    page = await _start(browser, campaign)
    assert (await browser.get(page)).status_code == 200  # the slug is known from here on
    statements.clear()
    shown = await browser.get(page)
    assert shown.status_code == 200
    assert len(statements) == 3, statements
    assert statements[0].startswith("BEGIN; SET LOCAL jalon.tenant_id = ")
    assert f"'{tenant_a.id}'" in statements[0]
    assert "FROM user_account u" in statements[1]
    assert "FROM participation p" in statements[1]
    assert statements[-1] == "COMMIT"
    challenge, kind, csrf = (
        _CHALLENGE.search(shown.text),
        _TYPE.search(shown.text),
        _CSRF.search(shown.text),
    )
    assert challenge
    assert kind
    assert csrf
    statements.clear()
    answered = await browser.client.post(
        page,
        data={
            "_csrf_token": csrf.group(1),
            "challenge_id": challenge.group(1),
            "type": kind.group(1),
            **right_answer(challenge.group(1)),
        },
    )
    assert answered.status_code == 303, answered.text
    assert len(statements) == 4, statements
    assert f"'{tenant_a.id}'" in statements[0]
    assert "FROM user_account u" in statements[1]
    assert "FOR UPDATE OF p" in statements[1]
    assert statements[2].lstrip().startswith("WITH answer_row AS")
    assert statements[-1] == "COMMIT"
    assert not any(s.startswith("SET") for s in statements)


async def test_a_stale_organization_hint_never_opens_another_tenant(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    """A slug's remembered organization may be stale (an organization deleted and its slug
    taken again): the statement that reads the person confirms it, and a wrong one, even
    another tenant's, only costs a second transaction."""
    campaign = await short_campaign(tenant_a)
    await _participant(browser)
    page = await _start(browser, campaign)
    slug = tenant_a.slug
    organizations._SLUG_HINTS[slug] = tenant_b.id
    before = database.transaction_count()
    shown = await browser.get(page)
    assert shown.status_code == 200
    assert _CHALLENGE.search(shown.text)
    assert database.transaction_count() - before == 2
    assert organizations._SLUG_HINTS[slug] == tenant_a.id
    # and a hint to an organization that is gone
    organizations._SLUG_HINTS[slug] = uuid4()
    assert (await browser.get(page)).status_code == 200
    assert organizations._SLUG_HINTS[slug] == tenant_a.id


async def test_a_stale_hint_never_reads_the_hinted_tenants_rows(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture, statements: list[str]
) -> None:
    """The page's state is read in the statement that confirms the hint (ADR 0023, addendum
    3): under a hint naming another tenant, that read must find nothing, even a participation
    of this very person in the hinted tenant. Under tenant A's slug, the person's test in
    tenant B is the same 404 as any unknown id, both for the page and for an answer."""
    campaign_a = await short_campaign(tenant_a)
    campaign_b = await short_campaign(tenant_b)
    await _participant(browser)
    page_a = await _start(browser, campaign_a)
    page_b = await _start(browser, campaign_b)
    shown_b = await browser.get(page_b)
    assert shown_b.status_code == 200
    challenge_b = _CHALLENGE.search(shown_b.text)
    assert challenge_b
    crossed = f"/p/{tenant_a.slug}/{page_b.rsplit('/', 1)[1]}"
    assert page_a.rsplit("/", 2)[1] == tenant_a.slug
    organizations._SLUG_HINTS[tenant_a.slug] = tenant_b.id  # stale: names tenant B
    statements.clear()
    assert (await browser.get(crossed)).status_code == 404
    # the joined read ran under the hint and found nothing; the tenant's own read then ran
    # under tenant A (no such participation there)
    assert any(f"'{tenant_b.id}'" in s for s in statements)
    assert organizations._SLUG_HINTS[tenant_a.slug] == tenant_a.id
    organizations._SLUG_HINTS[tenant_a.slug] = tenant_b.id
    answered = await browser.client.post(
        crossed,
        data={
            "_csrf_token": browser.csrf,
            "challenge_id": challenge_b.group(1),
            **right_answer(challenge_b.group(1)),
        },
    )
    assert answered.status_code == 404
    # tenant B's test is untouched: its first question is still the current one
    still = _CHALLENGE.search((await browser.get(page_b)).text)
    assert still
    assert still.group(1) == challenge_b.group(1)


async def _answer(browser: Browser, page: str) -> httpx.Response:
    """Answer the page's question (rightly): the POST's response."""
    shown = await browser.get(page)
    assert shown.status_code == 200, shown.text
    challenge = _CHALLENGE.search(shown.text)
    kind = _TYPE.search(shown.text)
    assert challenge
    assert kind
    return await browser.client.post(
        page,
        data={
            "_csrf_token": browser.csrf,
            "challenge_id": challenge.group(1),
            "type": kind.group(1),
            **right_answer(challenge.group(1)),
        },
    )


def _kept(browser: Browser, page: str) -> list[tuple[str, str, object]]:
    """The keys of the pages kept for `browser`'s session on `page`."""
    session_id = browser.client.cookies.get("jalon_session")
    return [key for key in participant._ANSWERED_PAGES if key[:2] == (session_id, page)]


async def _answer_keeping(browser: Browser, page: str) -> None:
    """Answer until the answer keeps the next page for this browser's session: a timed next
    question (one in twenty of the bank) is not kept, and is answered too."""
    for _ in range(4):
        answered = await _answer(browser, page)
        assert answered.headers["location"] == page, answered.headers
        if _kept(browser, page):
            return
    raise AssertionError("four timed questions in a row")


async def test_the_page_after_an_answer_is_the_one_it_wrote_served_once(
    browser: Browser, tenant_a: TenantFixture, statements: list[str]
) -> None:
    """The redirect after an answer shows the next question without a statement; the same
    page asked again reads the database, and shows the same question."""
    campaign = await short_campaign(tenant_a, length=10)
    await _participant(browser)
    page = await _start(browser, campaign)
    await _answer_keeping(browser, page)
    statements.clear()
    followed = await browser.get(page)
    assert followed.status_code == 200
    assert statements == []
    again = await browser.get(page)
    assert again.status_code == 200
    assert len(statements) == 3, statements
    assert _CHALLENGE.findall(followed.text) == _CHALLENGE.findall(again.text)
    position = re.search(r"Question (\d+)", again.text)
    assert position
    assert position.group(0) in followed.text


async def test_the_page_an_answer_kept_is_for_its_session_while_signed_in(
    app: Any, browser: Browser, tenant_a: TenantFixture, statements: list[str]
) -> None:
    """Another session of the same person reads the database; a session signed out between
    the answer and its redirect is sent to sign in; a kept page goes stale after
    `ANSWERED_PAGE_SECONDS`."""
    campaign = await short_campaign(tenant_a, length=20)
    person = await _participant(browser)
    page = await _start(browser, campaign)
    async with browser_on(app) as other:
        await other.login(person)
        await _answer_keeping(browser, page)
        statements.clear()
        assert (await other.get(page)).status_code == 200
        assert "FROM user_account u" in statements[1]  # not the first session's kept page
        statements.clear()
        assert (await browser.get(page)).status_code == 200
        assert statements == []  # still there for the session that answered

        assert (await _answer(browser, page)).status_code == 303
        assert (
            await browser.client.post("/logout", data={"_csrf_token": browser.csrf})
        ).status_code == 303
        signed_out = await browser.get(page)
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/login")

        await _answer_keeping(other, page)
        for key in _kept(other, page):
            kept = participant._ANSWERED_PAGES[key]
            participant._ANSWERED_PAGES[key] = dataclasses.replace(kept, deadline=0.0)
        statements.clear()
        assert (await other.get(page)).status_code == 200
        assert "FROM user_account u" in statements[1]  # stale: read again


async def test_a_kept_page_is_only_for_its_connection_and_its_person_and_any_form_drops_it(
    browser: Browser, tenant_a: TenantFixture, statements: list[str]
) -> None:
    """Another connection of the same session (a proxy's, another worker's) reads the
    database; so does a session now signed in as someone else under the same id; and a form
    sent to the page after the answer (the same answer again, a double click) drops the kept
    page, which may no longer be the one to show."""
    campaign = await short_campaign(tenant_a, length=20)
    await _participant(browser)
    page = await _start(browser, campaign)

    await _answer_keeping(browser, page)
    (key,) = _kept(browser, page)
    elsewhere = (*key[:2], ("10.0.0.9", 4321))
    participant._ANSWERED_PAGES[elsewhere] = participant._ANSWERED_PAGES.pop(key)
    statements.clear()
    assert (await browser.get(page)).status_code == 200
    assert "FROM user_account u" in statements[1]
    assert participant._ANSWERED_PAGES.pop(elsewhere)  # left for its own connection

    await _answer_keeping(browser, page)
    (key,) = _kept(browser, page)
    someone_else = await make_user("Someone Else")
    kept = participant._ANSWERED_PAGES[key]
    participant._ANSWERED_PAGES[key] = dataclasses.replace(kept, user=someone_else)
    statements.clear()
    assert (await browser.get(page)).status_code == 200
    assert "FROM user_account u" in statements[1]
    assert not _kept(browser, page)

    shown = await browser.get(page)
    challenge, kind = _CHALLENGE.search(shown.text), _TYPE.search(shown.text)
    assert challenge
    assert kind
    form = {
        "_csrf_token": browser.csrf,
        "challenge_id": challenge.group(1),
        "type": kind.group(1),
        **right_answer(challenge.group(1)),
    }
    for _ in range(4):  # until the answer keeps its page (a timed next question is not)
        assert (await browser.client.post(page, data=form)).status_code == 303
        if _kept(browser, page):
            break
        shown = await browser.get(page)
        challenge, kind = _CHALLENGE.search(shown.text), _TYPE.search(shown.text)
        assert challenge
        assert kind
        form |= {
            "challenge_id": challenge.group(1),
            "type": kind.group(1),
            **right_answer(challenge.group(1)),
        }
    assert _kept(browser, page)
    again = await browser.client.post(page, data=form)  # the same answer, sent twice
    assert again.status_code == 409, again.text
    assert not _kept(browser, page)
    statements.clear()
    assert (await browser.get(page)).status_code == 200
    assert "FROM user_account u" in statements[1]


async def test_a_timed_question_is_never_served_from_the_answer(
    app: Any, browser: Browser, tenant_a: TenantFixture
) -> None:
    """Its page writes when it is first shown (its clock starts): an answer never keeps it."""
    person = await _participant(browser)
    request: Request[Any, Any, Any] = Request(
        scope={  # type: ignore[arg-type]
            "type": "http",
            "jalon_session": Session("a-session", {"user_id": str(person.id)}),
            "state": {"user": person},
            "client": ("127.0.0.1", 5000),
        }
    )
    untimed = _view(timer_seconds=None)
    timed = _view(timer_seconds=60)
    ctx = tenant_a.owner_ctx
    participant._keep_answered_page(request, "/p/x/untimed", ctx, untimed)
    participant._keep_answered_page(request, "/p/x/timed", ctx, timed)
    peer = ("127.0.0.1", 5000)
    assert ("a-session", "/p/x/untimed", peer) in participant._ANSWERED_PAGES
    assert ("a-session", "/p/x/timed", peer) not in participant._ANSWERED_PAGES
    participant._ANSWERED_PAGES.pop(("a-session", "/p/x/untimed", peer))


def _view(timer_seconds: int | None) -> ChallengeView:
    return ChallengeView(
        participation_id=uuid4(),
        position=2,
        max_questions=5,
        challenge_id="c",
        type="single_choice",
        locale="en",
        statement="?",
        proposals=("a", "b"),
        timer_seconds=timer_seconds,
        seconds_left=timer_seconds,
    )
