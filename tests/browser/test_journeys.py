"""Issue 14's journeys, end to end in headless Chromium: each page visited is audited (our basics
and axe-core, tests/browser/audit.py) and photographed in var/screenshots/journey-*.png.

Journeys 2 and 4 use the OpenID provider peer of the SSO tests (tests/peers/oidc): journey 2's
employee signs in there to take a campaign that requires SSO, journey 4's SSO form reads its
discovery document.

Journeys 5 and 6 are the back office's, its staff signing in with their TOTP code as the other
back-office browser tests do: an account manager onboards a foreign agency and records its bank
transfer in one journey (the steps of test_admin_onboarding and test_admin_actions), a content
editor previews an area-5 challenge in four languages and retires it. A challenge is retired
from the problem-report queue (the back office retires reported challenges only), so a
participant of a campaign on area 5 reports the one they are shown first.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from playwright.async_api import Browser, Page, Route, expect

from billing import invoices
from billing.catalogue import PlanFields, PlanKind, create_plan, set_price
from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.content import current_bank
from campaigns.participation.answering import current_challenge
from campaigns.participation.start import start_or_resume
from campaigns.problem_reports import forget_withdrawn, report_problem, withdrawn_challenges
from campaigns.service import create_campaign
from campaigns.target_profiles import TargetProfileFields, create_target_profile
from core import database
from core.settings import get_settings
from tenants.organizations import system_context, tenant_by_id
from tests.admin.conftest import StaffFixture
from tests.api.conftest import PASSWORD
from tests.api.test_participant import shorten
from tests.billing.plans import STAFF, licence_plan
from tests.browser.audit import audit
from tests.browser.conftest import screenshot, staff_sign_in
from tests.campaigns.conftest import make_participant
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant
from tests.mail import last_link
from tests.sso.conftest import OidcPeer, oidc_peer, peer_connection  # noqa: F401 - the peer
from tests.sso.seeding import add_verified_domain, unique_domain

pytestmark = pytest.mark.browser


# Runs in the page: the elements that stick out of the screen to the right (a sideways scroll).
WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 5)
  .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


@pytest.fixture
async def phone_nl(chromium: Browser, live_server: str) -> AsyncIterator[Page]:
    """A phone-sized screen whose browser asks for Dutch."""
    context = await chromium.new_context(
        base_url=live_server,
        locale="nl-NL",
        viewport={"width": 390, "height": 844},
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
    )
    page = await context.new_page()
    yield page
    await context.close()


async def _campaign(
    tenant: TenantFixture, name: str, length: int = 3, locales: tuple[str, ...] = ("fr", "en")
) -> Campaign:
    campaign = await create_campaign(
        tenant.owner_ctx,
        CampaignFields(
            name=name, profile_key="digcomp", landing_text="Welcome, residents!", locales=locales
        ),
    )
    await shorten(tenant.id, campaign.id, length)
    return campaign


async def _answer_everything(page: Page, name: str) -> None:
    """Answer each question (the first choice, or some text) until the results, auditing the
    first question page."""
    for number in range(1, 20):
        if "/results" in page.url:
            return
        if number == 1:
            await audit(page, f"{name}-question")
        if await page.locator("#f-answer").count():
            await page.locator("#f-answer").fill("42")
        else:
            await page.locator("#f-answer-0").check()
        async with page.expect_navigation():
            await page.locator("button[name=action][value=answer]").click()
    raise AssertionError("the test did not end")


async def _results_have_a_table_for_each_chart(page: Page) -> None:
    """Charts have a table alternative: every figure.chart is followed by a data table."""
    charts = await page.locator("figure.chart").count()
    tables = await page.locator("figure.chart ~ table.data").count()
    assert charts >= 1
    assert tables >= 1


async def test_journey_1_a_resident_on_a_phone_signs_up_by_link_comes_back_by_link_and_shares(
    phone_nl: Page, tenant_a: TenantFixture
) -> None:
    """A Belgian city's resident, on a 390x844 phone whose browser asks for Dutch, signs up by
    a link sent by mail (no password), takes the city's campaign (offered in French, Dutch,
    German and English) in Dutch, the interface and the questions, stops, comes back by a
    sign-in link, and shares the results."""
    page = phone_nl
    campaign = await _campaign(
        tenant_a, "Digital skills for residents", locales=("fr", "nl", "de", "en")
    )
    await page.goto(f"/c/{campaign.code}")
    # The organization's language (French) comes before the browser's: the resident picks
    # Dutch in the language menu, and it sticks for the rest of the journey.
    await page.locator("#locale-select").select_option("nl")
    await page.locator("form.locale-switch button[type=submit]").click()
    await page.wait_for_load_state("networkidle")
    assert await page.evaluate("document.documentElement.lang") == "nl"
    await audit(page, "journey-1-landing")
    assert await page.evaluate(WIDER_THAN_THE_SCREEN) == []  # no sideways scroll
    await page.locator(f"a[href='/c/{campaign.code}/account']").click()
    await audit(page, "journey-1-sign-up")
    email = "resident.journey@example.org"
    await page.locator("#f-name").fill("Rosa Resident")
    await page.locator("#f-email").fill(email)
    await page.locator("#f-terms").check()  # and no password: the account comes by mail
    await page.locator(f"form[action='/c/{campaign.code}/account'] button[type=submit]").click()
    await page.wait_for_url(f"**/c/{campaign.code}/account?sent=1")
    assert email in await page.locator("[role=status]").inner_text()
    await audit(page, "journey-1-sign-up-link-sent")
    await page.goto(await last_link(email, r"/signup/link/\S+"))
    await audit(page, "journey-1-sign-up-link-confirm")
    await page.locator("form[action^='/signup/link/'] button[type=submit]").click()
    await page.wait_for_url(f"**/c/{campaign.code}")
    assert await page.evaluate("document.documentElement.lang") == "nl"
    await page.locator(f"form[action='/c/{campaign.code}/start'] button[type=submit]").click()
    await page.wait_for_url("**/p/**")
    test_page = page.url
    # the question itself is in Dutch (the demo bank's Dutch), not only the interface
    assert await page.locator("form[lang='nl']").count() == 1
    await audit(page, "journey-1-first-question")
    # The resident stops, and comes back later on the phone by a sign-in link sent by mail.
    await page.context.clear_cookies()
    await page.goto(f"/login/link?next=/c/{campaign.code}")
    await audit(page, "journey-1-magic-link")
    await page.locator("#f-email").fill(email)
    await page.locator("form[action='/login/link'] button[type=submit]").click()
    await page.wait_for_load_state("networkidle")
    await audit(page, "journey-1-magic-link-sent")
    link = await last_link(email, r"/login/link/\S+")
    await page.goto(link)
    await audit(page, "journey-1-magic-link-confirm")
    await page.locator("form[action^='/login/link/'] button[type=submit]").click()
    await page.wait_for_url(f"**/c/{campaign.code}")
    await page.locator(f"form[action='/c/{campaign.code}/start'] button[type=submit]").click()
    await page.wait_for_url("**/p/**")
    assert page.url.split("?")[0] == test_page.split("?")[0]  # the same test, resumed
    await _answer_everything(page, "journey-1")
    await page.wait_for_url("**/results")
    assert await page.evaluate("document.documentElement.lang") == "nl"
    await _results_have_a_table_for_each_chart(page)
    await audit(page, "journey-1-results")
    assert await page.evaluate(WIDER_THAN_THE_SCREEN) == []  # "questions to review" included
    await page.locator("#f-consent").check()
    async with page.expect_navigation():
        await page.locator("form[action$='/share'] button[type=submit]").click()
    assert await page.locator(".share .notice.success").count() == 1
    await audit(page, "journey-1-results-shared")


async def _tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has the focus (no mouse)."""
    for _ in range(limit):
        if await page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector} on {page.url}")


async def test_a_participant_takes_the_whole_test_with_the_keyboard_only(
    page: Page, tenant_a: TenantFixture
) -> None:
    """Sign in, start, answer every question, share the results: Tab, Space, Enter and typing
    only, no click. The focus must be visible where it lands (an outline or a box shadow)."""
    campaign = await _campaign(tenant_a, "Keyboard check")
    person = await make_user("Kim Keyboard")
    await page.goto(f"/c/{campaign.code}")
    await _tab_to(page, "a[href^='/login?next=']")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/login**")
    await _tab_to(page, "#f-email")
    await page.keyboard.type(person.email)
    await page.keyboard.press("Enter")
    await page.wait_for_load_state("networkidle")
    await _tab_to(page, "#f-password")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/c/{campaign.code}")
    await _tab_to(page, f"form[action='/c/{campaign.code}/start'] button[type=submit]")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/p/**")
    await audit(page, "journey-keyboard-question")
    for _ in range(20):
        if "/results" in page.url:
            break
        if await page.locator("#f-answer").count():
            await _tab_to(page, "#f-answer")
            await page.keyboard.type("42")
        else:
            await _tab_to(page, "#f-answer-0")
            await page.keyboard.press("Space")
            assert await page.locator("#f-answer-0").is_checked()
        await _tab_to(page, "button[name=action][value=answer]")
        focus = await page.evaluate(
            """() => { const s = getComputedStyle(document.activeElement);
                return s.outlineStyle !== 'none' && s.outlineWidth !== '0px'
                    || s.boxShadow !== 'none'; }"""
        )
        assert focus, "the focused button shows no focus indicator"
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
    await page.wait_for_url("**/results")
    await audit(page, "journey-keyboard-results")
    await _tab_to(page, "#f-consent")
    await page.keyboard.press("Space")
    await _tab_to(page, "form[action$='/share'] button[type=submit]")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert await page.locator(".share .notice.success").count() == 1
    await audit(page, "journey-keyboard-results-shared")


async def _reach_the_live_server_for_the_base_url(page: Page, live_server: str) -> None:
    """The provider sends the browser back to the callback under the instance's address
    (JALON_BASE_URL, which the connection registered there): in the test that address is
    another port of 127.0.0.1 than the live server's, so the browser is redirected to the same
    path on the live server (cookies do not depend on the port)."""
    base_url = get_settings().base_url

    async def to_the_live_server(route: Route) -> None:
        path = route.request.url.removeprefix(base_url)
        await route.fulfill(status=302, headers={"location": live_server + path})

    await page.context.route(f"{base_url}/**", to_the_live_server)


async def test_journey_2_an_employee_signs_in_through_sso_takes_the_campaign_and_sees_results(
    page: Page,
    live_server: str,
    tenant_a: TenantFixture,
    oidc_peer: OidcPeer,  # noqa: F811 - the fixture imported above
) -> None:
    """An employee opens a campaign that requires the company's SSO: no start button until
    they sign in at the company's OpenID provider (tests/peers/oidc), which gives their name
    and employee number; they come back, start with that number, answer, see their results and
    share them, and find them in their list of results. Jalon's pages are audited; the
    provider's login page (not ours) is photographed only."""
    domain = unique_domain("works")
    await add_verified_domain(tenant_a.id, domain)
    connection_id = await peer_connection(
        oidc_peer,
        tenant_a,
        name="Company account",
        scopes="openid email profile employee",  # the peer releases employee_id under it
        external_id_claim="employee_id",
    )
    login = f"sam.sso@{domain}"
    oidc_peer.set_claims(login, {"name": "Sam Employee", "employee_id": "E-2024"})
    campaign = await create_campaign(
        tenant_a.owner_ctx,
        CampaignFields(
            name="Security awareness",
            profile_key="digcomp",
            sso_required=True,
            external_id_label="Employee number",
        ),
    )
    await shorten(tenant_a.id, campaign.id, 3)
    await _reach_the_live_server_for_the_base_url(page, live_server)

    await page.goto(f"/c/{campaign.code}")
    await audit(page, "journey-2-landing")
    assert await page.locator(f"form[action='/c/{campaign.code}/start']").count() == 0
    sign_in = page.locator(f"a[href='/c/{campaign.code}/sso?connection={connection_id}']")
    assert await sign_in.count() == 1
    await sign_in.click()
    # At the company's provider: its own login page.
    await page.wait_for_url(f"{oidc_peer.issuer}/**")
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("any")  # the peer checks none
    await screenshot(page, "journey-2-provider-login")
    await page.locator("button[type=submit]").click()
    await page.wait_for_url(f"{live_server}/c/{campaign.code}")
    await audit(page, "journey-2-signed-in")
    assert await page.get_by_text("E-2024").count() >= 1  # the provider's employee number
    await page.locator(f"form[action='/c/{campaign.code}/start'] button[type=submit]").click()
    await page.wait_for_url("**/p/**")
    await _answer_everything(page, "journey-2")
    await page.wait_for_url("**/results")
    results = page.url
    await _results_have_a_table_for_each_chart(page)
    await audit(page, "journey-2-results")
    await page.locator("#f-consent").check()
    async with page.expect_navigation():
        await page.locator("form[action$='/share'] button[type=submit]").click()
    assert await page.locator(".share .notice.success").count() == 1
    await audit(page, "journey-2-results-shared")
    await page.goto("/me/results")
    await audit(page, "journey-2-my-results")
    assert await page.get_by_text("Security awareness").count() >= 1
    await page.goto(results)
    assert page.url == results  # still signed in: the results are theirs to read again

    # The participation is the provider's person, under their employee number, through SSO,
    # and they are a participant of the organization, not a member.
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            """SELECT p.external_id, p.status, l.name, l.user_id FROM participation p
               JOIN learner l ON l.tenant_id = $1 AND l.id = p.learner_id
               WHERE p.tenant_id = $1 AND p.campaign_id = $2""",
            tenant_a.id,
            campaign.id,
        )
        members = await database.fetch(
            "SELECT 1 FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant_a.id,
            rows[0]["user_id"],
        )
    assert [(r["external_id"], r["status"], r["name"]) for r in rows] == [
        ("E-2024", "shared", "Sam Employee")
    ]
    assert members == []


async def _sign_in(page: Page, email: str) -> None:
    await page.goto("/login")
    await page.locator("#f-email").fill(email)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.locator("#f-password").fill(PASSWORD)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.wait_for_load_state("networkidle")


LEARNERS_CSV = (
    "name,email,external_id,groups\r\n"
    "Camille Martin,camille.journey@example.org,A1024,Accounting\r\n"
    "Karim Benali,karim.journey@example.org,A1025,Accounting\r\n"
)


async def test_journey_3_an_hr_manager_creates_imports_invites_follows_and_exports(
    page: Page, tenant_a: TenantFixture, tmp_path: Path
) -> None:
    await _sign_in(page, tenant_a.owner.email)
    base = f"/o/{tenant_a.slug}"
    await page.goto(f"{base}/campaigns")
    await audit(page, "journey-3-campaigns")
    form = page.locator(f"form[action='{base}/campaigns']")
    await form.locator("#f-name").fill("Spring skills check")
    await form.locator("#f-target_profile").select_option(index=1)
    await form.locator("button[type=submit]").click()
    await page.wait_for_url(re.compile(r".*/campaigns/[0-9a-f-]{36}$"))
    campaign_page = page.url
    await audit(page, "journey-3-campaign-new")
    activate = page.locator("form[action$='/activate'] button[type=submit]")
    if await activate.count():
        await activate.click()
        await page.wait_for_load_state("networkidle")
    # the learners, from a CSV file
    await page.goto(f"{base}/learners")
    await audit(page, "journey-3-learners")
    upload = tmp_path / "learners.csv"
    upload.write_text(LEARNERS_CSV, encoding="utf-8")
    await page.locator("form.import-form #f-file").set_input_files(str(upload))
    await page.locator("form.import-form button[type=submit]").click()
    await page.wait_for_load_state("networkidle")
    await audit(page, "journey-3-learners-imported")
    await page.goto(f"{base}/learners")
    assert await page.get_by_text("camille.journey@example.org").count() >= 1
    # the invitations (issue 14, gap 2): to every imported learner
    invite = await page.goto(f"{campaign_page}/invite")
    assert invite is not None
    if invite.status == 200:
        await audit(page, "journey-3-invite")
        await page.locator("form[action$='/invite'][method=post] button[type=submit]").click()
        await page.wait_for_load_state("networkidle")
        await audit(page, "journey-3-invited")
    # a learner takes the test and shares the results
    await page.goto(campaign_page)
    code = (await page.locator(".card code").first.inner_text()).strip()
    await page.context.clear_cookies()
    learner = await make_user("Camille Martin")
    await _sign_in(page, learner.email)
    await page.goto(f"/c/{code}")
    await page.locator("form[action$='/start'] button[type=submit]").click()
    await page.wait_for_url("**/p/**")
    await _answer_everything(page, "journey-3-learner")
    await page.locator("#f-consent").check()
    async with page.expect_navigation():
        await page.locator("form[action$='/share'] button[type=submit]").click()
    await page.context.clear_cookies()
    await _sign_in(page, tenant_a.owner.email)
    # the dashboard: its charts come with tables
    await page.goto(campaign_page)
    await audit(page, "journey-3-dashboard")
    for chart in await page.locator("figure.chart").all():
        described = await chart.evaluate(
            """(figure) => !!(figure.querySelector('table')
                || figure.parentElement.querySelector('table.data')
                || figure.nextElementSibling?.matches('table, details'))"""
        )
        assert described, "a chart without a table alternative"
    async with page.expect_download() as caught:
        await page.locator("form[action$='/results.csv'] button").first.click()
    download = await caught.value
    exported = (await download.path()).read_bytes()
    assert "Camille Martin" in exported.decode("utf-8-sig")
    await download.save_as(tmp_path / download.suggested_filename)


async def test_journey_4_a_tenant_admin_signs_up_invites_connects_sso_and_pays_an_invoice(
    page: Page,
    db: str,
    oidc_peer: OidcPeer,  # noqa: F811 - the fixture imported above
) -> None:
    plan = await licence_plan(amount=120_000, seats=50)
    slug = f"journey-{uuid4().hex[:8]}"
    email = f"admin.{slug}@example.org"
    await page.goto("/signup")
    await audit(page, "journey-4-signup")
    await page.locator("#f-name").fill("Ada Admin")
    await page.locator("#f-email").fill(email)
    await page.locator("#f-password").fill(PASSWORD)
    await page.locator("#f-password_confirm").fill(PASSWORD)
    await page.locator("#f-organization_name").fill("Journey Works")
    await page.locator("#f-slug").fill(slug)
    await page.locator("#f-country").fill("FR")
    await page.locator("#f-terms").check()
    await page.locator("form[action='/signup'] button[type=submit]").click()
    await page.wait_for_url(f"**/o/{slug}/**")
    await audit(page, "journey-4-dashboard")
    base = f"/o/{slug}"
    # a colleague
    await page.goto(f"{base}/members")
    invite = page.locator(f"form[action='{base}/members/invite']")
    await invite.locator("input[type=email]").fill(f"colleague.{slug}@example.org")
    await invite.locator("button[type=submit]").click()
    await page.wait_for_load_state("networkidle")
    assert await page.get_by_text(f"colleague.{slug}@example.org").count() >= 1
    await audit(page, "journey-4-members-invited")
    # the company's OpenID Connect provider
    await page.goto(f"{base}/sso")
    await audit(page, "journey-4-sso")
    await page.goto(f"{base}/sso/oidc/new")
    await audit(page, "journey-4-sso-oidc-form")
    await page.locator("#f-name").fill("Journey Works staff account")
    await page.locator("#f-issuer").fill(oidc_peer.issuer)
    await page.locator("#f-client_id").fill("jalon")
    await page.locator("#f-client_secret").fill("a-client-secret-of-the-provider")
    await page.locator(f"form[action='{base}/sso/oidc/new'] button[type=submit]").click()
    await page.wait_for_load_state("networkidle")
    await audit(page, "journey-4-sso-oidc-saved")
    assert await page.get_by_text("Journey Works staff account").count() >= 1
    # a plan, paid by bank transfer on invoice, and the invoice's PDF
    await page.goto(f"{base}/billing")
    await audit(page, "journey-4-billing")
    subscribe = page.locator(f"form[action='{base}/billing/subscribe']")
    await subscribe.locator("#f-plan").select_option(plan.code)
    if await subscribe.locator("#f-method-invoice").count():
        await subscribe.locator("#f-method-invoice").check()
    await subscribe.locator("button[type=submit]").click()
    await page.wait_for_load_state("networkidle")
    await audit(page, "journey-4-subscribed")
    await page.goto(f"{base}/billing/invoices")
    await audit(page, "journey-4-invoices")
    async with page.expect_download() as caught:
        await page.locator("a[href$='.pdf']").first.click()
    download = await caught.value
    pdf = await download.path()
    assert pdf.read_bytes().startswith(b"%PDF")


async def _onboarding_continue(page: Page) -> None:
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_load_state("networkidle")


async def test_journey_5_an_account_manager_onboards_a_foreign_agency_and_records_its_transfer(
    page: Page, account_manager: StaffFixture
) -> None:
    """An account manager signs in (password, then TOTP), onboards a Norwegian agency in
    English, invoiced in crowns and paid by bank transfer, sees its first invoice open, records
    the transfer as the bank statement writes it, and sees the invoice paid."""
    plan = await create_plan(
        STAFF,
        PlanFields(
            code=f"journey-licence-{uuid4().hex[:8]}",
            kind=PlanKind.LICENSE,
            names={"en": "Annual licence, 200 seats", "fr": "Licence annuelle, 200 sièges"},
            interval="year",
            overage_policy="warn",
            included_seats=200,
        ),
    )
    await set_price(STAFF, plan.code, "NOK", 6_000_000)
    slug = f"fjordby-{uuid4().hex[:6]}"
    await staff_sign_in(page, account_manager)
    await audit(page, "journey-5-back-office")
    await page.goto("/admin/tenants/new")
    await audit(page, "journey-5-onboarding-kind")
    await page.locator("#f-kind").select_option("foreign_agency")
    await page.locator("#f-country").fill("NO")
    await _onboarding_continue(page)
    # English and crowns, as the country suggests (and said again, as an account manager would)
    await expect(page.locator("#f-locale")).to_have_value("en")
    await expect(page.locator("#f-currency")).to_have_value("NOK")
    await page.locator("#f-locale").select_option("en")
    await page.locator("#f-name").fill("Fjordby Digital Services")
    await page.locator("#f-slug").fill(slug)
    await audit(page, "journey-5-onboarding-organization")
    await _onboarding_continue(page)
    await expect(page.locator("#f-collection_method")).to_have_value("send_invoice")
    await page.locator("#f-plan").select_option(f"{plan.code}:standard")
    await page.locator("#f-po_number").fill("FJ-2026-07")
    await audit(page, "journey-5-onboarding-plan")
    await _onboarding_continue(page)
    await page.locator("#f-billing_email").fill("faktura@fjordby.example")
    await page.locator("#f-address_line1").fill("Kaigata 3")
    await page.locator("#f-postal_code").fill("5003")
    await page.locator("#f-city").fill("Bergen")
    await page.locator("#f-vat_number").fill("NO987654321MVA")
    await audit(page, "journey-5-onboarding-billing")
    await _onboarding_continue(page)
    await page.locator("#f-admin_email").fill(f"sigrid.{slug}@fjordby.example")
    await page.locator("#f-admin_name").fill("Sigrid Haugen")
    await audit(page, "journey-5-onboarding-admin")
    await _onboarding_continue(page)
    await expect(page.locator("dl.details")).to_contain_text("Fjordby Digital Services")
    await page.locator("#f-reason").fill("Signed order FJ-2026-07")
    await audit(page, "journey-5-onboarding-confirm")
    await page.get_by_role("button", name="Create").click()
    await page.wait_for_url(re.compile(r".*/admin/tenants/[0-9a-f-]{36}$"))
    await expect(page.get_by_role("status")).to_contain_text("was created")
    await audit(page, "journey-5-tenant")
    tenant_id = UUID(page.url.rstrip("/").rsplit("/", 1)[1])
    agency = await tenant_by_id(tenant_id)
    assert (agency.slug, agency.default_locale) == (slug, "en")

    # its first invoice, in crowns, open
    [invoice] = await invoices.list_invoices(system_context(agency, "tests"))
    assert (invoice.currency, invoice.status) == ("NOK", "open")
    await (
        page.get_by_role("navigation", name="Tenant")
        .get_by_role("link", name="Invoices and payments")
        .click()
    )
    await page.wait_for_url(f"**/admin/tenants/{tenant_id}/invoices")
    row = page.locator("tr", has=page.get_by_role("rowheader", name=invoice.number or ""))
    await expect(row).to_contain_text("open")
    await expect(row).to_contain_text("NOK")
    await audit(page, "journey-5-invoice-open")

    # the transfer, as the bank statement writes it
    await page.get_by_role("link", name=f"Record a transfer {invoice.number}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Record a bank transfer")
    due = invoice.total
    await page.locator("#f-amount").fill(f"{due // 100:,}.{due % 100:02d}")
    await page.locator("#f-reference").fill("OVERFØRING FJORDBY FJ-2026-07")
    await page.locator("#f-reason").fill("Transfer on today's bank statement")
    await audit(page, "journey-5-payment")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Confirm: Record a bank transfer"
    )
    await audit(page, "journey-5-payment-confirm")
    await page.get_by_role("button", name="Confirm").click()
    await page.wait_for_url(f"**/admin/tenants/{tenant_id}")
    await expect(page.get_by_role("status").filter(has_text="A transfer of")).to_be_visible()
    await audit(page, "journey-5-payment-recorded")

    # the invoice is paid
    await page.goto(f"/admin/tenants/{tenant_id}/invoices")
    row = page.locator("tr", has=page.get_by_role("rowheader", name=invoice.number or ""))
    await expect(row).to_contain_text("paid")
    await expect(page.get_by_text("OVERFØRING FJORDBY FJ-2026-07")).to_be_visible()
    await expect(
        page.get_by_role("link", name=f"Record a transfer {invoice.number}")
    ).to_have_count(0)
    await audit(page, "journey-5-invoice-paid")
    paid = await invoices.get_invoice(system_context(agency, "tests"), invoice.id)
    assert (paid.status, paid.amount_paid) == ("paid", invoice.total)


AREA_5 = Path(__file__).resolve().parents[2] / "engine" / "content" / "demo" / "area-5.json"
FOUR_LANGUAGES = ("fr", "en", "nl", "de")


@pytest.fixture
async def _area_5_flags_reviewed_afterwards(db: str) -> AsyncIterator[None]:
    """Flags are global: the flags of area 5's challenges this journey reports and retires are
    reviewed away afterwards, so other tests are served them again."""
    yield
    async with database.global_transaction():
        await database.execute(
            """UPDATE challenge_flag SET status = 'reviewed', reviewed_at = now(),
                   recent_reports = 0, retired_at = NULL
               WHERE challenge_id LIKE 'ch-5.%'"""
        )
    forget_withdrawn()


@pytest.mark.usefixtures("_area_5_flags_reviewed_afterwards")
async def test_journey_6_a_content_editor_previews_a_challenge_in_four_languages_and_retires_it(
    page: Page, content_editor: StaffFixture, tenant_a: TenantFixture
) -> None:
    """A participant of a campaign on area 5 (problem solving) reports the question they are
    shown; the content editor finds it in the bank, previews it in French, English, Dutch and
    German (each statement as the bank file writes it), retires it from the problem-report
    queue with a reason, and sees it retired there and on its preview."""
    written = {c["id"]: c for c in json.loads(AREA_5.read_text(encoding="utf-8"))["challenges"]}
    bank = current_bank()
    area_5 = [code for code in bank.competences if code.startswith("5.")]
    assert area_5, "the bank in use has no area 5"
    profile = await create_target_profile(
        tenant_a.owner_ctx, TargetProfileFields(name="Problem solving", competences=area_5)
    )
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Problem solving", target_profile_id=profile.id)
    )
    paula = await make_participant(tenant_a)
    participation = await start_or_resume(paula.ctx, campaign.id)
    view = await current_challenge(paula.ctx, participation.id)
    assert view is not None
    challenge_id = view.challenge_id
    assert challenge_id.startswith("ch-5."), challenge_id
    statements = written[challenge_id]["statement"]
    assert set(FOUR_LANGUAGES) <= set(bank.challenge_by_id[challenge_id].locales)
    await report_problem(
        paula.ctx, participation.id, challenge_id, "unclear_statement", "The Dutch text reads oddly"
    )

    await staff_sign_in(page, content_editor)
    await audit(page, "journey-6-framework")
    await page.get_by_role("link", name="Challenges", exact=True).click()
    await page.wait_for_url("**/admin/content/challenges")
    word = max(statements["en"].split(), key=len).strip(".,;:?!«»\"'()")
    await page.locator("#f-search").fill(word)
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_load_state("networkidle")
    await audit(page, "journey-6-challenges")
    await page.get_by_role("link", name=challenge_id, exact=True).click()
    await page.wait_for_url(f"**/admin/content/challenges/{challenge_id}")
    languages = page.get_by_role("navigation", name="Languages of the challenge")
    seen = set()
    for locale in FOUR_LANGUAGES:
        await languages.locator(f"a[href$='?locale={locale}']").click()
        await page.wait_for_url(f"**/admin/content/challenges/{challenge_id}?locale={locale}")
        preview = page.locator(".preview")
        await expect(preview).to_have_attribute("lang", locale)
        statement = (await preview.locator(".statement").first.inner_text()).strip()
        assert statement.startswith(statements[locale].strip()), (locale, statement)
        seen.add(statements[locale])
        await expect(languages.locator("a[aria-current=page]")).to_have_attribute(
            "href", re.compile(rf"\?locale={locale}$")
        )
        await audit(page, f"journey-6-preview-{locale}")
    assert len(seen) == len(FOUR_LANGUAGES)  # four different texts, not one language four times

    # retired from the queue, confirmed with a reason
    await page.get_by_role("link", name="Problem reports").click()
    await page.wait_for_url("**/admin/content/reports")
    await expect(page.get_by_text("The Dutch text reads oddly")).to_be_visible()
    await audit(page, "journey-6-reports")
    await page.get_by_role("button", name=f"Retire {challenge_id}…").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Retire {challenge_id}?")
    await page.locator("#f-reason").fill("The Dutch statement needs rewriting")
    await audit(page, "journey-6-retire-confirm")
    await page.get_by_role("button", name="Retire the challenge").click()
    await page.wait_for_url("**/admin/content/reports")
    await expect(page.get_by_text(f"{challenge_id} is retired")).to_be_visible()
    await expect(page.get_by_role("button", name=f"Restore {challenge_id}…")).to_be_visible()
    await audit(page, "journey-6-retired")
    await page.goto(f"/admin/content/challenges/{challenge_id}")
    await expect(
        page.get_by_text("no test serves this challenge, in any organization")
    ).to_be_visible()
    await expect(page.get_by_role("button", name=f"Restore {challenge_id}…")).to_be_visible()
    await audit(page, "journey-6-preview-retired")
    assert challenge_id in await withdrawn_challenges()
