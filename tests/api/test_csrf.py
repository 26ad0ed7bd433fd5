"""CSRF tokens are bound to the server-side session (`web.csrf`): a token read in one visitor's
session is refused in another's, the page shown before sign-in still signs in, and the
session that sign-in starts gets a token of its own."""

from __future__ import annotations

from litestar import Litestar

from tests.api.conftest import PASSWORD, Browser, bearer, browser_on, issue_token
from tests.conftest import TenantFixture


async def test_a_token_from_another_visitors_session_is_refused(
    app: Litestar, browser: Browser, tenant_a: TenantFixture
) -> None:
    async with browser_on(app) as attacker:
        await attacker.get("/login")
        stolen = attacker.csrf
        assert stolen
        await browser.get("/login")
        assert browser.csrf
        assert browser.csrf != stolen
        form = {"email": tenant_a.owner.email, "password": PASSWORD}
        # The attacker's token, even with the attacker's own session cookie copied along
        # (what a double-submit cookie accepted), does not pass in the victim's session.
        refused = await browser.client.post(
            "/login",
            data={"_csrf_token": stolen, **form},
            headers={"accept-language": "fr-FR,fr;q=0.9"},
        )
        assert refused.status_code == 403
        assert "Ce formulaire a expiré" in refused.text
        assert "jalon_session" not in refused.headers.get("set-cookie", "")
        # The victim's own token passes.
        accepted = await browser.client.post("/login", data={"_csrf_token": browser.csrf, **form})
        assert accepted.status_code == 303, accepted.text


async def test_sign_in_uses_the_token_of_the_page_before_and_gets_a_new_one(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.get("/login")
    before = browser.csrf
    response = await browser.client.post(
        "/login",
        data={"_csrf_token": before, "email": tenant_a.owner.email, "password": PASSWORD},
    )
    assert response.status_code == 303, response.text
    page = await browser.get("/account")
    assert page.status_code == 200
    after = browser.csrf
    assert after
    assert after != before
    # The signed-in session refuses the anonymous session's token, and takes its own.
    stale = await browser.client.post("/logout", data={"_csrf_token": before})
    assert stale.status_code == 403
    still_in = await browser.client.get("/account")
    assert still_in.status_code == 200
    out = await browser.client.post("/logout", data={"_csrf_token": after})
    assert out.status_code == 303


async def test_a_post_without_a_session_or_token_is_refused(browser: Browser) -> None:
    # No page was loaded: no session, so no token can be right.
    forged = await browser.client.post("/login", data={"_csrf_token": "0" * 64, "email": "x"})
    assert forged.status_code == 403
    await browser.get("/login")
    missing = await browser.client.post("/login", data={"email": "x", "password": "y"})
    assert missing.status_code == 403


async def test_the_token_is_also_accepted_from_the_header(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.get("/login")
    response = await browser.client.post(
        "/login",
        data={"email": tenant_a.owner.email, "password": PASSWORD},
        headers={"x-csrftoken": browser.csrf},
    )
    assert response.status_code == 303, response.text


async def test_the_api_is_exempt_and_makes_no_session(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    response = await browser.client.get("/api/v1/campaigns", headers=bearer(token))
    assert response.status_code == 200
    assert "jalon_session" not in response.headers.get("set-cookie", "")
    # An anonymous redirect or JSON answer stores nothing either.
    health = await browser.client.get("/healthz")
    assert "jalon_session" not in health.headers.get("set-cookie", "")
