"""The API's documentation pages over HTTP: Swagger UI at /schema, Redoc at /schema/redoc,
both from files Jalon serves (no address of another site in the page, and only the files the
pages load), under a Content-Security-Policy without 'unsafe-inline'; and the favicon every
page links."""

from __future__ import annotations

import re

import httpx
import pytest

from api.api_docs import ASSETS, ASSETS_PATH, package_static
from tests.api.conftest import Browser
from tests.conftest import TenantFixture


def _policy(response: httpx.Response) -> dict[str, str]:
    header = response.headers["content-security-policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def _linked(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


@pytest.mark.parametrize(
    ("path", "viewer"),
    [
        ("/schema", "/static/docs/swagger-ui-bundle.js"),
        ("/schema/swagger", "/static/docs/swagger-ui-bundle.js"),
        ("/schema/redoc", "/static/docs/redoc.standalone.js"),
    ],
)
async def test_the_documentation_pages_use_only_files_of_ours_under_the_policy(
    client: httpx.AsyncClient, path: str, viewer: str
) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert "<script>" not in page.text  # no inline script
    assert "<style" not in page.text
    linked = _linked(page.text)
    assert viewer in linked
    assert all(url.startswith("/") and not url.startswith("//") for url in linked), linked
    header = page.headers["content-security-policy"]
    assert "unsafe-inline" not in header
    assert "unsafe-eval" not in header
    policy = _policy(page)
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    for url in linked:
        served = await client.get(url)
        assert served.status_code == 200, url
        assert "cdn." not in served.text, url


async def test_only_the_files_the_pages_load_are_served(client: httpx.AsyncClient) -> None:
    loaded = set()
    for path in ("/schema", "/schema/redoc"):
        page = (await client.get(path)).text
        loaded |= {url for url in _linked(page) if url.startswith(f"{ASSETS_PATH}/")}
    assert loaded == {f"{ASSETS_PATH}/{name}" for name in ASSETS | {"redoc.standalone.js"}}
    swagger = package_static() / "swagger-ui-dist"
    others = {path.name for path in swagger.iterdir()} - ASSETS
    # Swagger UI's OAuth2 redirect page (the API takes no OAuth2) and the source maps.
    assert {"oauth2-redirect.html", "oauth2-redirect.js", "swagger-ui-bundle.js.map"} <= others
    for name in sorted(others | {"redoc.standalone.js.map", "nothing.js", "docs/api-docs.css"}):
        assert (await client.get(f"{ASSETS_PATH}/{name}")).status_code == 404, name
    assert (await client.head(f"{ASSETS_PATH}/oauth2-redirect.html")).status_code == 404
    assert (await client.head(f"{ASSETS_PATH}/swagger-ui.css")).status_code == 200


async def test_redocs_styles_are_allowed_by_this_responses_nonce_only(
    client: httpx.AsyncClient,
) -> None:
    first, second = await client.get("/schema/redoc"), await client.get("/schema/redoc")
    nonces = []
    for page in (first, second):
        [nonce] = re.findall(
            r'<script src="/static/docs/redoc.standalone.js" nonce="([^"]+)"', page.text
        )
        assert _policy(page)["style-src"] == f"'self' 'nonce-{nonce}'"
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    # the other pages keep the plain policy
    assert _policy(await client.get("/schema"))["style-src"] == "'self'"
    assert _policy(await client.get("/pricing"))["style-src"] == "'self'"


async def test_the_documentation_lists_every_api_operation(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/campaigns" in schema["paths"]
    redoc = await client.get("/static/docs/redoc.standalone.js")
    assert redoc.headers["content-type"].startswith("text/javascript")
    assert "cdn.redoc.ly" not in redoc.text  # its logo is not fetched from Redocly's site


async def test_the_favicon_answers_at_the_root_and_every_page_links_one(
    client: httpx.AsyncClient, browser: Browser, tenant_a: TenantFixture
) -> None:
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    svg = await client.get("/static/favicon.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    await browser.login(tenant_a.owner)
    for path in ("/c", "/pricing", "/nowhere", f"/o/{tenant_a.slug}", "/schema/redoc"):
        page = await browser.get(path)
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text, (
            path
        )
