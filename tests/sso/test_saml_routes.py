"""SAML over HTTP, end to end with the pysaml2 IdP of `saml_idp`: start → the IdP → the IdP's
cross-site POST to the ACS (made here by a client without the browser's cookies, as a
SameSite=Lax browser sends it) → the redirected GET in the browser → signed in; refusals
audited and explained; the replay cache shared by two application instances; IdP-initiated
sign-in off, then on; "test this connection"; the metadata; the console's pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import httpx
import pytest
from litestar import Litestar

from api.app import create_app
from api.routes.sso_saml import ACS_GETS_PER_MINUTE
from core.database import fetch
from core.settings import Settings, get_settings
from sso import connections, saml
from tests.api.conftest import Browser, audit_actions, browser_on
from tests.api.running import running
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso.saml_idp import Issue, Person, TestIdp


@pytest.fixture
def idp() -> TestIdp:
    return TestIdp()


async def _connect(
    tenant: TenantFixture, idp: TestIdp, *, enabled: bool = True, **changes: Any
) -> saml.SamlConnection:
    fields = saml.SamlConnectionFields(
        name="Company IdP",
        metadata=saml.parse_idp_metadata(idp.metadata),
        email_verified_trusted=True,
        **changes,
    )
    connection = await saml.create_saml_connection(tenant.owner_ctx, fields, datetime.now(UTC))
    if enabled:
        await connections.set_enabled(tenant.owner_ctx, connection.id, True)
    idp.trust(saml.sp_metadata(connection, _urls(tenant, connection)))
    return connection


def _urls(tenant: TenantFixture, connection: saml.SamlConnection) -> saml.ServiceProviderUrls:
    return saml.sp_urls(get_settings().base_url, tenant.slug, connection.id)


def _path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == get_settings().base_url
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _post_from_idp(app: Litestar, acs_url: str, response: str, relay_state: str) -> str:
    """The IdP's auto-submitted form, cross-site: no cookie of the browser goes with it.
    Where the ACS sends the browser next."""
    async with browser_on(app) as idp_page:
        answer = await idp_page.client.post(
            _path(acs_url), data={"SAMLResponse": response, "RelayState": relay_state}
        )
    assert answer.status_code == 303, answer.text
    assert "set-cookie" not in answer.headers  # nothing of a session is made by the POST
    return str(answer.headers["location"])


async def _sign_in(
    app: Litestar, browser: Browser, tenant: TenantFixture, idp: TestIdp, person: Person, **q: str
) -> httpx.Response:
    connection = await _connect(tenant, idp)
    urls = _urls(tenant, connection)
    query = "&".join(f"{k}={v}" for k, v in q.items())
    start = await browser.client.get(f"/sso/{tenant.slug}/saml/{connection.id}/start?{query}")
    assert start.status_code == 303, start.text
    request_id, acs_url, relay_state = idp.read_request(start.headers["location"])
    assert acs_url == urls.acs_url
    response = idp.response(
        urls.entity_id, acs_url, person, Issue(in_response_to=request_id, sign_response=True)
    )
    back = await _post_from_idp(app, acs_url, response, relay_state)
    return await browser.client.get(back)


async def _refusals(tenant: TenantFixture) -> list[str]:
    async with as_tenant(tenant.id):
        rows = await fetch(
            "SELECT details->>'reason' AS reason FROM audit_event "
            "WHERE tenant_id = $1 AND action = 'sso.refused' ORDER BY occurred_at, id",
            tenant.id,
        )
    return [row["reason"] for row in rows]


async def test_a_member_signs_in_through_the_idp(
    app: Litestar, browser: Browser, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    before = await audit_actions(tenant_a.id)
    person = Person(email=tenant_a.member.email)

    done = await _sign_in(app, browser, tenant_a, idp, person, next=f"/o/{tenant_a.slug}/members")

    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/o/{tenant_a.slug}/members"
    console = await browser.client.get(f"/o/{tenant_a.slug}/members")
    assert console.status_code == 200
    assert tenant_a.member.email in console.text
    assert "sso.sign_in" in (await audit_actions(tenant_a.id))[len(before) :]


async def test_the_response_is_refused_in_a_browser_that_did_not_ask_for_it(
    app: Litestar, browser: Browser, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp)
    urls = _urls(tenant_a, connection)
    start = await browser.client.get(f"/sso/{tenant_a.slug}/saml/{connection.id}/start")
    request_id, acs_url, relay_state = idp.read_request(start.headers["location"])
    response = idp.response(
        urls.entity_id,
        acs_url,
        Person(email=tenant_a.member.email),
        Issue(in_response_to=request_id),
    )
    back = await _post_from_idp(app, acs_url, response, relay_state)

    # the link reaches another browser (login CSRF, a stolen response): no flow there
    async with browser_on(app) as other:
        refused = await other.client.get(back)

    assert refused.status_code == 400
    assert "saml.in_response_to" in refused.text
    assert (await _refusals(tenant_a))[-1] == "saml.in_response_to"
    # and the link was good once only: the right browser now finds nothing
    again = await browser.client.get(back)
    assert again.status_code == 400
    assert (await _refusals(tenant_a))[-1] == "saml.invalid"


async def test_an_unsigned_response_is_refused_audited_and_explained(
    app: Litestar, browser: Browser, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp)
    urls = _urls(tenant_a, connection)
    start = await browser.client.get(f"/sso/{tenant_a.slug}/saml/{connection.id}/start")
    request_id, acs_url, relay_state = idp.read_request(start.headers["location"])
    issue = Issue(in_response_to=request_id, sign_assertion=False)
    response = idp.response(urls.entity_id, acs_url, Person(email="eve@alpha.example"), issue)

    refused = await browser.client.get(await _post_from_idp(app, acs_url, response, relay_state))

    assert refused.status_code == 400
    assert "saml.unsigned" in refused.text
    assert "could not be trusted" in refused.text
    assert (await _refusals(tenant_a))[-1] == "saml.unsigned"
    assert (await browser.client.get(f"/o/{tenant_a.slug}/members")).status_code != 200


async def test_a_response_for_another_tenants_connection_is_refused(
    app: Litestar,
    browser: Browser,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    idp: TestIdp,
) -> None:
    connection_a = await _connect(tenant_a, idp)
    connection_b = await _connect(tenant_b, idp)
    urls_a, urls_b = _urls(tenant_a, connection_a), _urls(tenant_b, connection_b)
    start = await browser.client.get(f"/sso/{tenant_a.slug}/saml/{connection_a.id}/start")
    request_id, _, relay_state = idp.read_request(start.headers["location"])
    # B's audience and recipient, posted to A's ACS
    for_b = idp.response(
        urls_b.entity_id,
        urls_b.acs_url,
        Person(email=tenant_b.member.email),
        Issue(in_response_to=request_id),
    )

    refused = await browser.client.get(
        await _post_from_idp(app, urls_a.acs_url, for_b, relay_state)
    )

    assert refused.status_code == 400
    assert (await _refusals(tenant_a))[-1] in ("saml.audience", "saml.recipient")
    assert await _refusals(tenant_b) == []


async def test_idp_initiated_sign_in_is_off_until_the_connection_allows_it(
    app: Litestar, browser: Browser, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp)
    urls = _urls(tenant_a, connection)
    person = Person(email=tenant_a.member.email)
    unsolicited = idp.response(urls.entity_id, urls.acs_url, person, Issue())

    refused = await browser.client.get(await _post_from_idp(app, urls.acs_url, unsolicited, ""))

    assert refused.status_code == 400
    assert (await _refusals(tenant_a))[-1] == "saml.unsolicited"

    await saml.update_saml_connection(
        tenant_a.owner_ctx,
        connection.id,
        saml.SamlConnectionFields(
            name=connection.name,
            metadata=None,
            allow_idp_initiated=True,
            email_verified_trusted=True,
        ),
    )
    fresh = idp.response(urls.entity_id, urls.acs_url, person, Issue())
    back = await _post_from_idp(app, urls.acs_url, fresh, f"/o/{tenant_a.slug}/members")
    done = await browser.client.get(back)

    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/o/{tenant_a.slug}/members"


async def test_a_replayed_response_is_refused_by_another_app_instance(
    app: Litestar, settings: Settings, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp, allow_idp_initiated=True)
    urls = _urls(tenant_a, connection)
    response = idp.response(urls.entity_id, urls.acs_url, Person(email=tenant_a.member.email))
    async with browser_on(app) as first:
        accepted = await first.client.get(await _post_from_idp(app, urls.acs_url, response, ""))
    assert accepted.status_code == 303, accepted.text

    async with running(create_app(settings)) as second_app, browser_on(second_app) as second:
        replayed = await second.client.get(
            await _post_from_idp(second_app, urls.acs_url, response, "")
        )

    assert replayed.status_code == 400
    assert (await _refusals(tenant_a))[-1] == "saml.replay"


async def test_a_disabled_connection_signs_nobody_in_but_can_be_tested(
    app: Litestar, browser: Browser, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp, enabled=False, role_mapping={"hr": "admin"})
    urls = _urls(tenant_a, connection)
    start = f"/sso/{tenant_a.slug}/saml/{connection.id}/start"
    assert (await browser.client.get(start)).status_code == 404

    await browser.login(tenant_a.owner)
    testing = await browser.client.get(start + "?test=1")
    assert testing.status_code == 303
    request_id, acs_url, relay_state = idp.read_request(testing.headers["location"])
    person = Person(email="new.hire@alpha.example", groups=("hr",), employee_number="E-7")
    response = idp.response(urls.entity_id, acs_url, person, Issue(in_response_to=request_id))
    result = await browser.client.get(await _post_from_idp(app, acs_url, response, relay_state))

    assert result.status_code == 200, result.text
    assert "new.hire@alpha.example" in result.text
    assert "E-7" in result.text
    assert "Administrator" in result.text  # the role the mapping would give
    assert "sso.connection.tested" in await audit_actions(tenant_a.id)


async def test_only_an_administrator_may_test_a_connection(
    browser: Browser, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp)
    await browser.login(tenant_a.member)

    refused = await browser.client.get(f"/sso/{tenant_a.slug}/saml/{connection.id}/start?test=1")

    assert refused.status_code == 403


async def test_the_metadata_is_public_stable_xml(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp, enabled=False)
    urls = _urls(tenant_a, connection)

    first = await browser.client.get(_path(urls.metadata_url))
    second = await browser.client.get(_path(urls.metadata_url))

    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{urls.entity_id}"' in first.text
    assert urls.acs_url in first.text
    assert first.text == second.text
    elsewhere = f"/sso/{tenant_b.slug}/saml/{connection.id}/metadata"
    assert (await browser.client.get(elsewhere)).status_code == 404


class _MetadataServer:
    """An IdP's metadata URL on 127.0.0.1, for the console's "by URL"."""

    def __init__(self, body: str) -> None:
        data = body.encode("utf-8")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/samlmetadata+xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/metadata"


@pytest.fixture
def metadata_server(idp: TestIdp) -> Iterator[_MetadataServer]:
    server = _MetadataServer(idp.metadata)
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join()


async def test_an_admin_adds_a_connection_from_the_idps_metadata_url(
    browser: Browser, tenant_a: TenantFixture, idp: TestIdp, metadata_server: _MetadataServer
) -> None:
    await browser.login(tenant_a.owner)
    new = await browser.get(f"/o/{tenant_a.slug}/sso/saml/new")
    assert new.status_code == 200
    form = {
        "_csrf_token": browser.csrf,
        "name": "Entra ID",
        "idp_metadata_url": metadata_server.url,
        "want_signed": "assertion",
        "role_mapping": "HR = admin",
        "default_role": "member",
        "external_id_claim": "employeeNumber",
    }

    created = await browser.client.post(f"/o/{tenant_a.slug}/sso/saml/new", data=form)

    assert created.status_code == 303, created.text
    page = await browser.get(created.headers["location"])
    assert page.status_code == 200
    connection_id = created.headers["location"].rsplit("/", 1)[1]
    base = get_settings().base_url
    assert f"{base}/sso/{tenant_a.slug}/saml/{connection_id}/metadata" in page.text
    assert f"{base}/sso/{tenant_a.slug}/saml/{connection_id}/acs" in page.text
    assert idp.entity_id in page.text
    connection = await saml.access_saml_connection(tenant_a.owner_ctx, connection_id)
    assert connection.want_signed == "assertion"
    assert connection.role_mapping == {"HR": "admin"}
    assert connection.enabled is False
    assert "sso.connection.created" in await audit_actions(tenant_a.id)


async def test_an_admin_uploads_the_metadata_file_and_edits_the_connection(
    browser: Browser, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    await browser.login(tenant_a.owner)
    await browser.get(f"/o/{tenant_a.slug}/sso/saml/new")
    files = {"idp_metadata_file": ("idp.xml", idp.metadata.encode(), "application/xml")}
    data = {"_csrf_token": browser.csrf, "name": "Keycloak", "want_signed": "either"}
    created = await browser.client.post(f"/o/{tenant_a.slug}/sso/saml/new", data=data, files=files)
    assert created.status_code == 303, created.text
    location = created.headers["location"]

    await browser.get(location)
    edited = await browser.client.post(
        location,
        data={
            "_csrf_token": browser.csrf,
            "name": "Keycloak (staff)",
            "want_signed": "both",
            "allow_idp_initiated": "yes",
        },
        files={"idp_metadata_file": ("", b"", "application/octet-stream")},
    )

    assert edited.status_code == 303, edited.text
    connection = await saml.access_saml_connection(tenant_a.owner_ctx, location.rsplit("/", 1)[1])
    assert (connection.name, connection.want_signed) == ("Keycloak (staff)", "both")
    assert connection.allow_idp_initiated is True
    assert connection.idp_entity_id == idp.entity_id  # the metadata was kept


async def test_metadata_that_is_not_an_idps_is_shown_as_an_error(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    await browser.get(f"/o/{tenant_a.slug}/sso/saml/new")
    files = {"idp_metadata_file": ("idp.xml", b"<not-metadata/>", "application/xml")}

    page = await browser.client.post(
        f"/o/{tenant_a.slug}/sso/saml/new",
        data={"_csrf_token": browser.csrf, "name": "Broken"},
        files=files,
    )

    assert page.status_code == 422
    assert "not valid SAML metadata" in page.text


async def test_members_cannot_reach_the_saml_console(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)

    assert (await browser.client.get(f"/o/{tenant_a.slug}/sso/saml/new")).status_code == 403


async def _kept_responses(tenant: TenantFixture) -> int:
    async with as_tenant(tenant.id):
        rows = await fetch(
            "SELECT count(*) AS n FROM saml_response_received WHERE tenant_id = $1", tenant.id
        )
    return int(rows[0]["n"])


async def test_a_nul_or_control_character_in_the_acs_post_is_a_400_and_nothing_is_kept(
    app: Litestar, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp)
    acs = f"/sso/{tenant_a.slug}/saml/{connection.id}/acs"
    kept = await _kept_responses(tenant_a)
    async with browser_on(app) as sender:
        for data in (
            {"SAMLResponse": "PHNhbWw+\x00", "RelayState": "r"},
            {"SAMLResponse": "not base64 <xml/>", "RelayState": "r"},
            {"SAMLResponse": "PHNhbWw+", "RelayState": "relay\x00state"},
            {"SAMLResponse": "PHNhbWw+", "RelayState": "relay\x1bstate"},
        ):
            answer = await sender.client.post(acs, data=data)
            assert answer.status_code == 400, (data, answer.status_code)
    assert await _kept_responses(tenant_a) == kept


async def test_an_acs_link_no_sign_in_of_this_browser_explains_is_not_audited_and_is_throttled(
    app: Litestar, tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection = await _connect(tenant_a, idp)
    before = await _refusals(tenant_a)
    async with browser_on(app) as stranger:
        for target in (connection.id, uuid4()):  # a connection, and none at all
            answer = await stranger.client.get(
                f"/sso/{tenant_a.slug}/saml/{target}/acs?received={uuid4()}"
            )
            assert answer.status_code == 400
        assert await _refusals(tenant_a) == before
        try:
            statuses = [
                (
                    await stranger.client.get(
                        f"/sso/{tenant_a.slug}/saml/{connection.id}/acs?received={uuid4()}"
                    )
                ).status_code
                for _ in range(ACS_GETS_PER_MINUTE)
            ]
        finally:  # the limiter may be the shared Redis: leave no count to other tests
            await app.state.limiter.reset("saml-acs-get:127.0.0.1")
    assert statuses[-1] == 429
