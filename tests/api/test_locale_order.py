"""Which language a page speaks, over HTTP: the person's choice, then what the page belongs to
(a campaign's languages, an organization's default), then the browser's Accept-Language, then
the instance's default; and the four languages (fr, en, nl, de) people and organizations can
choose."""

from __future__ import annotations

import re

import pytest

from core import database
from tests.api.conftest import Browser, bearer, issue_token
from tests.campaigns.conftest import make_campaign
from tests.conftest import TenantFixture, make_user

_LANG = re.compile(r'<html lang="([a-z]+)"')


def _lang(html: str) -> str:
    match = _LANG.search(html)
    assert match, html[:300]
    return match.group(1)


async def _page_lang(browser: Browser, path: str, accept: str | None) -> str:
    headers = {"accept-language": accept} if accept is not None else {"accept-language": ""}
    response = await browser.client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return _lang(response.text)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("de-DE,de;q=0.9", "de"), ("nl-BE,nl;q=0.9,fr;q=0.5", "nl"), ("es", "fr"), (None, "fr")],
)
async def test_a_page_of_no_organization_follows_the_browser(
    browser: Browser, accept: str | None, expected: str
) -> None:
    """/login belongs to no one: Accept-Language among the four, else JALON_DEFAULT_LOCALE."""
    assert await _page_lang(browser, "/login", accept) == expected


async def test_a_campaign_outranks_the_browser(browser: Browser, tenant_a: TenantFixture) -> None:
    english_only = await make_campaign(tenant_a, locales=("en",))
    both = await make_campaign(tenant_a, name="Both", locales=("fr", "en"))
    # A German browser on an English-only campaign: English, the campaign's language.
    assert await _page_lang(browser, f"/c/{english_only.code}", "de-DE,de") == "en"
    assert await _page_lang(browser, f"/c/{english_only.code}", "fr-FR") == "en"
    # A campaign in French and English: the browser's favourite among those two ...
    assert await _page_lang(browser, f"/c/{both.code}", "nl-BE,en;q=0.8,fr;q=0.5") == "en"
    assert await _page_lang(browser, f"/c/{both.code}", "en-GB,fr;q=0.9") == "en"
    # ... else the campaign's first language, not a language the browser prefers.
    assert await _page_lang(browser, f"/c/{both.code}", "de-DE,nl;q=0.9") == "fr"
    assert await _page_lang(browser, f"/c/{both.code}", None) == "fr"
    # The account form of the campaign speaks it too.
    assert await _page_lang(browser, f"/c/{english_only.code}/account", "de") == "en"


async def test_a_visitors_choice_outranks_the_campaign(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, locales=("en",))
    chosen = await browser.post("/locale", {"locale": "nl", "next": f"/c/{campaign.code}"})
    assert chosen.status_code == 303
    response = await browser.client.get(f"/c/{campaign.code}", headers={"accept-language": "en"})
    assert _lang(response.text) == "nl"
    assert "Taal" in response.text  # the language menu's label, in Dutch


async def test_the_persons_language_outranks_everything(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a, locales=("en",))
    person = await make_user("Dora Deutsch")
    await browser.login(person)
    saved = await browser.post(
        "/account", {"name": "Dora Deutsch", "locale": "de"}, page="/account"
    )
    assert saved.status_code == 303
    page = await browser.get("/account")
    assert _lang(page.text) == "de"
    assert "Ihre Änderungen wurden gespeichert." in page.text
    for code, name in (
        ("fr", "Français"),
        ("en", "English"),
        ("nl", "Nederlands"),
        ("de", "Deutsch"),
    ):
        assert f'value="{code}"' in page.text
        assert name in page.text
    response = await browser.client.get(f"/c/{campaign.code}", headers={"accept-language": "fr"})
    assert _lang(response.text) == "de"
    async with database.global_transaction():
        rows = await database.fetch("SELECT locale FROM user_account WHERE id = $1", person.id)
    assert rows == [{"locale": "de"}]


async def test_an_unknown_language_is_refused_on_the_account_page(browser: Browser) -> None:
    person = await make_user("Eve Espanol")
    await browser.login(person)
    refused = await browser.post("/account", {"name": "Eve", "locale": "es"}, page="/account")
    assert refused.status_code == 422
    assert (await browser.get("/account")).status_code == 200


@pytest.mark.parametrize("locale", ["nl", "de"])
async def test_an_organization_can_default_to_dutch_or_german(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture, locale: str
) -> None:
    other_default = tenant_b.owner_ctx.tenant.default_locale
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/settings"
    form = {"name": "Stad Brussel", "default_locale": locale, "brand_colour": "#1D4ED8"}
    response = await browser.post(page, form, page=page)
    assert response.status_code == 303, response.text
    async with database.global_transaction():
        rows = await database.fetch(
            "SELECT id, default_locale FROM organization WHERE id = ANY($1::uuid[])",
            [tenant_a.id, tenant_b.id],
        )
    defaults = {row["id"]: row["default_locale"] for row in rows}
    assert defaults == {tenant_a.id: locale, tenant_b.id: other_default}  # the other untouched


async def test_an_api_caller_is_answered_in_the_language_it_asks_for(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    """A program has no account nor menu: its Accept-Language is its choice, before the
    organization's default (here German), which stands in when it asks for none we speak."""
    async with database.global_transaction():
        await database.execute(
            "UPDATE organization SET default_locale = 'de' WHERE id = $1", tenant_a.id
        )
    token = await issue_token(tenant_a.owner_ctx, "org:learners:read")

    async def message(accept: str) -> str:
        response = await browser.client.get(
            "/api/v1/learners",
            params={"limit": "500"},
            headers={**bearer(token), "accept-language": accept},
        )
        assert response.status_code == 422, response.text
        text: str = response.json()["error"]["message"]
        return text

    assert await message("fr-FR,fr;q=0.9") == "Demandez entre 1 et 100 éléments par page."
    assert await message("en") == "Ask for between 1 and 100 items per page."
    assert await message("es") == "Fordern Sie zwischen 1 und 100 Einträge pro Seite an."
    assert await message("") == "Fordern Sie zwischen 1 und 100 Einträge pro Seite an."
