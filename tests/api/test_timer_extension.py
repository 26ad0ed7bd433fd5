"""More time on a timed question (WCAG 2.2.1, "Timing Adjustable"): the participant extends the
limit with one button, as often as needed; the server records it, so an answer within the new
time is not late. Another person, or another organization's participant, extends nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Litestar

from campaigns.content import current_bank
from campaigns.participation.rules import (
    TIMER_EXTENSION_CAP,
    TIMER_GRACE_SECONDS,
    extended_seconds_left,
    time_is_up,
)
from core import database
from engine import Challenge
from tests.api.conftest import Browser, browser_on
from tests.api.test_participant import _participant, _start, right_answer, short_campaign
from tests.conftest import TenantFixture
from tests.db import as_tenant


def _timed(seconds: int | None = 90) -> Challenge:
    """A challenge of the bank with this time limit (`None`: one without)."""
    return next(c for c in current_bank().challenges if c.timer_seconds == seconds)


async def _show(tenant_id: Any, participation_id: str, challenge: Challenge, ago: int) -> None:
    """Set-up: the engine's choice is replaced by `challenge`, shown `ago` seconds ago."""
    async with as_tenant(tenant_id):
        await database.execute(
            "UPDATE assessment SET current_challenge_id = $3, "
            "current_shown_at = now() - make_interval(secs => $4) "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant_id,
            UUID(participation_id),
            challenge.id,
            float(ago),
        )


async def _seconds_shown(tenant_id: Any, participation_id: str) -> float:
    async with as_tenant(tenant_id):
        rows = await database.fetch(
            "SELECT extract(epoch FROM now() - current_shown_at) AS shown FROM assessment "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant_id,
            UUID(participation_id),
        )
    return float(rows[0]["shown"])


async def _more_time(browser: Browser, page: str, challenge: Challenge, **form: Any) -> Any:
    return await browser.post(
        f"{page}/more-time",
        {"challenge_id": challenge.id, "type": challenge.type, **form},
        page=page,
    )


def test_more_time_adds_the_whole_time_to_what_is_left_up_to_a_cap() -> None:
    assert extended_seconds_left(90, 30.0) == 150.0  # 60 s left, plus 90
    assert extended_seconds_left(90, 93.0) == 90.0  # up, within the grace: the whole time
    assert not time_is_up(90, 90.0 + TIMER_GRACE_SECONDS)
    assert time_is_up(90, 90.5 + TIMER_GRACE_SECONDS)  # past it: refused, see below
    assert extended_seconds_left(90, -800.0) == TIMER_EXTENSION_CAP * 90  # never more than this


async def test_the_challenge_page_offers_more_time_on_a_timed_question_only(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, length=3)
    await _participant(browser)
    page = await _start(browser, campaign)
    # the engine's first choice may be timed or not: each is shown on purpose
    await _show(tenant_a.id, page.rsplit("/", 1)[1], _timed(None), ago=10)
    untimed = await browser.get(page)
    assert "More time" not in untimed.text
    await _show(tenant_a.id, page.rsplit("/", 1)[1], _timed(), ago=10)
    shown = await browser.get(page)
    assert f'formaction="{page}/more-time"' in shown.text
    assert "Adds 90 seconds to the time left, as often as you need." in shown.text


async def test_more_time_is_refused_once_the_time_is_up(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    """WCAG 2.2.1 extends a limit before it runs out: afterwards, more time would turn a late
    answer into one on time. The page no longer offers it; the server refuses it."""
    campaign = await short_campaign(tenant_a, length=3)
    await _participant(browser)
    page = await _start(browser, campaign)
    participation_id = page.rsplit("/", 1)[1]
    timed = _timed()
    await _show(tenant_a.id, participation_id, timed, ago=100)  # up, grace included
    shown = await browser.get(page)
    assert f'formaction="{page}/more-time"' not in shown.text
    refused = await _more_time(browser, page, timed, **right_answer(timed.id))
    assert refused.status_code == 303
    assert refused.headers["location"] == page
    assert "The time for this question is up." in (await browser.get(page)).text
    assert 99 <= await _seconds_shown(tenant_a.id, participation_id) <= 103  # unchanged
    form = {"challenge_id": timed.id, "type": timed.type, **right_answer(timed.id)}
    answered = await browser.post(page, form, page=page)
    after = await browser.get(answered.headers["location"])
    assert "The time for that question was up" in after.text


async def test_an_answer_after_the_first_time_but_within_the_extended_time_is_not_late(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, length=3)
    await _participant(browser)
    page = await _start(browser, campaign)
    participation_id = page.rsplit("/", 1)[1]
    timed = _timed()
    await _show(tenant_a.id, participation_id, timed, ago=80)  # 10 s left
    await browser.get(page)
    answer = right_answer(timed.id)
    extended = await _more_time(browser, page, timed, **answer)
    assert extended.status_code == 303
    assert extended.headers["location"] == page
    shown = await browser.get(page)
    assert "You have more time for this question. Your answer in progress is kept." in shown.text
    assert "1:40" in shown.text or "1:39" in shown.text  # what was left plus the whole time
    if timed.type != "short_text":  # the answer in progress comes back checked
        assert f'value="{answer["answer"][0]}" type=' in shown.text
        assert "checked" in shown.text
    assert -11.0 <= await _seconds_shown(tenant_a.id, participation_id) <= -8.0
    await _show(tenant_a.id, participation_id, timed, ago=-10 + 95)  # 95 s later
    form = {"challenge_id": timed.id, "type": timed.type, **answer}
    answered = await browser.post(page, form, page=page)
    assert answered.status_code == 303
    after = await browser.get(answered.headers["location"])
    assert "The time for that question was up" not in after.text
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT correct FROM answer WHERE tenant_id = $1 AND participation_id = $2 "
            "AND challenge_id = $3",
            tenant_a.id,
            UUID(participation_id),
            timed.id,
        )
    assert [r["correct"] for r in rows] == [True]


async def test_more_time_can_be_asked_again_and_again_up_to_the_cap(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, length=3)
    await _participant(browser)
    page = await _start(browser, campaign)
    participation_id = page.rsplit("/", 1)[1]
    timed = _timed()
    await _show(tenant_a.id, participation_id, timed, ago=30)  # 60 s left
    await browser.get(page)
    await _more_time(browser, page, timed)
    left = 90 - await _seconds_shown(tenant_a.id, participation_id)
    assert 147 <= left <= 150  # 60 + 90
    for _ in range(TIMER_EXTENSION_CAP + 2):
        await browser.get(page)
        assert (await _more_time(browser, page, timed)).status_code == 303
    left = 90 - await _seconds_shown(tenant_a.id, participation_id)
    assert TIMER_EXTENSION_CAP * 90 - 3 <= left <= TIMER_EXTENSION_CAP * 90
    shown = await browser.get(page)
    assert "15:00" in shown.text or "14:59" in shown.text


async def test_more_time_on_a_question_that_is_not_current_or_not_timed_changes_nothing(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, length=3)
    await _participant(browser)
    page = await _start(browser, campaign)
    participation_id = page.rsplit("/", 1)[1]
    other = _timed(60)
    await _show(tenant_a.id, participation_id, _timed(), ago=30)
    await browser.get(page)
    refused = await _more_time(browser, page, other)
    assert refused.status_code == 303
    shown = await browser.get(page)
    assert "This is not the current question." in shown.text
    assert 29 <= await _seconds_shown(tenant_a.id, participation_id) <= 33
    untimed = next(c for c in current_bank().challenges if c.timer_seconds is None)
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE assessment SET current_challenge_id = $3 "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant_a.id,
            UUID(participation_id),
            untimed.id,
        )
    await browser.get(page)
    await _more_time(browser, page, untimed)
    assert "This question is not timed." in (await browser.get(page)).text


async def test_another_person_or_organization_cannot_extend_a_participants_time(
    app: Litestar, browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, length=3)
    await _participant(browser)
    page = await _start(browser, campaign)
    participation_id = page.rsplit("/", 1)[1]
    timed = _timed()
    await _show(tenant_a.id, participation_id, timed, ago=30)
    form = {"challenge_id": timed.id, "type": timed.type}
    async with browser_on(app) as stranger:
        await _participant(stranger)
        await stranger.get("/me/results")
        for target in (page, page.replace(tenant_a.slug, tenant_b.slug)):
            refused = await stranger.post(f"{target}/more-time", form)
            assert refused.status_code == 404  # not theirs, alike for missing
    # the tenant B's owner, on their own organization's address, reaches nothing either
    async with browser_on(app) as owner_b:
        await owner_b.login(tenant_b.owner)
        await owner_b.get("/me/results")
        target = page.replace(tenant_a.slug, tenant_b.slug)
        refused = await owner_b.post(f"{target}/more-time", form)
        assert refused.status_code == 404
    assert 29 <= await _seconds_shown(tenant_a.id, participation_id) <= 33
