"""A refused form is kept in the session for its page (Post/Redirect/Get, `web.kept_forms`),
bounded whatever is posted: sessions live in Redis and in every process's local copies, so
a form with a huge extra field, or thousands of ticked values, must not be copied into them.
Over HTTP: the results page's share form, refused, with a 1.9 MB field beside it."""

from __future__ import annotations

from core.settings import Settings
from tests.api.conftest import Browser
from tests.api.test_email_verification import _finished, _sign_up
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture
from web.front import session_store
from web.sessions import COOKIE


async def _session_size(browser: Browser, settings: Settings) -> int:
    store = session_store(settings)
    async with store:  # closes its Redis client
        raw = await store.get(browser.client.cookies[COOKIE])
    assert raw is not None
    return len(raw)


async def test_a_refused_share_keeps_its_own_field_not_a_huge_one(
    browser: Browser, tenant_a: TenantFixture, settings: Settings
) -> None:
    campaign = await make_campaign(tenant_a)
    email = await _sign_up(browser, campaign.code, "Kim")
    page = await _finished(tenant_a, campaign.id, email)
    results = page + "/results"
    huge = {"x": "a" * 1_500_000, "consent": "no", "answer": ["b" * 100] * 2_000}
    refused = await browser.post(page + "/share", huge, page=results)
    assert refused.status_code == 303
    assert await _session_size(browser, settings) < 20_000
    told = await browser.get(results)
    assert told.status_code == 409
    assert "Confirm your email address before sharing your results" in told.text
