"""The participant's journey over HTTP: the code, the landing page, an account, the test one
challenge per page (answers, skips, stale pages), the results, the consent to share, and the
list of one's own results."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import pytest

from api.routes.participant import CODE_LENGTH_MESSAGE, MISTYPED_MESSAGE
from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.content import current_bank
from campaigns.service import close_campaign, create_campaign
from core import database
from tests.api.conftest import PASSWORD, Browser, audit_actions
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant

_CHALLENGE = re.compile(r'name="challenge_id" value="([^"]+)"')


async def shorten(tenant_id: Any, campaign_id: Any, length: int = 3) -> None:
    """Test set-up the service does not offer: a test of `length` questions at most."""
    async with as_tenant(tenant_id):
        await database.execute(
            """UPDATE campaign SET profile_snapshot = jsonb_set(jsonb_set(profile_snapshot,
                   '{engine,max_length}', to_jsonb($3::int)), '{engine,min_length}',
                   to_jsonb($3::int))
               WHERE tenant_id = $1 AND id = $2""",
            tenant_id,
            campaign_id,
            length,
        )


async def short_campaign(tenant: TenantFixture, length: int = 3, **fields: Any) -> Campaign:
    """An active campaign of `tenant` that ends after `length` answers."""
    values: dict[str, Any] = {"name": "Quick check", "profile_key": "digcomp"}
    values.update(fields)
    campaign = await create_campaign(tenant.owner_ctx, CampaignFields(**values))
    await shorten(tenant.id, campaign.id, length)
    return campaign


def right_answer(challenge_id: str, locale: str = "en") -> dict[str, Any]:
    """The form fields of a right answer to `challenge_id`."""
    challenge = current_bank().challenge_by_id[challenge_id]
    if challenge.type == "short_text":
        assert isinstance(challenge.solution, dict)
        return {"answer": challenge.solution[locale][0]}
    assert isinstance(challenge.solution, tuple)
    return {"answer": [str(i) for i in challenge.solution]}


async def _participant(browser: Browser) -> Any:
    person = await make_user("Pat Participant")
    await browser.login(person)
    return person


async def _start(browser: Browser, campaign: Campaign, **form: str) -> str:
    """Start the campaign; the test page's path."""
    response = await browser.post(f"/c/{campaign.code}/start", form, page=f"/c/{campaign.code}")
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


async def _current(browser: Browser, page: str) -> tuple[str, str]:
    """(challenge id, type) on the test page."""
    response = await browser.get(page)
    assert response.status_code == 200, response.text
    match = _CHALLENGE.search(response.text)
    assert match
    kind = re.search(r'name="type" value="([^"]+)"', response.text)
    assert kind
    return match.group(1), kind.group(1)


# --- the code ------------------------------------------------------------------------------


async def test_the_code_form_accepts_small_letters_and_spaces(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a)
    assert (await browser.get("/c")).status_code == 200
    typed = campaign.code.lower()[:4] + " " + campaign.code.lower()[4:]
    response = await browser.get("/c", params={"code": typed})
    assert response.status_code == 303
    assert response.headers["location"] == f"/c/{campaign.code}"
    # A link with a small-letter code lands on the same page.
    response = await browser.get(f"/c/{campaign.code.lower()}")
    assert response.headers["location"] == f"/c/{campaign.code}"


@pytest.mark.parametrize(
    ("typed", "status", "message"),
    [
        ("ABCD", 422, CODE_LENGTH_MESSAGE),
        ("ABCDEFGHI", 422, MISTYPED_MESSAGE),  # I is not in the alphabet
        ("", 422, "Enter the code you were given."),
    ],
)
async def test_a_mistyped_code_is_told_clearly(
    browser: Browser, typed: str, status: int, message: str
) -> None:
    response = await browser.get("/c", params={"code": typed})
    assert response.status_code == status
    assert message in response.text
    assert 'aria-invalid="true"' in response.text


async def test_a_swapped_character_is_a_typing_mistake_and_an_unknown_code_is_not_found(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a)
    code = campaign.code
    swapped = (
        code[1] + code[0] + code[2:]
        if code[0] != code[1]
        else code[:2] + code[3] + code[2] + code[4:]
    )
    response = await browser.get("/c", params={"code": swapped})
    assert response.status_code == 422
    assert MISTYPED_MESSAGE in response.text
    response = await browser.get("/c/ABCDEFGHJ")
    assert response.status_code == 404


async def test_a_closed_campaign_says_so(browser: Browser, tenant_a: TenantFixture) -> None:
    campaign = await short_campaign(tenant_a)
    await close_campaign(tenant_a.owner_ctx, campaign.id)
    response = await browser.get(f"/c/{campaign.code}")
    assert response.status_code == 410
    assert "This campaign is closed." in response.text
    response = await browser.get("/c", params={"code": campaign.code})
    assert response.status_code == 410


# --- landing, account, start ---------------------------------------------------------------


async def test_the_landing_page_shows_the_organization_and_its_text(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, landing_text="Welcome to <our> check.")
    response = await browser.get(f"/c/{campaign.code}")
    assert response.status_code == 200
    assert "Alpha Org" in response.text
    assert "Welcome to &lt;our&gt; check." in response.text
    assert f"/login?next=/c/{campaign.code}" in response.text
    assert f"/c/{campaign.code}/account" in response.text


async def test_a_newcomer_creates_an_account_and_starts(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a)
    page = f"/c/{campaign.code}/account"
    assert (await browser.get(page)).status_code == 200
    form = {
        "name": "New Person",
        "email": "new-person@example.org",
        "password": PASSWORD,
        "password_confirm": PASSWORD + "x",
        "terms": "yes",
    }
    response = await browser.post(page, form, page=page)
    assert response.status_code == 422
    assert "The two passwords differ." in response.text
    assert "new-person@example.org" in response.text
    response = await browser.post(page, {**form, "password_confirm": PASSWORD}, page=page)
    assert response.status_code == 303
    assert response.headers["location"] == f"/c/{campaign.code}"
    landing = await browser.get(f"/c/{campaign.code}")
    assert "Signed in as New Person." in landing.text
    path = await _start(browser, campaign)
    assert path.startswith(f"/p/{tenant_a.slug}/")


async def test_signed_out_start_goes_to_sign_in_and_back(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a)
    response = await browser.post(f"/c/{campaign.code}/start", page=f"/c/{campaign.code}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2Fc%2F{campaign.code}"


async def test_the_external_id_is_asked_when_the_campaign_wants_it(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(
        tenant_a, external_id_label="Employee number", external_id_format="digits"
    )
    await _participant(browser)
    landing = await browser.get(f"/c/{campaign.code}")
    assert "Employee number" in landing.text
    refused = await browser.post(
        f"/c/{campaign.code}/start", {"external_id": "A12"}, page=f"/c/{campaign.code}"
    )
    # Post/Redirect/Get: back to the campaign's page, which shows the error and the value.
    assert refused.status_code == 303
    assert refused.headers["location"] == f"/c/{campaign.code}"
    response = await browser.get(f"/c/{campaign.code}")
    assert response.status_code == 422
    assert "Enter digits only." in response.text
    assert 'value="A12"' in response.text
    reloaded = await browser.get(f"/c/{campaign.code}")
    assert reloaded.status_code == 200
    assert "Enter digits only." not in reloaded.text
    bookmarked = await browser.get(f"/c/{campaign.code}/start")
    assert bookmarked.status_code == 303
    assert bookmarked.headers["location"] == f"/c/{campaign.code}"
    path = await _start(browser, campaign, external_id="0042")
    assert path.startswith(f"/p/{tenant_a.slug}/")


# --- the test ------------------------------------------------------------------------------


async def test_a_participant_answers_skips_finishes_and_shares(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, length=3)
    await _participant(browser)
    page = await _start(browser, campaign)
    first, kind = await _current(browser, page)
    shown = await browser.get(page)
    assert "Question 1" in shown.text
    assert "0 answered, 3 at most" in shown.text
    # Resuming (the code again) shows the same challenge.
    assert await _start(browser, campaign) == page
    assert (await _current(browser, page))[0] == first

    response = await browser.post(
        page, {"challenge_id": first, "type": kind, **right_answer(first)}, page=page
    )
    assert response.status_code == 303
    assert response.headers["location"] == page
    second, kind = await _current(browser, page)
    assert second != first

    # The first page again (a second tab): refused, the current challenge is shown again.
    stale = await browser.post(
        page, {"challenge_id": first, "type": kind, "answer": "0"}, page=page
    )
    assert stale.status_code == 409
    assert "This question has already been answered." in stale.text
    assert f'value="{second}"' in stale.text

    response = await browser.post(page, {"challenge_id": second, "action": "skip"}, page=page)
    assert response.status_code == 303
    third, kind = await _current(browser, page)
    response = await browser.post(page, {"challenge_id": third, "action": "skip"}, page=page)
    assert response.status_code == 303
    results = page + "/results"
    assert response.headers["location"] == results
    # The test page of a finished test leads to the results.
    assert (await browser.get(page)).headers["location"] == results

    shown = await browser.get(results)
    assert shown.status_code == 200
    assert "The test is over. Here are your results." in shown.text
    assert "<svg" in shown.text
    assert "<table" in shown.text
    assert "Questions to review" in shown.text
    assert shown.text.count("Skipped") >= 2

    before = await audit_actions(tenant_a.id)
    refused = await browser.post(page + "/share", {}, page=results)
    # Post/Redirect/Get: back to the results page, which shows why; a reload is a 200.
    assert refused.status_code == 303
    assert refused.headers["location"] == f"{results}#share-title"
    told = await browser.get(results)
    assert told.status_code == 422
    assert "Tick the box to agree to share your results." in told.text
    assert (await browser.get(results)).status_code == 200
    assert (await browser.get(page + "/share")).headers["location"] == results
    assert await audit_actions(tenant_a.id) == before
    shared = await browser.post(page + "/share", {"consent": "yes"}, page=results)
    assert shared.status_code == 303
    after = await browser.get(results)
    assert "Your results are shared with Alpha Org." in after.text
    assert await audit_actions(tenant_a.id) == [*before, "participation.shared"]

    mine = await browser.get("/me/results")
    assert mine.status_code == 200
    assert "Quick check" in mine.text
    assert "Alpha Org" in mine.text
    assert "Shared" in mine.text


async def test_an_answer_of_the_wrong_shape_shows_the_question_again(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a)
    await _participant(browser)
    page = await _start(browser, campaign)
    challenge, kind = await _current(browser, page)
    # Whatever challenge the engine picked: "99" is no offered choice; text has a limit.
    wrong = "x" * 501 if kind == "short_text" else "99"
    for form in (
        {"challenge_id": challenge, "type": kind, "answer": wrong},
        {"challenge_id": challenge, "type": kind},
    ):
        response = await browser.post(page, form, page=page)
        assert response.status_code == 422
        assert f'value="{challenge}"' in response.text
        assert 'aria-invalid="true"' in response.text


async def test_someone_elses_participation_is_not_found(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a)
    await _participant(browser)
    page = await _start(browser, campaign)
    other = await make_user("Other Person")
    await browser.client.post("/logout", data={"_csrf_token": browser.csrf})
    await browser.login(other)
    assert (await browser.get(page)).status_code == 404
    assert (await browser.get(page + "/results")).status_code == 404
    assert (await browser.get(f"/p/{tenant_a.slug}/not-a-uuid")).status_code == 404
    assert UUID(page.rsplit("/", 1)[1])


async def test_signed_out_visitors_of_a_test_page_are_sent_to_sign_in(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    response = await browser.get(f"/p/{tenant_a.slug}/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert (await browser.get("/me/results")).status_code == 303


async def test_my_results_is_empty_at_first(browser: Browser) -> None:
    await _participant(browser)
    response = await browser.get("/me/results")
    assert "You have not taken part in any campaign yet." in response.text


# --- timed questions -----------------------------------------------------------------------


async def test_a_timed_question_shows_its_clock_and_a_late_answer_is_told(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await short_campaign(tenant_a, length=3)
    await _participant(browser)
    page = await _start(browser, campaign)
    participation_id = page.rsplit("/", 1)[1]
    timed = next(c for c in current_bank().challenges if c.timer_seconds == 90)
    # set-up: the engine's choice is replaced by a timed question a page showed 100 s ago
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE assessment SET current_challenge_id = $3, "
            "current_shown_at = now() - interval '100 seconds' "
            "WHERE tenant_id = $1 AND participation_id = $2",
            tenant_a.id,
            UUID(participation_id),
            timed.id,
        )
    shown = await browser.get(page)
    assert "you have 90 seconds to answer" in shown.text
    assert 'role="timer"' in shown.text
    assert "0:00" in shown.text  # the clock ran while the participant was away
    assert '<script src="/static/timer.js" defer></script>' in shown.text
    script = await browser.get("/static/timer.js")
    assert script.status_code == 200
    form = {"challenge_id": timed.id, "type": timed.type, **right_answer(timed.id)}
    late = await browser.post(page, form, page=page)
    assert late.status_code == 303
    after = await browser.get(page)
    assert "The time for that question was up: your answer counts as wrong." in after.text
