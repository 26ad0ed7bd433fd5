"""SAML in a real browser (Debian's Chromium): the IdP's page lives on another site than
Jalon, so its form's POST to the ACS is cross-site and Chromium does not send the
SameSite=Lax session cookie with it; the ACS's redirect to itself is a top-level GET, which
does carry it, and the sign-in completes against the flow that browser started."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from playwright.async_api import Request, async_playwright

from core.settings import get_settings
from sso import connections, saml
from tests.browser.conftest import _chromium, browser_app, live_server  # noqa: F401 - fixtures
from tests.conftest import TenantFixture
from tests.sso.saml_idp import Issue, Person, TestIdp

pytestmark = pytest.mark.browser

#: Another site than Jalon's 127.0.0.1 (Chromium resolves it to 127.0.0.1 too): what makes
#: the IdP's POST cross-site.
IDP_HOST = "idp.example.test"


class IdpPages:
    """The IdP's sign-in page, served on 127.0.0.1 and reached as `IDP_HOST`: it answers an
    AuthnRequest with an auto-submitted form that posts the signed response to the ACS."""

    def __init__(self) -> None:
        self.idp: TestIdp | None = None
        self.person: Person | None = None
        self.urls: saml.ServiceProviderUrls | None = None
        self.post_to = ""
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.answer(f"http://{IDP_HOST}:{pages.port}{self.path}")
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_port
        self.thread = Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, url: str) -> str:
        assert self.idp is not None
        assert self.person is not None
        assert self.urls is not None
        request_id, _, relay_state = self.idp.read_request(url)
        response = self.idp.response(
            self.urls.entity_id, self.urls.acs_url, self.person, Issue(in_response_to=request_id)
        )
        return (
            f'<form method="post" action="{html.escape(self.post_to)}">'
            f'<input type="hidden" name="SAMLResponse" value="{html.escape(response)}">'
            f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">'
            "<button>Continue</button></form><script>document.forms[0].submit()</script>"
        )


@pytest.fixture
def idp_pages() -> Iterator[IdpPages]:
    pages = IdpPages()
    pages.thread.start()
    yield pages
    pages.server.shutdown()
    pages.server.server_close()
    pages.thread.join()


async def test_a_browser_signs_in_through_a_cross_site_idp_post(
    live_server: str,  # noqa: F811 - the fixture
    idp_pages: IdpPages,
    tenant_a: TenantFixture,
) -> None:
    idp = TestIdp(sso_url=f"http://{IDP_HOST}:{idp_pages.port}/saml/sso")
    fields = saml.SamlConnectionFields(
        name="Company IdP",
        metadata=saml.parse_idp_metadata(idp.metadata),
        email_verified_trusted=True,
    )
    connection = await saml.create_saml_connection(tenant_a.owner_ctx, fields, datetime.now(UTC))
    await connections.set_enabled(tenant_a.owner_ctx, connection.id, True)
    # What the SP expects (Destination, Recipient, Audience) is named from JALON_BASE_URL;
    # the browser reaches the same application on the live server's port.
    urls = saml.sp_urls(get_settings().base_url, tenant_a.slug, connection.id)
    idp.trust(saml.sp_metadata(connection, urls))
    idp_pages.idp, idp_pages.urls = idp, urls
    idp_pages.person = Person(email=tenant_a.member.email)
    idp_pages.post_to = f"{live_server}/sso/{tenant_a.slug}/saml/{connection.id}/acs"

    cookies_sent: dict[str, bool] = {}

    async def seen(request: Request) -> None:
        if "/saml/" in request.url and "/acs" in request.url:
            headers = await request.all_headers()
            cookies_sent[request.method] = "jalon_session=" in headers.get("cookie", "")

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=_chromium(),
            args=[
                "--no-sandbox",
                "--disable-dev-shm-usage",
                f"--host-resolver-rules=MAP {IDP_HOST} 127.0.0.1",
            ],
        )
        try:
            context = await chromium.new_context(base_url=live_server)
            page = await context.new_page()
            page.on("request", seen)
            members = f"/o/{tenant_a.slug}/members"
            await page.goto(f"/sso/{tenant_a.slug}/saml/{connection.id}/start?next={members}")
            await page.wait_for_url(f"**{members}")

            assert tenant_a.member.email in await page.content()
            # the IdP's POST came without the session; the ACS's GET brought it back
            assert cookies_sent == {"POST": False, "GET": True}
            session = [c for c in await context.cookies() if c["name"] == "jalon_session"]
            assert [cookie["sameSite"] for cookie in session] == ["Lax"]
        finally:
            await chromium.close()
