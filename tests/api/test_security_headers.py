"""The security headers (issue 13 §2.5, `web.headers`): a Content-Security-Policy without
'unsafe-inline' on HTML pages, nosniff and a referrer policy everywhere, HSTS over https, and
no-store on pages of signed-in people, downloads and API answers."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from tests.api.conftest import Browser, bearer, issue_token
from tests.api.running import asgi_transport
from tests.conftest import TenantFixture

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [ROOT / "web" / "templates", ROOT / "api" / "templates", ROOT / "admin" / "templates"]


def _policy(response: httpx.Response) -> dict[str, str]:
    header = response.headers["content-security-policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def _assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    policy = _policy(response)
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert "unsafe-eval" not in response.headers["content-security-policy"]
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/", "/pricing", "/signup", "/password/forgot", "/nowhere"])
async def test_public_pages_and_error_pages_carry_the_policy(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    _assert_page_headers(response)
    assert _policy(response)["form-action"] == "'self'"
    assert "strict-transport-security" not in response.headers  # plain http


async def test_only_the_sign_in_form_may_reach_an_identity_provider(
    client: httpx.AsyncClient,
) -> None:
    login = await client.get("/login")
    _assert_page_headers(login)
    assert _policy(login)["form-action"] == "'self' https:"
    for path in ("/login/link", "/c/NOCODE99", "/password/forgot"):
        assert _policy(await client.get(path))["form-action"] == "'self'", path


async def test_signed_in_pages_are_not_stored(browser: Browser, tenant_a: TenantFixture) -> None:
    await browser.login(tenant_a.owner)
    for path in (f"/o/{tenant_a.slug}", f"/o/{tenant_a.slug}/members", "/account", "/o/?all=1"):
        response = await browser.get(path)
        assert response.status_code == 200, path
        _assert_page_headers(response)
        assert response.headers["cache-control"] == "no-store", path


async def test_api_answers_are_not_stored_and_are_not_sniffed(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    response = await client.get("/api/v1/organization", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers  # a JSON answer, not a page


async def test_static_files_keep_their_caching(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/jalon.css")
    assert response.status_code == 200
    assert response.headers.get("cache-control") != "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    script = await client.get("/static/jalon.js")
    assert script.status_code == 200


async def test_hsts_is_sent_over_https_only(app: Litestar) -> None:
    async with httpx.AsyncClient(
        transport=asgi_transport(app), base_url="https://127.0.0.1"
    ) as secure:
        response = await secure.get("/")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_an_organization_colour_is_a_stylesheet_not_an_inline_style(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/brand/12ab9f.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.text.startswith(":root { --brand: #12ab9f; --on-brand: #111827; ")
    assert "immutable" in response.headers["cache-control"]
    for bad in ("12AB9F.css", "12ab9f", "12ab9f0.css", "red.css", "..%2Fx.css"):
        assert (await client.get(f"/brand/{bad}")).status_code == 404, bad


_INLINE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def test_no_template_holds_inline_script_or_style() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for directory in TEMPLATES
        for path in directory.rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _INLINE.search(line)
    ]
    assert found == []
