"""The results page's "Questions to review": for every kind of challenge the bank has, the
participant's own answer beside the right one, with translated labels."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from uuid import UUID

import asyncpg

from campaigns.content import current_bank
from engine.bank import CHALLENGE_TYPES, Challenge
from tests.api.conftest import Browser
from tests.api.test_participant import _current, _start, short_campaign
from tests.conftest import TenantFixture, make_user


def _one_of(kind: str, locale: str) -> Challenge:
    """A validated challenge of `kind` written in `locale`, with several accepted answers when
    it is a short text (so that "Also accepted" shows)."""
    for challenge in current_bank().challenges:
        if challenge.type != kind or locale not in challenge.locales:
            continue
        if challenge.status != "validated":
            continue
        if kind == "short_text":
            assert isinstance(challenge.solution, dict)
            if len(challenge.solution[locale]) < 2:
                continue
        return challenge
    raise AssertionError(f"the bank has no {kind} challenge in {locale}")


def _wrong_choices(challenge: Challenge, locale: str) -> list[int]:
    """Indices that make a wrong answer: one right proposal and one wrong one (multiple
    choice), or a wrong proposal (single choice)."""
    assert isinstance(challenge.solution, tuple)
    wrong = [i for i in range(len(challenge.proposals[locale])) if i not in challenge.solution]
    if challenge.type == "multiple_choice":
        return sorted([challenge.solution[0], wrong[0]])
    return [wrong[0]]


async def _finished_by_skipping(browser: Browser, tenant: TenantFixture, length: int) -> str:
    """A participation of `length` questions (and a pretest one, maybe), all skipped through
    the test pages; its page."""
    campaign = await short_campaign(tenant, length=length, locales=("en", "fr"))
    page = await _start(browser, campaign)
    for _ in range(length):
        challenge, _kind = await _current(browser, page)
        response = await browser.post(
            page, {"challenge_id": challenge, "action": "skip"}, page=page
        )
        assert response.status_code == 303
    return page


async def _store_answers(
    owner_url: str, tenant_id: Any, page: str, answers: list[tuple[str, Any]]
) -> None:
    """Test set-up the service does not offer: the stored answers become `answers` (challenge
    id, stored value; None for a skip), all wrong, in that order. Answers are append-only for
    the application's role: the owner connection rewrites them."""
    participation_id = UUID(page.rstrip("/").split("/")[-1])
    conn = await asyncpg.connect(owner_url)
    try:
        # Out of the way first: a wanted challenge may be one the test already asked.
        await conn.execute(
            """UPDATE answer SET challenge_id = 'set-up-' || position
               WHERE tenant_id = $1 AND participation_id = $2 AND position <= $3""",
            tenant_id,
            participation_id,
            len(answers),
        )
        for position, (challenge_id, value) in enumerate(answers, start=1):
            await conn.execute(
                """UPDATE answer SET challenge_id = $4, value = $5::jsonb, skipped = $6,
                       correct = false, pretest = false
                   WHERE tenant_id = $1 AND participation_id = $2 AND position = $3""",
                tenant_id,
                participation_id,
                position,
                challenge_id,
                None if value is None else json.dumps(value),
                value is None,
            )
    finally:
        await conn.close()


def _review_items(page_html: str) -> list[str]:
    section = page_html.split('id="missed-title"', 1)[1]
    return re.findall(r"<li>\s*<p class=\"statement\">(.*?)</dl>", section, re.S)


def _value(item: str, label: str) -> str:
    """The text shown under `label` in one review item (tags removed, spaces collapsed)."""
    match = re.search(rf"<dt>{re.escape(label)}</dt>\s*<dd[^>]*>(.*?)</dd>", item, re.S)
    assert match, f"no {label!r} in {item}"
    text = re.sub(r"<[^>]+>", " ", match.group(1))
    return " ".join(html.unescape(text).split())


async def test_every_kind_of_missed_question_shows_the_answer_given_and_the_right_one(
    browser: Browser, tenant_a: TenantFixture, owner_url: str
) -> None:
    assert set(CHALLENGE_TYPES) == {"single_choice", "multiple_choice", "short_text"}
    await browser.login(await make_user("Rae Reviewer"))
    page = await _finished_by_skipping(browser, tenant_a, length=4)
    single, multiple, text, skipped = (
        _one_of("single_choice", "en"),
        _one_of("multiple_choice", "en"),
        _one_of("short_text", "en"),
        _one_of("single_choice", "en"),
    )
    if skipped.id == single.id:
        skipped = next(
            c
            for c in current_bank().challenges
            if c.type == "single_choice" and c.id != single.id and "en" in c.locales
        )
    [single_value] = _wrong_choices(single, "en")
    multiple_value = _wrong_choices(multiple, "en")
    await _store_answers(
        owner_url,
        tenant_a.id,
        page,
        [
            (single.id, single_value),
            (multiple.id, multiple_value),
            (text.id, "a wrong guess"),
            (skipped.id, None),
        ],
    )

    shown = await browser.get(page + "/results")
    assert shown.status_code == 200
    items = _review_items(shown.text)
    assert len(items) == 4

    props = single.proposals["en"]
    assert isinstance(single.solution, tuple)
    assert html.escape(single.statement["en"], quote=False) in items[0]
    assert _value(items[0], "Your answer") == props[single_value]
    assert _value(items[0], "Correct answer") == props[single.solution[0]]

    props = multiple.proposals["en"]
    assert isinstance(multiple.solution, tuple)
    assert _value(items[1], "Your answers") == " ".join(props[i] for i in multiple_value)
    assert _value(items[1], "Correct answers") == " ".join(
        props[i] for i in sorted(multiple.solution)
    )

    assert isinstance(text.solution, dict)
    assert _value(items[2], "Your answer") == "a wrong guess"
    assert _value(items[2], "Correct answer") == text.solution["en"][0]
    assert _value(items[2], "Also accepted") == " · ".join(text.solution["en"][1:])

    assert isinstance(skipped.solution, tuple)
    assert _value(items[3], "Your answer") == "None: you skipped this question."
    assert _value(items[3], "Correct answer") == skipped.proposals["en"][skipped.solution[0]]


async def test_the_review_labels_are_in_the_participants_language(
    browser: Browser, tenant_a: TenantFixture, owner_url: str
) -> None:
    await browser.login(await make_user("Roux Relecteur", locale="fr"))
    page = await _finished_by_skipping(browser, tenant_a, length=2)
    multiple, text = _one_of("multiple_choice", "fr"), _one_of("short_text", "fr")
    await _store_answers(
        owner_url,
        tenant_a.id,
        page,
        [(multiple.id, _wrong_choices(multiple, "fr")), (text.id, "au hasard")],
    )
    shown = await browser.get(page + "/results")
    assert shown.status_code == 200
    items = _review_items(shown.text)
    assert len(items) == 2
    assert isinstance(multiple.solution, tuple)
    assert _value(items[0], "Bonnes réponses") == " ".join(
        multiple.proposals["fr"][i] for i in sorted(multiple.solution)
    )
    assert "Vos réponses" in items[0]
    assert _value(items[1], "Votre réponse") == "au hasard"
    assert isinstance(text.solution, dict)
    assert _value(items[1], "Bonne réponse") == text.solution["fr"][0]
