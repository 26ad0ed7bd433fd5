"""Verified domains: claiming, the DNS TXT check (against a real DNS server on 127.0.0.1),
consumer domains, one organization per verified domain, IDNA normalisation."""

from __future__ import annotations

import json
from dataclasses import replace
from uuid import uuid4

import pytest

from core.database import fetch, global_transaction
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.settings import get_settings
from sso.domains import (
    DevelopmentZone,
    DnsResolver,
    add_domain,
    email_domain,
    is_consumer_domain,
    list_domains,
    normalise_domain,
    publish_in_development_zone,
    remove_domain,
    resolver_for,
    use_resolver,
    verify_domain,
)
from tests.api.conftest import Browser
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso.dns_server import dns_server
from tests.sso.seeding import unique_domain


async def _audit(tenant: TenantFixture, action: str) -> list[dict[str, object]]:
    async with as_tenant(tenant.id):
        rows = await fetch(
            "SELECT details FROM audit_event WHERE tenant_id = $1 AND action = $2",
            tenant.id,
            action,
        )
    return [json.loads(row["details"]) for row in rows]


async def _verified_by(domain: str) -> list[object]:
    async with global_transaction():
        rows = await fetch("SELECT organization_id FROM verified_domain WHERE domain = $1", domain)
    return [row["organization_id"] for row in rows]


def test_domains_are_idna_normalised() -> None:
    assert normalise_domain("  Bücher.Example. ") == "xn--bcher-kva.example"
    assert normalise_domain("xn--bcher-kva.example") == "xn--bcher-kva.example"
    assert normalise_domain("someone@Corp.Example") == "corp.example"
    assert email_domain("ada@BÜCHER.example") == "xn--bcher-kva.example"
    for wrong in ("", "localhost", "exa mple.org", "a..b", "-bad-.org", "1.2.3.4"):
        with pytest.raises(Invalid):
            normalise_domain(wrong)


def test_consumer_mail_domains_are_recognised() -> None:
    for domain in ("gmail.com", "hotmail.fr", "yahoo.co.uk", "orange.fr", "gmx.de", "web.de"):
        assert is_consumer_domain(domain), domain
    for domain in ("example.org", "ville-lyon.fr", "gmailer.com", "notyahoo.com"):
        assert not is_consumer_domain(domain), domain


async def test_a_domain_is_verified_when_its_txt_record_carries_the_token(
    tenant_a: TenantFixture,
) -> None:
    domain = unique_domain()
    claim = await add_domain(tenant_a.owner_ctx, domain.upper())
    assert claim.domain == domain
    assert claim.verified_at is None
    assert claim.record_name == f"_jalon.{domain}"
    async with dns_server() as (zone, nameserver):
        resolver = DnsResolver(nameserver)
        with pytest.raises(Invalid) as missing:
            await verify_domain(tenant_a.owner_ctx, claim.id, resolver)
        assert missing.value.params["name"] == f"_jalon.{domain}"
        zone.publish(f"_jalon.{domain}", "v=spf1 -all", claim.record_value)
        verified = await verify_domain(tenant_a.owner_ctx, claim.id, resolver)
    assert verified.verified_at is not None
    assert f"_jalon.{domain}" in zone.questions
    assert await _verified_by(domain) == [tenant_a.id]
    assert (await _audit(tenant_a, "sso.domain_verified"))[-1]["domain"] == domain
    assert (await _audit(tenant_a, "sso.domain_check_failed"))[-1]["domain"] == domain


async def test_the_record_may_stand_at_the_domain_itself(tenant_a: TenantFixture) -> None:
    domain = unique_domain()
    claim = await add_domain(tenant_a.owner_ctx, domain)
    async with dns_server() as (zone, nameserver):
        zone.publish(domain, claim.record_value)
        verified = await verify_domain(tenant_a.owner_ctx, claim.id, DnsResolver(nameserver))
    assert verified.verified_at is not None


async def test_another_token_does_not_verify(tenant_a: TenantFixture) -> None:
    domain = unique_domain()
    claim = await add_domain(tenant_a.owner_ctx, domain)
    async with dns_server() as (zone, nameserver):
        zone.publish(f"_jalon.{domain}", "jalon-verification=someone-elses-token-0123456789")
        with pytest.raises(Invalid):
            await verify_domain(tenant_a.owner_ctx, claim.id, DnsResolver(nameserver))
    assert await _verified_by(domain) == []


async def test_consumer_domains_cannot_be_claimed(tenant_a: TenantFixture) -> None:
    for domain in ("gmail.com", "Hotmail.FR", "laposte.net"):
        with pytest.raises(Invalid) as refused:
            await add_domain(tenant_a.owner_ctx, domain)
        assert refused.value.field == "domain"


async def test_a_domain_verified_by_one_organization_cannot_be_verified_by_another(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    domain = unique_domain()
    theirs = await add_domain(tenant_b.owner_ctx, domain)
    ours = await add_domain(tenant_a.owner_ctx, domain)
    async with dns_server() as (zone, nameserver):
        resolver = DnsResolver(nameserver)
        zone.publish(f"_jalon.{domain}", theirs.record_value, ours.record_value)
        await verify_domain(tenant_b.owner_ctx, theirs.id, resolver)
        with pytest.raises(Conflict):
            await verify_domain(tenant_a.owner_ctx, ours.id, resolver)
    assert await _verified_by(domain) == [tenant_b.id]
    # Once verified elsewhere, claiming it is refused from the start.
    with pytest.raises(Conflict):
        await add_domain(tenant_a.owner_ctx, f"{domain}.")
    # Removing it frees it.
    await remove_domain(tenant_b.owner_ctx, theirs.id)
    assert await _verified_by(domain) == []


async def test_a_domain_is_listed_once_per_organization(tenant_a: TenantFixture) -> None:
    domain = unique_domain()
    await add_domain(tenant_a.owner_ctx, domain)
    with pytest.raises(Conflict):
        await add_domain(tenant_a.owner_ctx, domain.upper())
    assert [d.domain for d in await list_domains(tenant_a.owner_ctx)] == [domain]


async def test_domains_are_the_organizations_own(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    claim = await add_domain(tenant_a.owner_ctx, unique_domain())
    assert await list_domains(tenant_b.owner_ctx) == []
    with pytest.raises(NotFound):
        await remove_domain(tenant_b.owner_ctx, claim.id)
    async with dns_server() as (_, nameserver):
        with pytest.raises(NotFound):
            await verify_domain(tenant_b.owner_ctx, claim.id, DnsResolver(nameserver))
    with pytest.raises(Forbidden):
        await add_domain(tenant_a.member_ctx, unique_domain())
    assert (await _audit(tenant_a, "sso.domain_added"))[-1]["domain"] == claim.domain


async def test_the_console_adds_verifies_and_removes_a_domain(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    page = f"/o/{tenant_a.slug}/sso/domains"
    domain = unique_domain()
    added = await browser.post(page, {"domain": domain}, page=page)
    assert added.status_code == 303
    [claim] = await list_domains(tenant_a.owner_ctx)
    listed = await browser.get(page)
    assert claim.record_value in listed.text
    assert f"_jalon.{domain}" in listed.text
    refused = await browser.post(page, {"domain": "gmail.com"}, page=page)
    assert refused.status_code == 422
    assert "public email provider" in refused.text
    async with dns_server() as (zone, nameserver):
        previous = use_resolver(DnsResolver(nameserver))
        try:
            missing = await browser.post(f"{page}/{claim.id}/verify", page=page)
            assert missing.status_code == 422
            assert "No TXT record" in missing.text
            zone.publish(f"_jalon.{domain}", claim.record_value)
            verified = await browser.post(f"{page}/{claim.id}/verify", page=page)
        finally:
            use_resolver(previous)
    assert verified.status_code == 303
    assert await _verified_by(domain) == [tenant_a.id]
    removed = await browser.post(f"{page}/{claim.id}/delete", page=page)
    assert removed.status_code == 303
    assert await list_domains(tenant_a.owner_ctx) == []
    assert await _verified_by(domain) == []


async def test_members_cannot_open_the_domains_page(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.member)
    assert (await browser.get(f"/o/{tenant_a.slug}/sso/domains")).status_code == 403


def test_the_resolver_follows_the_setting() -> None:
    resolver = DnsResolver("127.0.0.1:5353")
    assert resolver.resolver.nameservers == ["127.0.0.1"]
    assert resolver.resolver.port == 5353
    assert DnsResolver("10.0.0.53").resolver.port == 53


async def test_the_development_zone_verifies_test_domains_only(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    zone = DevelopmentZone()
    previous = use_resolver(zone)
    try:
        await browser.login(tenant_a.owner)
        page = f"/o/{tenant_a.slug}/sso/domains"
        demo = await add_domain(tenant_a.owner_ctx, f"demo-{uuid4().hex[:6]}.test")
        real = await add_domain(tenant_a.owner_ctx, f"corp-{uuid4().hex[:6]}.org")
        shown = await browser.get(page)
        assert f"/sso/domains/{demo.id}/publish" in shown.text
        assert f"/sso/domains/{real.id}/publish" not in shown.text
        published = await browser.post(f"{page}/{demo.id}/publish", page=page)
        assert published.status_code == 303
        assert await zone.txt(demo.record_name) == [demo.record_value]
        verified = await browser.post(f"{page}/{demo.id}/verify", page=page)
        assert verified.status_code == 303
        refused = await browser.post(f"{page}/{real.id}/publish", page=page)
        assert refused.status_code == 422
    finally:
        use_resolver(previous)
    assert await _verified_by(demo.domain) == [tenant_a.id]
    assert await _verified_by(real.domain) == []
    with pytest.raises(Invalid):
        zone.publish("_jalon.example.org", "jalon-verification=x")
    # Without the development zone, nothing is published anywhere.
    with pytest.raises(Invalid):
        await publish_in_development_zone(tenant_a.owner_ctx, real.id)


def test_the_development_zone_is_never_used_in_production() -> None:
    production = replace(get_settings(), environment="production", dns_resolver="development")
    assert isinstance(resolver_for(production), DnsResolver)
    development = replace(production, environment="development")
    assert isinstance(resolver_for(development), DevelopmentZone)
    assert isinstance(resolver_for(replace(development, dns_resolver="")), DnsResolver)
