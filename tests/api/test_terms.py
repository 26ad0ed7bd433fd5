"""The terms of use (issue 14, gap 8): a plain public page at /terms that the terms checkbox
of both sign-up forms links to, or the operator's own terms when `JALON_TERMS_URL` is set."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.settings import get_settings, load_settings
from tests.api.conftest import Browser
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture


async def test_the_terms_page_is_public_and_says_what_is_kept(client: httpx.AsyncClient) -> None:
    page = await client.get("/terms")
    assert page.status_code == 200
    for heading in (
        "What Jalon stores about you",
        "Who sees your results",
        "How long it is kept",
        "Having your data deleted",
        "Legal notice",
    ):
        assert heading in page.text
    assert "sees your results only if you choose to share them" in page.text


async def test_the_terms_page_is_translated(client: httpx.AsyncClient) -> None:
    page = await client.get("/terms", headers={"accept-language": "fr"})
    assert page.status_code == 200
    assert "Ce que Jalon conserve sur vous" in page.text


async def test_both_sign_up_forms_link_the_terms(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    for path in ("/signup", f"/c/{campaign.code}/account"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert 'href="/terms"' in page.text, path
        assert 'aria-describedby="f-terms-hint"' in page.text, path


@pytest.fixture
def operator_terms(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = "https://www.example.org/our-terms"
    monkeypatch.setenv("JALON_TERMS_URL", url)
    get_settings.cache_clear()
    yield url
    monkeypatch.delenv("JALON_TERMS_URL")
    get_settings.cache_clear()


async def test_the_operators_terms_are_linked_when_set(
    browser: Browser, tenant_a: TenantFixture, operator_terms: str
) -> None:
    campaign = await make_campaign(tenant_a)
    for path in ("/signup", f"/c/{campaign.code}/account"):
        page = await browser.get(path)
        assert f'href="{operator_terms}"' in page.text, path
        assert 'href="/terms"' not in page.text, path
        # A form refused (the terms not accepted) keeps the link beside the error.
        refused = await browser.post(path, {"name": "Terry"}, page=path)
        assert refused.status_code == 422, path
        assert "Accept the terms of use to continue." in refused.text
        assert f'href="{operator_terms}"' in refused.text, path


def test_a_terms_address_that_is_not_a_web_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JALON_TERMS_URL", "javascript:alert(1)")
    with pytest.raises(RuntimeError, match="JALON_TERMS_URL"):
        load_settings()
