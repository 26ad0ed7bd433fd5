"""The checks every form that creates an account shares (`check_new_account`): pure, no
database."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import Invalid
from tenants.accounts import NewAccount, check_new_account

GOOD: dict[str, Any] = {
    "name": "  Nadia Okafor ",
    "password": "a long enough password",
    "password_confirm": "a long enough password",
    "locale": "en",
    "default_locale": "fr",
    "email": "nadia@example.org",
    "terms": True,
}


def test_accepts_a_complete_form_and_gives_the_cleaned_values() -> None:
    assert check_new_account(**GOOD) == NewAccount(
        name="Nadia Okafor",
        password="a long enough password",
        locale="en",
        email="nadia@example.org",
    )


def test_a_form_without_a_language_takes_the_default_one() -> None:
    assert check_new_account(**{**GOOD, "locale": None}).locale == "fr"
    assert check_new_account(**{**GOOD, "locale": ""}).locale == "fr"


def test_a_form_that_asks_neither_email_nor_terms_needs_neither() -> None:
    # An invitation: the address is the invited one, and no terms are asked.
    account = check_new_account(**{**GOOD, "email": None, "terms": None})
    assert account.email == ""
    assert account.name == "Nadia Okafor"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"password_confirm": "something else"}, "password_confirm", "The two passwords differ."),
        ({"terms": False}, "terms", "Accept the terms of use to continue."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"email": ""}, "email", "This field is required."),
        ({"name": ""}, "name", "This field is required."),
        ({"name": "n" * 201}, "name", "This field is too long ({max} characters at most)."),
        ({"name": "Bad\x00Name"}, "name", "This field contains characters that are not allowed."),
        ({"locale": "xx"}, "locale", "Choose one of the offered languages."),
        (
            {"password": "short", "password_confirm": "short"},
            "password",
            "Choose a password of at least {min} characters.",
        ),
        (
            {"password": "p" * 201, "password_confirm": "p" * 201},
            "password",
            "This field is too long ({max} characters at most).",
        ),
    ],
)
def test_refuses_what_each_form_refused_with_the_same_field_and_message(
    change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(Invalid) as refused:
        check_new_account(**{**GOOD, **change})
    assert (refused.value.field, refused.value.message) == (field, message)


def test_differing_passwords_are_said_first_then_the_terms() -> None:
    everything_wrong: dict[str, Any] = {
        "name": "",
        "password": "short",
        "password_confirm": "other",
        "locale": "xx",
        "default_locale": "fr",
        "email": "nope",
        "terms": False,
    }
    with pytest.raises(Invalid) as refused:
        check_new_account(**everything_wrong)
    assert refused.value.field == "password_confirm"
    with pytest.raises(Invalid) as refused:
        check_new_account(**{**everything_wrong, "password_confirm": "short"})
    assert refused.value.field == "terms"
    with pytest.raises(Invalid) as refused:
        check_new_account(**{**everything_wrong, "password_confirm": "short", "terms": True})
    assert refused.value.field == "email"
