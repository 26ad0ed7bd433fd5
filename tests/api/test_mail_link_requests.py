"""Asking for a sign-in link or a reset link is Post/Redirect/Get (issue 14, defect 7): the
form's post answers 303 to a page that says a link is on its way, whose reload is a 200 and
sends no second mail; the page reads the same for an address with no account."""

from __future__ import annotations

import pytest

from core import database
from tests.api.conftest import Browser
from tests.conftest import make_user

FORMS = [
    ("/login/link", "a sign-in link is on its way"),
    ("/password/forgot", "a link to choose a new password is on its way"),
]


async def _mail_count(address: str) -> int:
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT count(*) AS n FROM mail_message WHERE lower(to_address) = lower($1)",
            address,
        )
    return int(rows[0]["n"])


@pytest.mark.parametrize(("path", "said"), FORMS)
async def test_a_reload_of_the_confirmation_sends_no_second_mail(
    browser: Browser, db: str, path: str, said: str
) -> None:
    person = await make_user("Reloading Person")
    before = await _mail_count(person.email)
    posted = await browser.post(path, {"email": person.email}, page=path)
    assert posted.status_code == 303
    final = posted.headers["location"]
    assert final == f"{path}?sent=1"
    assert await _mail_count(person.email) == before + 1
    for _ in range(2):  # the redirect followed, then a reload
        page = await browser.get(final)
        assert page.status_code == 200
        assert f"If an account exists for {person.email}, {said}" in page.text
    assert await _mail_count(person.email) == before + 1


@pytest.mark.parametrize(("path", "said"), FORMS)
async def test_the_confirmation_does_not_tell_whether_an_account_exists(
    browser: Browser, db: str, path: str, said: str
) -> None:
    person = await make_user("Known Person")
    ghost = "ghost-prg@example.org"
    known = await browser.post(path, {"email": person.email}, page=path)
    known_page = (await browser.get(known.headers["location"])).text
    unknown = await browser.post(path, {"email": ghost}, page=path)
    assert unknown.status_code == 303
    assert unknown.headers["location"] == known.headers["location"]
    unknown_page = (await browser.get(unknown.headers["location"])).text
    assert f"If an account exists for {ghost}, {said}" in unknown_page
    assert await _mail_count(ghost) == 0
    # The two pages differ only by the address they name (and the form token).
    strip = (person.email, ghost)
    assert _without(known_page, strip) == _without(unknown_page, strip)


def _without(text: str, words: tuple[str, ...]) -> str:
    import re

    text = re.sub(r'value="[^"]{20,}"', "", text)  # CSRF tokens
    text = re.sub(r'content="[^"]{20,}"', "", text)
    for word in words:
        text = text.replace(word, "")
    return text


@pytest.mark.parametrize(("path", "said"), FORMS)
async def test_a_bookmark_of_the_confirmation_names_no_address(
    browser: Browser, db: str, path: str, said: str
) -> None:
    page = await browser.get(f"{path}?sent=1")
    assert page.status_code == 200
    assert f"If an account exists for that address, {said}" in page.text


@pytest.mark.parametrize(("path", "said"), FORMS)
async def test_a_mistyped_address_is_shown_again_on_the_form(
    browser: Browser, db: str, path: str, said: str
) -> None:
    refused = await browser.post(path, {"email": "not an address"}, page=path)
    assert refused.status_code == 422
    assert 'value="not an address"' in refused.text
