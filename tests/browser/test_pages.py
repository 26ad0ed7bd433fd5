"""Pages as a person meets them, in headless Chromium: sign-in, the console, both languages.

Each page is checked for the basics of accessibility (language, one main heading, labelled
fields, alternative text, unique ids, a skip link), audited by axe-core (no serious or critical
violation) and photographed in var/screenshots/ (tests/browser/audit.py).
"""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.api.conftest import PASSWORD
from tests.browser.audit import BASICS, audit
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser

A11Y_AUDIT = BASICS  # the basic checks, for modules that run them alone


async def _audit(page: Page, name: str) -> None:
    await audit(page, name)


async def _sign_in(page: Page, email: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    # The email first (home-realm discovery), then the password.
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state("networkidle")


async def test_public_pages_are_accessible(page: Page) -> None:
    for path, name in [
        ("/", "home"),
        ("/login", "login"),
        ("/signup", "signup"),
        ("/password/forgot", "password-forgot"),
        ("/login/link", "magic-link"),
    ]:
        response = await page.goto(path)
        assert response is not None
        assert response.status == 200, path
        await _audit(page, f"en-{name}")


async def test_a_wrong_password_shows_a_message_and_keeps_the_email(page: Page) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill("someone@example.org")
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password").fill("wrong password")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state("networkidle")
    assert await page.get_by_text("Incorrect email or password.").count() >= 1
    assert await page.get_by_label("Email").input_value() == "someone@example.org"
    await _audit(page, "en-login-error")


async def test_an_owner_signs_in_and_walks_the_console(page: Page, tenant_a: TenantFixture) -> None:
    await _sign_in(page, tenant_a.owner.email)
    for path, name in [
        ("", "dashboard"),
        ("members", "members"),
        ("settings", "settings"),
        ("audit", "audit"),
        ("tokens", "tokens"),
        ("campaigns", "campaigns-empty"),
        ("target-profiles", "target-profiles"),
        ("target-profiles/new", "target-profile-new"),
        ("learners", "learners"),
        ("webhooks", "webhooks"),
        ("tasks", "tasks"),
    ]:
        response = await page.goto(f"/o/{tenant_a.slug}/{path}")
        assert response is not None
        assert response.status == 200, path
        await _audit(page, f"en-console-{name}")


async def test_inviting_with_a_bad_email_points_at_the_field(
    page: Page, tenant_a: TenantFixture
) -> None:
    await _sign_in(page, tenant_a.owner.email)
    await page.goto(f"/o/{tenant_a.slug}/members")
    form = page.locator("form", has=page.get_by_role("button", name="Send the invitation"))
    await form.get_by_label("Email").fill("not-an-email")
    await form.get_by_role("button", name="Send the invitation").click()
    await page.wait_for_load_state("networkidle")
    field = page.locator("[aria-invalid=true]")
    assert await field.count() >= 1
    assert await page.get_by_text("Enter a valid email address.").count() >= 1
    await _audit(page, "en-console-members-error")


async def test_pages_follow_the_browser_language_then_the_persons_choice(
    page_fr: Page, tenant_a: TenantFixture
) -> None:
    page = page_fr
    await page.goto("/login")  # nobody signed in: the browser's language
    assert await page.evaluate("document.documentElement.lang") == "fr"
    await _audit(page, "fr-login")
    await page.get_by_label("Adresse e-mail").fill(tenant_a.owner.email)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_load_state("networkidle")
    # The owner's own preference (English) wins once signed in; they switch to French.
    await page.goto(f"/o/{tenant_a.slug}/members")
    assert await page.evaluate("document.documentElement.lang") == "en"
    await page.get_by_label("Language").select_option("fr")
    await page.get_by_role("button", name="Change").last.click()
    await page.wait_for_load_state("networkidle")
    assert await page.evaluate("document.documentElement.lang") == "fr"
    assert await page.get_by_role("heading", name="Membres", exact=True).count() == 1
    await _audit(page, "fr-console-members")
    await page.goto(f"/o/{tenant_a.slug}/settings")
    assert await page.get_by_role("heading", name="Paramètres", exact=True).count() == 1
    await _audit(page, "fr-console-settings")
    await page.goto(f"/o/{tenant_a.slug}/")
    await _audit(page, "fr-console-dashboard")
