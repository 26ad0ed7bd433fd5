"""A new password that is too short *and* a confirmation that differs: every form where a
password and its confirmation are typed says both, each next to its field (issue 14,
defect 12), and keeps what was typed apart from the passwords."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from core.errors import Invalid, InvalidFields
from core.settings import Settings
from core.validation import clean_new_password
from tenants.accounts import check_new_account
from tenants.invitations import invite
from tests.api.conftest import Browser
from tests.api.test_participant import short_campaign
from tests.conftest import TenantFixture, make_user
from tests.mail import last_link

SHORT = "abcde"
TOO_SHORT = "Choose a password of at least 10 characters."
DIFFER = "The two passwords differ."


def _errors(page: httpx.Response) -> dict[str, str]:
    """{field: its error}, as the form shows them."""
    return {
        field: html.unescape(message)
        for field, message in re.findall(
            r'<p class="field-error" id="f-([a-z_]+)-error">([^<]+)</p>', page.text
        )
    }


def _both(page: httpx.Response) -> None:
    assert page.status_code == 422
    errors = _errors(page)
    assert errors.get("password") == TOO_SHORT, errors
    assert errors.get("password_confirm") == DIFFER, errors
    assert SHORT not in page.text  # passwords are never typed back


async def test_sign_up_says_both(browser: Browser, db: str) -> None:
    form = {
        "name": "Newcomer",
        "email": "newcomer-pw@example.org",
        "password": SHORT,
        "password_confirm": SHORT + "x",
        "organization_name": "Both Errors Ltd",
        "kind": "company",
        "country": "FR",
        "terms": "yes",
    }
    page = await browser.post("/signup", form, page="/signup")
    _both(page)
    assert "newcomer-pw@example.org" in page.text  # the rest is kept


async def test_sign_up_also_names_the_other_fields_at_fault(browser: Browser, db: str) -> None:
    form = {
        "name": "",
        "email": "not an address",
        "password": SHORT,
        "password_confirm": SHORT + "x",
        "organization_name": "Several Errors Ltd",
        "kind": "company",
        "country": "FR",
    }
    errors = _errors(await browser.post("/signup", form, page="/signup"))
    assert {"password", "password_confirm", "email", "name", "terms"} <= set(errors), errors


async def test_a_participants_account_says_both(browser: Browser, tenant_a: TenantFixture) -> None:
    campaign = await short_campaign(tenant_a)
    page = f"/c/{campaign.code}/account"
    form = {
        "name": "Resident",
        "email": "resident-pw@example.org",
        "password": SHORT,
        "password_confirm": "other",
        "terms": "yes",
    }
    _both(await browser.post(page, form, page=page))


async def test_an_invitation_says_both(
    browser: Browser, tenant_a: TenantFixture, settings: Settings
) -> None:
    email = "invitee-pw@example.org"
    await invite(tenant_a.owner_ctx, email, "member", settings)
    link = await last_link(email, r"/invitations/\S+")
    form = {"name": "Invitee", "password": SHORT, "password_confirm": "other"}
    _both(await browser.post(link, form, page=link))


async def test_a_password_reset_says_both(browser: Browser, db: str) -> None:
    user = await make_user("Forgetful Both")
    await browser.post("/password/forgot", {"email": user.email}, page="/password/forgot")
    link = await last_link(user.email, r"/password/reset/\S+")
    _both(await browser.post(link, {"password": SHORT, "password_confirm": "other"}, page=link))


@pytest.mark.parametrize(
    ("password", "confirmation", "fields"),
    [
        (SHORT, SHORT + "x", ["password", "password_confirm"]),
        (SHORT, SHORT, ["password"]),
        ("a long enough password", "another", ["password_confirm"]),
    ],
)
def test_a_new_password_reports_each_fault(
    password: str, confirmation: str, fields: list[str]
) -> None:
    with pytest.raises(Invalid) as refused:
        clean_new_password(password, confirmation)
    error = refused.value
    each = error.errors if isinstance(error, InvalidFields) else [error]
    assert [one.field for one in each] == fields
    assert error.field == fields[0]  # what an answer with one error only shows


def test_a_new_account_keeps_the_order_of_its_errors() -> None:
    with pytest.raises(InvalidFields) as refused:
        check_new_account(
            name="",
            password=SHORT,
            password_confirm="x",
            locale=None,
            default_locale="en",
            email="bad",
            terms=False,
        )
    assert [e.field for e in refused.value.errors] == [
        "password_confirm",
        "terms",
        "email",
        "name",
        "password",
    ]
