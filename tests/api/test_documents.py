"""Documentation pages of the app over HTTP (issue 14, gap 9): the webhooks page of the
console links /docs/webhooks, docs/webhooks.md rendered as a public page of the site, under
its Content-Security-Policy, with raw HTML from Markdown escaped."""

from __future__ import annotations

from tests.api.conftest import Browser
from tests.conftest import TenantFixture
from web.documents import render_markdown


async def test_the_webhook_documentation_is_a_public_page(browser: Browser, db: str) -> None:
    page = await browser.get("/docs/webhooks")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Webhooks</h1>" in page.text
    assert "<title>Webhooks · Jalon documentation" in page.text
    assert "<table>" in page.text
    assert "<code>participation.shared</code>" in page.text
    assert "Jalon-Signature" in page.text
    assert '<article class="document" lang="en">' in page.text
    # A link to another file of the repository means nothing here: its text stays.
    assert 'href="adr/' not in page.text
    assert "ADR 0012" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy or "default-src 'self'" in policy
    assert "<script>" not in page.text.split('<article class="document"', 1)[1]


async def test_an_unknown_document_is_not_found(browser: Browser, db: str) -> None:
    for name in ("nothing", "..%2Fpyproject.toml", "webhooks.md", "ADR"):
        assert (await browser.get(f"/docs/{name}")).status_code == 404


def test_raw_html_and_script_links_are_not_rendered() -> None:
    html = render_markdown(
        "# Title\n\n<script>alert(1)</script>\n\n"
        "[click](javascript:alert(1)) [site](https://example.org) [file](other.md)\n\n"
        '<img src=x onerror="alert(1)">\n'
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    assert 'href="javascript' not in html
    assert 'href="https://example.org"' in html
    assert 'href="other.md"' not in html
    assert "file" in html


async def test_the_console_webhooks_page_links_the_documentation(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/webhooks")
    assert page.status_code == 200
    assert 'href="/docs/webhooks"' in page.text
