"""Home-realm discovery: the sign-in page asks for the email first and sends an address of a
verified domain to its organization's identity provider."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from core.database import execute, global_transaction
from sso.discovery import connections_for_email
from tests.api.conftest import PASSWORD, Browser
from tests.conftest import TenantFixture
from tests.sso.seeding import add_connection, add_verified_domain, unique_domain


async def test_an_email_of_a_verified_domain_finds_its_organizations_enabled_connections(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    first = await add_connection(tenant_a.id, name="Entra ID")
    await add_connection(tenant_a.id, name="Old IdP", enabled=False)
    await add_connection(tenant_b.id, name="Theirs")
    choices = await connections_for_email(f"Ada@{domain.upper()}")
    assert [(c.connection_id, c.name, c.tenant_slug) for c in choices] == [
        (first, "Entra ID", tenant_a.slug)
    ]
    assert choices[0].start_url("/o/") == f"/sso/{tenant_a.slug}/oidc/{first}/start?next=/o/"


async def test_other_addresses_find_nothing(tenant_a: TenantFixture) -> None:
    await add_connection(tenant_a.id)
    assert await connections_for_email(tenant_a.member.email) == []
    assert await connections_for_email("not an email") == []
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    async with global_transaction():
        await execute("UPDATE organization SET status = 'suspended' WHERE id = $1", tenant_a.id)
    assert await connections_for_email(f"ada@{domain}") == []


async def test_the_sign_in_page_asks_for_the_email_first(browser: Browser) -> None:
    page = await browser.get("/login")
    assert page.status_code == 200
    assert 'name="email"' in page.text
    assert 'name="password"' not in page.text


async def test_an_email_with_one_connection_goes_straight_to_it(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection = await add_connection(tenant_a.id, protocol="saml")
    response = await browser.post("/login", {"email": f"ada@{domain}", "next": "/o/x/"})
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == f"/sso/{tenant_a.slug}/saml/{connection}/start"
    assert parse_qs(location.query) == {"next": ["/o/x/"]}


async def test_an_email_with_several_connections_gets_a_choice(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    one = await add_connection(tenant_a.id, name="Staff IdP")
    two = await add_connection(tenant_a.id, name="Partners IdP", protocol="saml")
    page = await browser.post("/login", {"email": f"ada@{domain}"})
    assert page.status_code == 200
    assert f"/sso/{tenant_a.slug}/oidc/{one}/start" in page.text
    assert f"/sso/{tenant_a.slug}/saml/{two}/start" in page.text
    assert "Staff IdP" in page.text
    assert 'name="password"' not in page.text


async def test_another_email_gets_the_password_step_with_the_email_filled_in(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    page = await browser.post("/login", {"email": tenant_a.owner.email, "next": "/o/"})
    assert page.status_code == 200
    assert 'name="password"' in page.text
    assert f'value="{tenant_a.owner.email}"' in page.text
    assert "/login/link?next=/o/&amp;email=" in page.text
    signed_in = await browser.post(
        "/login", {"email": tenant_a.owner.email, "password": PASSWORD, "next": "/o/"}
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/o/"


async def test_an_invalid_email_is_said_on_the_first_step(browser: Browser) -> None:
    page = await browser.post("/login", {"email": "nobody"})
    assert page.status_code == 422
    assert "Enter a valid email address." in page.text
    assert 'name="password"' not in page.text


async def test_the_password_step_opens_from_a_link(browser: Browser) -> None:
    page = await browser.get("/login?email=someone%40example.org")
    assert 'name="password"' in page.text
    assert 'value="someone@example.org"' in page.text


async def test_a_password_stays_reachable_for_a_verified_domain(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    """The break-glass owner's way round an identity provider that is down."""
    first = await browser.get("/login")
    assert "/login?step=password" in first.text
    page = await browser.get("/login?step=password&next=/o/")
    assert 'name="password"' in page.text
    assert 'name="next" value="/o/"' in page.text
