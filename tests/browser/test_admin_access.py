"""The back office as a staff member meets it, in headless Chromium: signing in with the
password and the authenticator app's code, landing on /admin, viewing a tenant's console
read-only for a reason, being refused a change there, and stopping."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.admin.conftest import StaffFixture
from tests.api.conftest import PASSWORD
from tests.browser.audit import audit
from tests.browser.conftest import screenshot, staff_sign_in
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser

REASON = "Ticket 5150: the owner cannot find the settings"


async def _accessible(page: Page, name: str) -> None:
    await audit(page, name)  # basics, axe-core, and a screenshot


async def test_an_account_manager_views_a_tenant_read_only_and_stops(
    page: Page, account_manager: StaffFixture, tenant_a: TenantFixture
) -> None:
    # Password, then the app's code: no `next`, the back office is where staff land.
    await page.goto("/login")
    await page.locator("#f-email").fill(account_manager.user.email)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.locator("#f-password").fill(PASSWORD)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.wait_for_url("**/admin/second-factor**")
    await page.locator("#f-code").fill(account_manager.code_now())
    await page.locator("form[action='/admin/second-factor'] button[type=submit]").click()
    await page.wait_for_url("**/admin")

    await page.goto(f"/admin/tenants/{tenant_a.id}")
    await page.get_by_role("link", name="View as the tenant (read-only)").click()
    await page.wait_for_url(f"**/admin/tenants/{tenant_a.id}/actions/impersonate")
    await page.get_by_role("button", name="Open the console read-only").click()
    await expect(page.locator("#f-reason-error")).to_be_visible()  # a reason is required
    await page.get_by_label("Reason").fill(REASON)
    await page.get_by_label("I open this organization's console read-only").check()
    await _accessible(page, "admin-impersonate")
    await page.get_by_role("button", name="Open the console read-only").click()
    await page.wait_for_url(f"**/o/{tenant_a.slug}/")
    banner = page.locator(".impersonation-banner")
    await expect(banner).to_contain_text("Read-only view as Jalon staff")
    await expect(banner).to_contain_text(REASON)

    await page.goto(f"/o/{tenant_a.slug}/settings")
    await expect(banner).to_be_visible()
    await screenshot(page, "admin-impersonation-banner")
    await page.locator(f"form[action='/o/{tenant_a.slug}/settings'] button[type=submit]").click()
    await expect(page.locator("body")).to_contain_text("read-only")
    await screenshot(page, "admin-impersonation-refused")

    await page.goto(f"/o/{tenant_a.slug}/members")
    await page.get_by_role("button", name="Stop viewing").click()
    await page.wait_for_url(f"**/admin/tenants/{tenant_a.id}")
    await expect(page.locator("body")).to_contain_text("no longer viewing this organization")
    await screenshot(page, "admin-impersonation-stopped")
    await page.goto(f"/o/{tenant_a.slug}/members")
    await expect(page.locator(".impersonation-banner")).to_have_count(0)


async def test_the_staff_pages_are_accessible(
    page: Page, superadmin: StaffFixture, support: StaffFixture
) -> None:
    await staff_sign_in(page, superadmin)
    await page.goto("/admin/staff")
    await _accessible(page, "admin-staff")
    await page.goto(f"/admin/staff/{support.user.id}/role")
    await _accessible(page, "admin-staff-role")
    await page.goto("/admin/trail")
    await _accessible(page, "admin-trail")
