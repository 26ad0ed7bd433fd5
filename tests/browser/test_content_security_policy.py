"""Pages keep working under the Content-Security-Policy (`web.headers`), in Chromium: no
violation is reported, the organization's colour still applies (a stylesheet, not an inline
style), and a secret shown once is still selected when focused (a script, not an inline
handler)."""

from __future__ import annotations

import pytest
from playwright.async_api import ConsoleMessage, Page

from tenants.organizations import SettingsChange, update_settings
from tests.api.conftest import PASSWORD
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser

#: The violations Chromium reports, caught in the page before any of ours runs.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


async def _violations(page: Page, console: list[str]) -> list[str]:
    seen: list[str] = await page.evaluate("window.__violations")
    return seen + [text for text in console if "Content Security Policy" in text]


async def test_console_pages_work_under_the_policy(page: Page, tenant_a: TenantFixture) -> None:
    await update_settings(tenant_a.owner_ctx, SettingsChange("Alpha Org", "en", "#aa0000"))
    console: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        console.append(message.text)

    page.on("console", keep)
    await page.add_init_script(WATCH_VIOLATIONS)
    await page.goto("/login")
    await page.get_by_label("Email").fill(tenant_a.owner.email)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/o/**")
    for path in ("", "/members", "/settings", "/audit", "/campaigns", "/tokens"):
        await page.goto(f"/o/{tenant_a.slug}{path}")
        assert await _violations(page, console) == [], path
        brand = await page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()"
        )
        assert brand == "#aa0000", path
    await page.get_by_label("Name").fill("Browser check")
    await page.locator("input[name=scopes]").first.check()
    await page.get_by_role("button", name="Create the token").click()
    issued = page.locator("#issued-token")
    await issued.focus()
    selected = await issued.evaluate("(f) => f.selectionEnd - f.selectionStart")
    assert selected == len(await issued.input_value()) > 0
    assert await _violations(page, console) == []


async def test_the_sign_in_form_may_send_a_person_to_their_identity_provider(
    page: Page, tenant_a: TenantFixture
) -> None:
    """Home-realm discovery answers the sign-in form with redirects to the organization's
    provider, on another origin: Chromium checks them against `form-action`, which the
    sign-in page widens to https (every other page keeps `'self'`)."""
    from uuid import uuid4

    from sso.connections import ConnectionFields, create_connection, set_enabled
    from tests.sso.seeding import add_verified_domain

    domain = f"csp-{uuid4().hex[:8]}.example.org"
    await add_verified_domain(tenant_a.id, domain)
    fields = ConnectionFields(
        protocol="oidc",
        name="Company IdP",
        settings={
            "issuer": "https://idp.invalid",
            "client_id": "jalon",
            "provider": {"authorization_endpoint": "https://idp.invalid/authorize"},
        },
        secret="secret",
    )
    await set_enabled(tenant_a.owner_ctx, await create_connection(tenant_a.owner_ctx, fields), True)
    await page.add_init_script(WATCH_VIOLATIONS)
    await page.goto("/login")
    await page.get_by_label("Email").fill(f"someone@{domain}")
    async with page.expect_request(lambda r: r.url.startswith("https://idp.invalid/")):
        await page.get_by_role("button", name="Continue").click()
