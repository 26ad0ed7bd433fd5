"""Every page on a phone, in headless Chromium: 360 CSS pixels wide (the narrowest phones in
use), and 640 pixels at a device scale of 2, as a 1280-pixel screen zoomed to 200 % shows it
(WCAG 1.4.10, reflow). No page may scroll sideways; the campaign dashboard's chart labels
stay readable; a table shown as stacked cards keeps the label of each cell. The phone pages
are photographed in var/screenshots/ (phone-*.png, zoom-*.png)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.service import create_campaign
from tests.admin.conftest import StaffFixture
from tests.api.conftest import PASSWORD
from tests.api.test_participant import shorten
from tests.browser.conftest import screenshot, staff_sign_in
from tests.campaigns.listing_helpers import seed
from tests.conftest import TenantFixture, make_user

pytestmark = pytest.mark.browser

# Runs in the page: whether it scrolls sideways, and if so the elements that stick out.
OVERFLOW = """() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  if (root.scrollWidth <= width) return null;
  const culprits = [];
  for (const element of document.body.querySelectorAll('*')) {
    const box = element.getBoundingClientRect();
    if (box.right > width + 1 && box.width > 0) {
      const name = element.tagName.toLowerCase() + (element.id ? '#' + element.id : '')
        + (element.className && typeof element.className === 'string'
           ? '.' + element.className.trim().split(/\\s+/).join('.') : '');
      culprits.push(`${name} right=${Math.round(box.right)}`);
    }
  }
  return {scrollWidth: root.scrollWidth, clientWidth: width, culprits: culprits.slice(-8)};
}"""

# Runs in the page: chart text smaller than 11 CSS pixels as drawn (an SVG scaled down shrinks
# its text with it), and cells of tables stacked as cards that lost their column's label.
READABILITY = """() => {
  const problems = [];
  for (const text of document.querySelectorAll('.chart svg text')) {
    const height = text.getBoundingClientRect().height;
    if (text.textContent.trim() && height > 0 && height < 11)
      problems.push(`chart text "${text.textContent.trim()}" ${height.toFixed(1)}px high`);
  }
  for (const cell of document.querySelectorAll('main td')) {
    if (getComputedStyle(cell).display === 'table-cell' || !cell.textContent.trim()) continue;
    if (cell.colSpan > 1) continue;  // a row saying "nothing here" labels itself
    if (cell.getAttribute('data-label') === '') continue;  // a column with no header: buttons
    const label = getComputedStyle(cell, '::before').content;
    if (!label || label === 'none' || label === 'normal' || label === '""')
      problems.push(`stacked cell without a label: ${cell.outerHTML.slice(0, 80)}`);
  }
  return problems;
}"""


@dataclass
class Viewport:
    name: str
    width: int
    scale: int


PHONE = Viewport("phone", 360, 1)
ZOOMED = Viewport("zoom", 640, 2)  # a 1280-pixel-wide screen at 200 %


@pytest.fixture(params=[PHONE, ZOOMED], ids=lambda v: v.name)
async def small(request: pytest.FixtureRequest, chromium: Browser, live_server: str) -> Any:
    viewport: Viewport = request.param
    context = await chromium.new_context(
        base_url=live_server,
        locale="en-GB",
        viewport={"width": viewport.width, "height": 760},
        device_scale_factor=viewport.scale,
        is_mobile=viewport.scale == 1,
        has_touch=viewport.scale == 1,
    )
    yield context, viewport
    await context.close()


@dataclass
class Checked:
    page: Page
    viewport: Viewport
    problems: list[str]

    async def visit(self, path: str, name: str) -> None:
        response = await self.page.goto(path)
        assert response is not None
        if response.status != 200:
            self.problems.append(f"{name}: {path} answered {response.status}")
            return
        await self.check(name)

    async def check(self, name: str) -> None:
        await self.page.wait_for_load_state("networkidle")
        overflow = await self.page.evaluate(OVERFLOW)
        if overflow is not None:
            self.problems.append(f"{name} ({self.page.url}) scrolls sideways: {overflow}")
        self.problems.extend(f"{name}: {p}" for p in await self.page.evaluate(READABILITY))
        await screenshot(self.page, f"{self.viewport.name}-{name}")


@pytest.fixture
async def dashboard_campaign(tenant_a: TenantFixture) -> Campaign:
    """A campaign with 12 participants, some of whom shared their results: its dashboard
    draws both charts and the level table."""
    campaign = await create_campaign(
        tenant_a.owner_ctx,
        CampaignFields(
            name="Digital skills of the municipal staff, spring",
            profile_key="digcomp",
            external_id_label="Employee number",
            locales=("en", "fr"),
        ),
    )
    await seed(tenant_a, campaign.id, 12, groups=("Town hall", "Libraries"))
    return campaign


async def _sign_in(page: Page, email: str) -> None:
    await page.goto("/login")
    await page.locator("#f-email").fill(email)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.locator("#f-password").fill(PASSWORD)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.wait_for_load_state("networkidle")


async def test_no_page_scrolls_sideways_on_a_phone_or_at_200_percent(
    small: Any,
    tenant_a: TenantFixture,
    dashboard_campaign: Campaign,
    superadmin: StaffFixture,
) -> None:
    context, viewport = small
    page = await context.new_page()
    checked = Checked(page, viewport, [])

    # Signed out: the public and sign-in pages.
    for path, name in [
        ("/", "home"),
        ("/pricing", "pricing"),
        ("/login", "login"),
        ("/signup", "signup"),
        ("/password/forgot", "password-forgot"),
        ("/login/link", "magic-link"),
        ("/c", "participant-code"),
    ]:
        await checked.visit(path, name)
    await page.goto("/login")
    await page.locator("#f-email").fill(tenant_a.owner.email)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await checked.check("login-password")

    # The participant's journey, from the code to the results shared.
    quick = await create_campaign(
        tenant_a.owner_ctx,
        CampaignFields(
            name="Quick check",
            profile_key="digcomp",
            landing_text="Welcome!\nTake your time.",
            locales=("en", "fr"),
        ),
    )
    await shorten(tenant_a.id, quick.id, 3)
    await checked.visit(f"/c/{quick.code}", "participant-landing")
    await checked.visit(f"/c/{quick.code}/account", "participant-account")
    person = await make_user("Jo Participant")
    await page.context.clear_cookies()
    await _sign_in(page, person.email)
    await page.goto(f"/c/{quick.code}")
    await page.get_by_role("button", name="Start").click()
    await page.wait_for_url("**/p/**")
    await checked.check("participant-challenge")
    await page.locator("details.report summary").click()
    await checked.check("participant-challenge-report")
    while "/results" not in page.url:
        await page.get_by_role("button", name="I don’t know, skip").click()
        await page.wait_for_load_state("networkidle")
    await checked.check("participant-results")
    await page.get_by_label("I agree").check()
    await page.get_by_role("button", name="Share with").click()
    await page.wait_for_url("**/results")
    await checked.check("participant-results-shared")
    await checked.visit("/me/results", "participant-mine")
    await checked.visit("/account", "account")

    # The console, as its owner.
    await page.context.clear_cookies()
    await _sign_in(page, tenant_a.owner.email)
    console = f"/o/{tenant_a.slug}"
    for path, name in [
        ("/", "dashboard"),
        ("/members", "members"),
        ("/settings", "settings"),
        ("/audit", "audit"),
        ("/tokens", "tokens"),
        ("/campaigns", "campaigns"),
        (f"/campaigns/{dashboard_campaign.id}", "campaign-dashboard"),
        (f"/campaigns/{dashboard_campaign.id}/edit", "campaign-edit"),
        (f"/campaigns/{quick.id}", "campaign-quick"),
        ("/target-profiles", "target-profiles"),
        ("/target-profiles/new", "target-profile-new"),
        ("/learners", "learners"),
        ("/learners/import", "learners-import"),
        ("/webhooks", "webhooks"),
        ("/tasks", "tasks"),
        ("/billing", "billing"),
        ("/billing/profile", "billing-profile"),
        ("/billing/invoices", "billing-invoices"),
        ("/billing/usage", "billing-usage"),
        ("/sso", "sso"),
        ("/sso/oidc/new", "sso-oidc-new"),
        ("/sso/saml/new", "sso-saml-new"),
        ("/sso/domains", "sso-domains"),
        ("/sso/policy", "sso-policy"),
        ("/sso/scim", "sso-scim"),
    ]:
        await checked.visit(console + path, f"console-{name}")
    await page.goto(f"{console}/campaigns/{dashboard_campaign.id}")
    await page.locator("details.figures summary").click()
    await checked.check("console-campaign-dashboard-figures")

    # The back office, as a superadmin (every permission).
    await page.context.clear_cookies()
    await staff_sign_in(page, superadmin)
    admin_tenant = f"/admin/tenants/{tenant_a.id}"
    for path, name in [
        ("/admin", "dashboard"),
        ("/admin/tenants", "tenants"),
        ("/admin/tenants/new", "onboarding"),
        (admin_tenant, "tenant"),
        (f"{admin_tenant}/subscription", "tenant-subscription"),
        (f"{admin_tenant}/invoices", "tenant-invoices"),
        (f"{admin_tenant}/members", "tenant-members"),
        (f"{admin_tenant}/sso", "tenant-sso"),
        (f"{admin_tenant}/campaigns", "tenant-campaigns"),
        (f"{admin_tenant}/audit", "tenant-audit"),
        (f"{admin_tenant}/actions/plan", "tenant-plan"),
        (f"{admin_tenant}/actions/seat-pack", "tenant-seat-pack"),
        ("/admin/plans", "plans"),
        ("/admin/plans/new", "plan-new"),
        ("/admin/staff", "staff"),
        ("/admin/trail", "trail"),
        ("/admin/jobs", "jobs"),
        ("/admin/content", "content"),
        ("/admin/content/challenges", "content-challenges"),
        ("/admin/content/stats", "content-stats"),
        ("/admin/content/reports", "content-reports"),
        ("/admin/content/calibration", "content-calibration"),
        ("/admin/content/import", "content-import"),
    ]:
        await checked.visit(path, f"admin-{name}")

    assert checked.problems == [], "\n".join(checked.problems)
