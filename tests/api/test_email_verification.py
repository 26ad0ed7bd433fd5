"""Sign-ups verify their email before results are shared (issue 14, gap 8). Over HTTP: a
password sign-up is mailed a verification link (a button, never a GET that acts), sharing is
refused until it is used, the link works once, expires, and verifies its own account only;
the mail can be sent again, a few times an hour; a magic link or a reset verifies too."""

from __future__ import annotations

import re
from uuid import UUID, uuid4

from core import database
from tenants.accounts import find_user_by_email
from tests.api.conftest import PASSWORD, Browser, audit_actions
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.mail import last_link, mails_to

LINK = r"http://127\.0\.0\.1:8000(/email/verify/\S+)"
REFUSED = "Confirm your email address before sharing your results"


async def _sign_up(browser: Browser, code: str, name: str) -> str:
    """A participant's password sign-up on the campaign's page; their address."""
    email = f"{name.lower()}-{uuid4().hex[:8]}@example.org"
    page = f"/c/{code}/account"
    form = {
        "name": name,
        "email": email,
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "terms": "yes",
    }
    created = await browser.post(page, form, page=page)
    assert created.status_code == 303, created.text
    return email


async def _finished(tenant: TenantFixture, campaign_id: UUID, email: str) -> str:
    """A completed participation of the account of `email`; its results page."""
    account = await find_user_by_email(email)
    assert account is not None
    learner, participation = uuid4(), uuid4()
    async with as_tenant(tenant.id):
        await database.execute(
            "INSERT INTO learner (tenant_id, id, user_id, name) VALUES ($1, $2, $3, 'P')",
            tenant.id,
            learner,
            account.id,
        )
        await database.execute(
            """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt,
                   status, completed_at) VALUES ($1, $2, $3, $4, 1, 'completed', now())""",
            tenant.id,
            participation,
            campaign_id,
            learner,
        )
        await database.execute(
            """INSERT INTO result (tenant_id, id, participation_id, level, score, competences,
                   mastered_skills)
               VALUES ($1, $2, $3, 3, 42, $4::jsonb, '{}')""",
            tenant.id,
            uuid4(),
            participation,
            '{"1.1": {"level": 4}}',
        )
    return f"/p/{tenant.slug}/{participation}"


async def _share(browser: Browser, page: str) -> str:
    """Share from the results page; the results page shown after."""
    posted = await browser.post(page + "/share", {"consent": "yes"}, page=page + "/results")
    assert posted.status_code == 303
    return (await browser.get(page + "/results")).text


async def test_sharing_waits_for_the_verified_address(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    email = await _sign_up(browser, campaign.code, "Vera")
    page = await _finished(tenant_a, campaign.id, email)
    link = await last_link(email, r"/email/verify/\S+")

    results = await browser.get(page + "/results")
    assert f"open the link we sent to {email}" in results.text
    assert 'action="/account/verify-email"' in results.text
    before = await audit_actions(tenant_a.id)
    assert REFUSED in await _share(browser, page)
    assert await audit_actions(tenant_a.id) == before

    # Opening the link (as a mail scanner would) verifies nothing: a button does.
    confirm = await browser.get(link)
    assert confirm.status_code == 200
    assert f'action="{link}"' in confirm.text
    assert REFUSED in await _share(browser, page)

    verified = await browser.post(link, {}, page=link)
    assert verified.status_code == 303
    told = await browser.get(verified.headers["location"], follow_redirects=True)
    assert f"The address {email} is verified." in told.text
    shown = await _share(browser, page)
    assert "Your results are shared with Alpha Org." in shown
    assert await audit_actions(tenant_a.id) == [*before, "participation.shared"]

    # Single use.
    again = await browser.post(link, {}, page=link)
    assert again.status_code == 410


async def test_an_expired_link_is_refused(browser: Browser, tenant_a: TenantFixture) -> None:
    campaign = await make_campaign(tenant_a)
    email = await _sign_up(browser, campaign.code, "Late")
    page = await _finished(tenant_a, campaign.id, email)
    link = await last_link(email, r"/email/verify/\S+")
    async with database.global_transaction():
        await database.execute(
            """UPDATE user_token SET expires_at = now() - interval '1 minute'
               WHERE purpose = 'email_verification' AND lower(email) = lower($1)""",
            email,
        )
    expired = await browser.post(link, {}, page=link)
    assert expired.status_code == 410
    assert "This link has expired or has already been used." in expired.text
    assert REFUSED in await _share(browser, page)


async def test_another_persons_link_does_not_verify_you(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    theirs = await make_campaign(tenant_b)
    alice = await _sign_up(browser, theirs.code, "Alice")
    alices_link = await last_link(alice, r"/email/verify/\S+")
    await browser.post("/logout", page="/account")
    bob = await _sign_up(browser, campaign.code, "Bob")
    bobs_page = await _finished(tenant_a, campaign.id, bob)
    used = await browser.post(alices_link, {}, page=alices_link)
    assert used.status_code == 303
    # Alice's address is proven (whoever holds her mail's link), Bob's is not.
    bob_account, alice_account = await find_user_by_email(bob), await find_user_by_email(alice)
    assert bob_account is not None
    assert alice_account is not None
    assert not bob_account.email_verified
    assert alice_account.email_verified
    assert REFUSED in await _share(browser, bobs_page)


async def test_a_token_bound_to_an_old_address_verifies_nothing(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    email = await _sign_up(browser, campaign.code, "Moved")
    link = await last_link(email, r"/email/verify/\S+")
    async with database.global_transaction():
        await database.execute(
            "UPDATE user_account SET email = $2 WHERE lower(email) = lower($1)",
            email,
            "new-" + email,
        )
    assert (await browser.post(link, {}, page=link)).status_code == 410
    account = await find_user_by_email("new-" + email)
    assert account is not None
    assert not account.email_verified


async def test_the_mail_can_be_sent_again_a_few_times(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    email = await _sign_up(browser, campaign.code, "Resend")
    page = await _finished(tenant_a, campaign.id, email)
    results = page + "/results"
    assert len(await mails_to(email)) == 1
    for _ in range(3):
        sent = await browser.post("/account/verify-email", {"next": results}, page=results)
        assert sent.status_code == 303
        assert sent.headers["location"] == results
        assert "We sent the verification mail again" in (await browser.get(results)).text
    refused = await browser.post("/account/verify-email", {"next": results}, page=results)
    assert refused.status_code == 303
    assert "sent several times already" in (await browser.get(results)).text
    assert len(await mails_to(email)) == 4
    # Each mail's link works (the latest one here), and then the others are spent.
    links = [m.group(1) for body in await mails_to(email) if (m := re.search(LINK, body))]
    assert (await browser.post(links[-1], {}, page=links[-1])).status_code == 303
    assert (await browser.post(links[0], {}, page=links[0])).status_code == 410


async def test_a_magic_link_or_a_reset_verifies_the_address(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    for way in ("/login/link", "/password/forgot"):
        email = await _sign_up(browser, campaign.code, "Proven")
        page = await _finished(tenant_a, campaign.id, email)
        await browser.post("/logout", page="/account")
        await browser.post(way, {"email": email}, page=way)
        pattern = r"http://127\.0\.0\.1:8000(/login/link/[^\s?]+|/password/reset/\S+)"
        bodies = await mails_to(email)
        match = re.search(pattern, bodies[-1])
        assert match
        form = {"password": "another long password", "password_confirm": "another long password"}
        used = await browser.post(match.group(1), form, page=match.group(1))
        assert used.status_code == 303
        assert "Your results are shared" in await _share(browser, page)
        await browser.post("/logout", page="/account")


async def test_an_organization_sign_up_is_mailed_a_verification_link(browser: Browser) -> None:
    email = f"founder-{uuid4().hex[:8]}@example.org"
    form = {
        "name": "Founder",
        "email": email,
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "terms": "on",
        "organization_name": f"Founded {uuid4().hex[:6]}",
        "kind": "company",
        "country": "FR",
    }
    created = await browser.post("/signup", form, page="/signup")
    assert created.status_code == 303, created.text
    link = await last_link(email, r"/email/verify/\S+")
    assert (await browser.post(link, {}, page=link)).status_code == 303
    account = await find_user_by_email(email)
    assert account is not None
    assert account.email_verified
