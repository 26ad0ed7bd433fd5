"""Sign-in flows over HTTP: password, throttling, sessions, magic links, reset, signup."""

from __future__ import annotations

import asyncio

import pytest

from core import database
from core.errors import TooManyRequests, Unauthenticated
from core.ratelimit import MemoryRateLimiter
from core.settings import get_settings
from tenants.accounts import authenticate
from tests.api.conftest import PASSWORD, Browser
from tests.conftest import TenantFixture, make_user
from tests.mail import last_link


async def test_signing_in_opens_the_console_and_signing_out_closes_it(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    response = await browser.login(tenant_a.owner)
    assert response.headers["location"] == "/o/"
    page = await browser.get(f"/o/{tenant_a.slug}/")
    assert page.status_code == 200
    assert tenant_a.owner_ctx.tenant.name in page.text
    await browser.post("/logout", page=f"/o/{tenant_a.slug}/")
    again = await browser.get(f"/o/{tenant_a.slug}/")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login?next=")


async def test_session_id_changes_at_sign_in(browser: Browser, tenant_a: TenantFixture) -> None:
    await browser.login(tenant_a.owner)
    before = browser.client.cookies.get("jalon_session")
    assert before
    # Signed in, /login redirects: the form's token comes from a page of the signed-in session.
    again = await browser.post(
        "/login", {"email": tenant_a.owner.email, "password": PASSWORD}, page="/account"
    )
    assert again.status_code == 303, again.text
    after = browser.client.cookies.get("jalon_session")
    assert after
    assert after != before
    # The previous identifier no longer opens anything.
    browser.client.cookies.clear()
    browser.client.cookies.set("jalon_session", before, domain="127.0.0.1")
    response = await browser.client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    wrong = await browser.post("/login", {"email": tenant_a.owner.email, "password": "nope"})
    unknown = await browser.post("/login", {"email": "nobody@example.org", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Incorrect email or password." in wrong.text
    assert "Incorrect email or password." in unknown.text
    assert tenant_a.owner.email in wrong.text  # what was typed is kept


async def test_email_case_does_not_matter_at_sign_in(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    response = await browser.post(
        "/login", {"email": tenant_a.owner.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 303


async def test_failed_sign_ins_are_throttled_per_account(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    for _ in range(5):
        await browser.post("/login", {"email": tenant_a.member.email, "password": "wrong"})
    blocked = await browser.post("/login", {"email": tenant_a.member.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.text


async def test_forged_csrf_token_is_refused_in_the_users_language(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.get("/login")
    response = await browser.client.post(
        "/login",
        data={"_csrf_token": "forged", "email": tenant_a.owner.email, "password": PASSWORD},
        headers={"accept-language": "fr-FR,fr;q=0.9"},
    )
    assert response.status_code == 403
    assert "Ce formulaire a expiré" in response.text


async def test_magic_link_signs_in_once(browser: Browser, db: str) -> None:
    user = await make_user("Magic Person")
    response = await browser.post(
        "/login/link", {"email": user.email, "next": "/account"}, page="/login/link"
    )
    assert response.status_code == 303
    link = await last_link(user.email, r"/login/link/\S+")
    confirm = await browser.get(link)
    assert confirm.status_code == 200  # a button, not an automatic sign-in
    path = link.split("?")[0]
    signed_in = await browser.post(path, {"next": "/account"}, page=link)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/account"
    assert (await browser.get("/account")).status_code == 200
    await browser.post("/logout", page="/account")
    reused = await browser.post(path, {"next": "/account"}, page=link)
    assert reused.status_code == 410


async def test_magic_link_for_unknown_email_answers_alike(browser: Browser, db: str) -> None:
    response = await browser.post("/login/link", {"email": "ghost@example.org"}, page="/login/link")
    assert response.status_code == 303
    sent = await browser.get(response.headers["location"])
    assert sent.status_code == 200
    assert "ghost@example.org" in sent.text


async def test_password_reset_changes_the_password_and_the_link_dies(
    browser: Browser, db: str
) -> None:
    user = await make_user("Forgetful Person")
    await browser.post("/password/forgot", {"email": user.email.upper()}, page="/password/forgot")
    link = await last_link(user.email, r"/password/reset/\S+")
    mismatch = await browser.post(
        link, {"password": "a new long password", "password_confirm": "different"}, page=link
    )
    assert mismatch.status_code == 422
    short = await browser.post(link, {"password": "short", "password_confirm": "short"}, page=link)
    assert short.status_code == 422
    done = await browser.post(
        link,
        {"password": "a new long password", "password_confirm": "a new long password"},
        page=link,
    )
    assert done.status_code == 303
    await browser.post("/logout", page="/account")
    again = await browser.post(
        link,
        {"password": "another long password", "password_confirm": "another long password"},
        page=link,
    )
    assert again.status_code == 410
    await browser.login(user, "a new long password")


async def test_signup_creates_an_organization_in_trial_with_its_owner(
    browser: Browser, db: str
) -> None:
    response = await browser.post(
        "/signup",
        {
            "name": "Nadia Okafor",
            "email": "nadia.signup@example.org",
            "password": "a long enough password",
            "password_confirm": "a long enough password",
            "organization_name": "Commune de Saint-Étienne-du-Bois",
            "kind": "local_authority",
            "country": "fr",
            "locale": "fr",
            "terms": "on",
        },
        page="/signup",
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/o/commune-de-saint-etienne-du-bois/"
    dashboard = await browser.get("/o/commune-de-saint-etienne-du-bois/")
    assert dashboard.status_code == 200
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT status, country FROM organization WHERE slug = $1",
            "commune-de-saint-etienne-du-bois",
        )
    assert rows == [{"status": "trial", "country": "FR"}]


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"email": "not-an-email"}, 422, "Enter a valid email address."),
        ({"organization_name": "x" * 201}, 422, "This field is too long"),
        ({"country": "France"}, 422, "two-letter country code"),
        ({"kind": "castle"}, 422, "Choose one of the offered options."),
        ({"slug": "-bad-"}, 422, "lowercase letters"),
        ({"terms": ""}, 422, "Accept the terms of use"),
        ({"name": "Bad\x00Name"}, 422, "characters that are not allowed"),
    ],
)
async def test_signup_refuses_bad_input_and_writes_nothing(
    browser: Browser, db: str, change: dict[str, str], status: int, message: str
) -> None:
    form = {
        "name": "Rejected Person",
        "email": "rejected.signup@example.org",
        "password": "a long enough password",
        "password_confirm": "a long enough password",
        "organization_name": "Rejected Org",
        "slug": "rejected-org",
        "kind": "company",
        "country": "FR",
        "locale": "en",
        "terms": "on",
    }
    form.update(change)
    response = await browser.post("/signup", form, page="/signup")
    assert response.status_code == status
    assert message in response.text
    async with database.global_transaction():
        users = await database.fetch(
            "SELECT 1 FROM user_account WHERE lower(email) = 'rejected.signup@example.org'"
        )
        orgs = await database.fetch("SELECT 1 FROM organization WHERE slug = 'rejected-org'")
    assert users == []
    assert orgs == []


async def test_signup_with_a_taken_slug_keeps_no_half_written_account(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    response = await browser.post(
        "/signup",
        {
            "name": "Late Comer",
            "email": "late.comer@example.org",
            "password": "a long enough password",
            "password_confirm": "a long enough password",
            "organization_name": "Copycat",
            "slug": tenant_a.slug.upper(),
            "kind": "company",
            "country": "FR",
            "locale": "en",
            "terms": "on",
        },
        page="/signup",
    )
    assert response.status_code == 409
    assert "already taken" in response.text
    async with database.global_transaction():
        users = await database.fetch(
            "SELECT 1 FROM user_account WHERE email = 'late.comer@example.org'"
        )
    assert users == []


async def test_signup_with_an_email_taken_in_another_case_is_a_conflict(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    response = await browser.post(
        "/signup",
        {
            "name": "Twin",
            "email": tenant_a.owner.email.upper(),
            "password": "a long enough password",
            "password_confirm": "a long enough password",
            "organization_name": "Twin Org",
            "kind": "company",
            "country": "FR",
            "terms": "on",
        },
        page="/signup",
    )
    assert response.status_code == 409
    assert "An account already exists" in response.text


async def test_open_redirects_are_refused(browser: Browser, tenant_a: TenantFixture) -> None:
    response = await browser.post(
        "/login",
        {"email": tenant_a.owner.email, "password": PASSWORD, "next": "//evil.example/steal"},
    )
    assert response.headers["location"] == "/o/"


async def test_wrong_passwords_sent_at_once_are_throttled_too(tenant_a: TenantFixture) -> None:
    """Each attempt is counted before its password is checked: twenty wrong passwords sent at
    once get the account's five checks, the rest are refused unchecked (a count read first
    let them all through, argon2 being slow). A right one afterwards is refused too."""
    settings = get_settings()
    limiter = MemoryRateLimiter()
    email = tenant_a.member.email

    async def attempt(password: str) -> str:
        try:
            await authenticate(email, password, "203.0.113.9", limiter, settings)
        except TooManyRequests:
            return "refused"
        except Unauthenticated:
            return "checked"
        return "signed in"

    outcomes = await asyncio.gather(*(attempt(f"wrong {n}") for n in range(20)))
    assert outcomes.count("checked") == settings.login_attempts_per_account
    assert outcomes.count("refused") == 20 - settings.login_attempts_per_account
    assert await attempt(PASSWORD) == "refused"


async def test_a_right_password_gives_its_attempt_back(tenant_a: TenantFixture) -> None:
    """A sign-in that succeeds is not counted against the address."""
    settings = get_settings()
    limiter = MemoryRateLimiter()
    for _ in range(settings.login_attempts_per_ip + 2):
        await authenticate(tenant_a.owner.email, PASSWORD, "203.0.113.10", limiter, settings)
