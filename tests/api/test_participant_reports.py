"""Reporting a problem on a challenge over HTTP: a disclosure in the challenge's own form, so
the answer in progress goes with the report and comes back checked, with a confirmation
(ADR 0013)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from campaigns.content import current_bank
from campaigns.problem_reports import forget_withdrawn
from core import database
from tests.api.conftest import Browser, audit_actions
from tests.api.test_participant import short_campaign
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant

_CHALLENGE = re.compile(r'name="challenge_id" value="([^"]+)"')
SENT = "Thank you: your report is sent to the team that writes the questions."


@pytest.fixture(autouse=True)
async def _no_flag_outlives_its_test(db: str) -> AsyncIterator[None]:
    """Flags are global: review this test's away, so no other test counts its reports."""
    yield
    async with database.global_transaction():
        await database.execute(
            """UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(),
                   recent_reports = 0, retired_at = NULL"""
        )
    forget_withdrawn()


async def _taking_part(browser: Browser, tenant: TenantFixture) -> tuple[str, str, str]:
    """Sign in a new person and start a campaign of `tenant`: (test page, challenge id, type)."""
    await browser.login(await make_user("Pat Participant"))
    campaign = await short_campaign(tenant)
    started = await browser.post(f"/c/{campaign.code}/start", {}, page=f"/c/{campaign.code}")
    assert started.status_code == 303, started.text
    page = str(started.headers["location"])
    response = await browser.get(page)
    match = _CHALLENGE.search(response.text)
    kind = re.search(r'name="type" value="([^"]+)"', response.text)
    assert match
    assert kind
    return page, match.group(1), kind.group(1)


def _an_answer(challenge_id: str) -> list[str]:
    """Form values of an answer in progress (the first proposal, or some text)."""
    challenge = current_bank().challenge_by_id[challenge_id]
    return ["my guess"] if challenge.type == "short_text" else ["0"]


async def _report(browser: Browser, page: str, **form: Any) -> httpx.Response:
    """Send the report form, and follow its 303 back to the challenge page, as a browser does
    (Post/Redirect/Get); any other answer as it is."""
    await browser.get(page)
    response = await browser.client.post(
        f"{page}/report", data={"_csrf_token": browser.csrf, **form}
    )
    if response.status_code != 303:
        return response
    assert response.headers["location"] == page
    return await browser.get(page)


async def _stored(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await database.fetch(
            "SELECT challenge_id, category, comment, answer, locale FROM challenge_report "
            "WHERE tenant_id = $1",
            tenant.id,
        )


async def test_the_challenge_page_offers_a_report_form_that_works_without_javascript(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    page, _, _ = await _taking_part(browser, tenant_a)
    text = (await browser.get(page)).text
    assert '<details class="report"' in text
    assert "Report a problem with this question" in text
    assert f'formaction="{page}/report"' in text
    for code in ("unclear_statement", "wrong_answer_key", "broken_media", "accessibility"):
        assert f'id="f-category-{code}" name="category" value="{code}" type="radio"' in text
        assert f'<label for="f-category-{code}">' in text
    assert '<label for="f-comment">' in text
    # The answer button stays the form's default (Enter in a text answer answers).
    assert text.index('value="answer"') < text.index("/report")


async def test_a_report_comes_back_to_the_same_challenge_with_the_answer_kept(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    page, challenge_id, kind = await _taking_part(browser, tenant_a)
    given = _an_answer(challenge_id)
    response = await _report(
        browser,
        page,
        challenge_id=challenge_id,
        type=kind,
        answer=given,
        category="wrong_answer_key",
        comment="The key says B.",
        action="answer",
    )
    assert response.status_code == 200, response.text
    assert SENT in response.text
    assert f'name="challenge_id" value="{challenge_id}"' in response.text
    if kind == "short_text":
        assert 'value="my guess"' in response.text
    else:
        assert re.search(r'id="f-answer-0"[^>]*checked', response.text)
    [report] = await _stored(tenant_a)
    assert (report["challenge_id"], report["category"], report["comment"]) == (
        challenge_id,
        "wrong_answer_key",
        "The key says B.",
    )
    assert report["answer"] is not None
    assert report["locale"] == "en"
    assert "challenge.reported" in await audit_actions(tenant_a.id)
    # Nothing was answered: the same challenge is still the current one.
    assert _CHALLENGE.search((await browser.get(page)).text).group(1) == challenge_id  # type: ignore[union-attr]


async def test_a_report_without_a_category_is_refused_next_to_the_field(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    page, challenge_id, kind = await _taking_part(browser, tenant_a)
    response = await _report(
        browser,
        page,
        challenge_id=challenge_id,
        type=kind,
        answer=_an_answer(challenge_id),
        comment="Something is off.",
    )
    assert response.status_code == 422
    assert "Choose what the problem is." in response.text
    assert '<details class="report" lang="en" open>' in response.text
    assert "Something is off." in response.text  # the comment is kept
    assert 'aria-describedby="f-category-error"' in response.text
    long = await _report(
        browser,
        page,
        challenge_id=challenge_id,
        type=kind,
        category="accessibility",
        comment="x" * 1001,
    )
    assert long.status_code == 422
    assert "1000 characters at most" in long.text
    assert await _stored(tenant_a) == []


async def test_a_second_report_is_thanked_but_counted_once(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    page, challenge_id, kind = await _taking_part(browser, tenant_a)
    form = {"challenge_id": challenge_id, "type": kind, "category": "broken_media"}
    assert SENT in (await _report(browser, page, **form)).text
    again = await _report(browser, page, **form)
    assert again.status_code == 200
    assert "You had already reported this question" in again.text
    assert len(await _stored(tenant_a)) == 1


async def test_a_challenge_not_served_or_someone_elses_participation_is_not_found(
    browser: Browser, client: httpx.AsyncClient, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    page, challenge_id, kind = await _taking_part(browser, tenant_a)
    other = next(c.id for c in current_bank().challenges if c.id != challenge_id)
    response = await _report(
        browser, page, challenge_id=other, type=kind, category="unclear_statement"
    )
    assert response.status_code == 404
    # Another person, signed in, with the first one's participation.
    intruder = Browser(client)
    client.cookies.clear()
    await intruder.login(await make_user("Ivy Intruder"))
    response = await _report(
        intruder, page, challenge_id=challenge_id, type=kind, category="unclear_statement"
    )
    assert response.status_code == 404
    assert await _stored(tenant_a) == []


async def test_a_report_leaves_the_browser_on_the_challenge_page_which_reloads(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    """Post/Redirect/Get: the report answers 303 to the challenge page; reloading that page
    is a 200 without the confirmation again, and the report's own address leads there too."""
    page, challenge_id, kind = await _taking_part(browser, tenant_a)
    await browser.get(page)
    posted = await browser.client.post(
        f"{page}/report",
        data={
            "_csrf_token": browser.csrf,
            "challenge_id": challenge_id,
            "type": kind,
            "category": "wrong_answer_key",
        },
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == page
    shown = await browser.get(page)
    assert shown.status_code == 200
    assert SENT in shown.text
    reloaded = await browser.get(page)
    assert reloaded.status_code == 200
    assert SENT not in reloaded.text
    bookmarked = await browser.get(f"{page}/report")
    assert bookmarked.status_code == 303
    assert bookmarked.headers["location"] == page
