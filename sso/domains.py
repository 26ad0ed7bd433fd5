"""Verified email domains: an organization proves it holds a domain by publishing a DNS TXT
record, and only then may its identity providers mint accounts for addresses of that domain.

The record: `jalon-verification=<token>` as a TXT value of `_jalon.<domain>` (preferred: it
leaves the domain's own records alone) or of the domain itself. The token is random, one per
claim. Domains are stored IDNA-normalised (lowercase A-labels: `xn--…`), so `Bücher.de` and
`xn--bcher-kva.de` are one domain.

A domain is verified by one organization at most: `verified_domain` (global) holds each once.
Consumer mail domains (gmail.com, orange.fr…) are refused: nobody may claim everyone's mail.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

import asyncpg
import dns.asyncresolver
import dns.exception
import dns.resolver
import idna

from core.database import execute, fetch, tenant_transaction
from core.errors import Conflict, Invalid, NotFound
from core.ids import uuid_or_404
from core.settings import Settings, get_settings
from tenants import audit
from tenants.context import TenantContext
from tenants.permissions import Permission

#: The TXT value's prefix; the token follows it.
RECORD_PREFIX = "jalon-verification="
#: The name under the domain where the record is looked up first.
RECORD_LABEL = "_jalon"

#: Mail providers whose addresses belong to the public, not to an organization. A name
#: ending in ".*" stands for that name under any top-level domain (hotmail.fr, yahoo.co.uk).
CONSUMER_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "outlook.fr",
        "live.com",
        "live.fr",
        "msn.com",
        "hotmail.*",
        "yahoo.*",
        "ymail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tuta.io",
        "gmx.*",
        "web.de",
        "t-online.de",
        "freenet.de",
        "mail.ru",
        "yandex.*",
        "zoho.com",
        "mail.com",
        "fastmail.com",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "sfr.fr",
        "neuf.fr",
        "laposte.net",
        "bbox.fr",
        "numericable.fr",
        "libero.it",
        "virgilio.it",
        "skynet.be",
        "telenet.be",
        "bluewin.ch",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "qq.com",
        "163.com",
        "126.com",
    }
)


def normalise_domain(text: str | None, field: str = "domain") -> str:
    """A domain name as stored: lowercase IDNA A-labels, no trailing dot, at least two
    labels; `Invalid` naming `field` otherwise."""
    raw = (text or "").strip().rstrip(".")
    if "@" in raw:
        raw = raw.rsplit("@", 1)[1]
    if not raw:
        raise Invalid("This field is required.", field=field)
    try:
        domain = idna.encode(raw, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        raise Invalid("Enter a valid domain name, such as example.org.", field=field) from None
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253 or not all(labels) or labels[-1].isdigit():
        raise Invalid("Enter a valid domain name, such as example.org.", field=field)
    return domain


def email_domain(email: str) -> str:
    """The normalised domain of an email address; `Invalid` when it has none."""
    if "@" not in (email or ""):
        raise Invalid("Enter a valid email address.", field="email")
    return normalise_domain(email.rsplit("@", 1)[1], field="email")


def is_consumer_domain(domain: str) -> bool:
    """Whether `domain` (normalised) is a public mail provider's, or under one."""
    labels = domain.split(".")
    for start in range(len(labels) - 1):
        suffix = ".".join(labels[start:])
        if suffix in CONSUMER_DOMAINS:
            return True
        # "hotmail.*": the provider's name followed by any one or two top-level labels.
        for tail in (1, 2):
            if len(labels) - start > tail and (
                ".".join(labels[start : len(labels) - tail]) + ".*" in CONSUMER_DOMAINS
            ):
                return True
    return False


# --- DNS --------------------------------------------------------------------------------------


class TxtResolver(Protocol):
    """Who answers DNS TXT questions (the real resolver, or a test's)."""

    async def txt(self, name: str) -> list[str]:
        """The TXT strings published at `name` (empty when there are none)."""
        ...


class DnsResolver:
    """TXT lookups with dnspython: through the nameserver `host:port` when given (the setting
    `JALON_DNS_RESOLVER`), else the system's resolvers."""

    def __init__(self, nameserver: str = "", timeout: float = 5.0) -> None:
        self.resolver = dns.asyncresolver.Resolver(configure=not nameserver)
        if nameserver:
            host, _, port = nameserver.rpartition(":")
            if not host:
                host, port = port, "53"
            self.resolver.nameservers = [host.strip("[]")]
            self.resolver.port = int(port)
        self.resolver.lifetime = timeout

    async def txt(self, name: str) -> list[str]:
        try:
            answer = await self.resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout:
            raise Invalid(
                "The DNS lookup did not answer in time. Try again in a few minutes."
            ) from None
        # A TXT record is one or more strings of at most 255 bytes each: joined, they are
        # the value (long tokens may be split by some DNS hosts' consoles).
        return [b"".join(record.strings).decode("utf-8", errors="replace") for record in answer]


#: Top-level domains that can never be real (RFC 2606, RFC 6761): the only ones the
#: development zone answers for.
RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost"})
#: `JALON_DNS_RESOLVER` value asking for the development zone (never in production).
DEVELOPMENT = "development"


def is_reserved(domain: str) -> bool:
    """Whether `domain` is under a top-level domain reserved for tests and examples."""
    return domain.rsplit(".", 1)[-1] in RESERVED_TLDS


class DevelopmentZone:
    """The demo's DNS: records published from the console, in this process, for reserved
    top-level domains only (`demo.example`, `corp.test`): a domain that could be real is
    always asked of the real DNS. Used only when `JALON_DNS_RESOLVER=development` outside
    production, so that a demo admin can verify a domain end to end without a DNS host."""

    def __init__(self, fallback: TxtResolver | None = None) -> None:
        self.records: dict[str, list[str]] = {}
        self.fallback = fallback or DnsResolver()

    def publish(self, name: str, value: str) -> None:
        name = name.lower().rstrip(".")
        if not is_reserved(name):
            raise Invalid("Only test domains (.test, .example) can be published in development.")
        values = self.records.setdefault(name, [])
        if value not in values:
            values.append(value)

    async def txt(self, name: str) -> list[str]:
        name = name.lower().rstrip(".")
        if is_reserved(name):
            return list(self.records.get(name, []))
        return await self.fallback.txt(name)


_resolver: TxtResolver | None = None
_development_zone: DevelopmentZone | None = None


def use_resolver(resolver: TxtResolver | None) -> TxtResolver | None:
    """Look TXT records up through `resolver` from now on (None: the settings' again);
    returns the one used before."""
    global _resolver
    previous, _resolver = _resolver, resolver
    return previous


def resolver_for(settings: Settings) -> TxtResolver:
    """The resolver `settings` name: the development zone (`JALON_DNS_RESOLVER=development`,
    never in production), else `JALON_DNS_RESOLVER`'s nameserver, else the system's."""
    global _development_zone
    if settings.dns_resolver == DEVELOPMENT:
        if settings.environment == "production":
            return DnsResolver()
        if _development_zone is None:
            _development_zone = DevelopmentZone()
        return _development_zone
    return DnsResolver(settings.dns_resolver)


def get_resolver() -> TxtResolver:
    """The resolver in use: the one given to `use_resolver`, else the settings' one."""
    return _resolver if _resolver is not None else resolver_for(get_settings())


def development_zone() -> DevelopmentZone | None:
    """The development zone when it is the resolver in use (the console then offers to
    publish test domains' records in it), else None."""
    resolver = get_resolver()
    return resolver if isinstance(resolver, DevelopmentZone) else None


# --- the organization's domains -------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """A domain an organization claims, and whether it proved it."""

    id: UUID
    domain: str
    #: the token to publish (as `jalon-verification=<token>`)
    token: str
    verified_at: datetime | None
    created_at: datetime

    @property
    def record_name(self) -> str:
        return f"{RECORD_LABEL}.{self.domain}"

    @property
    def record_value(self) -> str:
        return RECORD_PREFIX + self.token

    @property
    def display_name(self) -> str:
        """The domain as people write it (Unicode labels)."""
        try:
            return idna.decode(self.domain)
        except (idna.IDNAError, UnicodeError):
            return self.domain


_COLUMNS = "id, domain, token, verified_at, created_at"


def _domain(row: dict[str, Any]) -> Domain:
    return Domain(
        id=row["id"],
        domain=row["domain"],
        token=row["token"],
        verified_at=row["verified_at"],
        created_at=row["created_at"],
    )


async def access_domain(ctx: TenantContext, domain_id: UUID | str) -> Domain:
    """The domain `domain_id` of this tenant (locked for update); 404 alike for an unknown id
    and another tenant's. Call inside the tenant's transaction."""
    rows = await fetch(
        f"SELECT {_COLUMNS} FROM sso_domain WHERE tenant_id = $1 AND id = $2 FOR UPDATE",  # noqa: S608
        ctx.tenant_id,
        uuid_or_404(domain_id),
    )
    if not rows:
        raise NotFound()
    return _domain(rows[0])


async def list_domains(ctx: TenantContext) -> list[Domain]:
    """The organization's domains, verified first, then by name."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        rows = await fetch(
            f"""SELECT {_COLUMNS} FROM sso_domain WHERE tenant_id = $1
                ORDER BY verified_at IS NULL, domain""",  # noqa: S608 - constant columns
            ctx.tenant_id,
        )
    return [_domain(row) for row in rows]


async def add_domain(ctx: TenantContext, text: str) -> Domain:
    """Claim a domain: a new token to publish. Consumer mail domains, a domain this
    organization already claims and one another organization verified are refused."""
    ctx.require(Permission.SSO_MANAGE)
    domain = normalise_domain(text)
    if is_consumer_domain(domain):
        raise Invalid(
            "{domain} is a public email provider's domain: an organization cannot claim it.",
            field="domain",
            domain=domain,
        )
    async with tenant_transaction(ctx):
        taken = await fetch("SELECT organization_id FROM verified_domain WHERE domain = $1", domain)
        if taken and taken[0]["organization_id"] != ctx.tenant_id:
            raise Conflict(
                "{domain} is already verified by another organization.",
                field="domain",
                domain=domain,
            )
        domain_id = uuid4()
        try:
            rows = await fetch(
                f"""INSERT INTO sso_domain (tenant_id, id, domain, token)
                    VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}""",  # noqa: S608 - constant
                ctx.tenant_id,
                domain_id,
                domain,
                secrets.token_urlsafe(24),
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "{domain} is already in your list.", field="domain", domain=domain
            ) from None
        await audit.record(ctx, "sso.domain_added", "sso_domain", domain_id, domain=domain)
    return _domain(rows[0])


async def verify_domain(ctx: TenantContext, domain_id: UUID | str, dns: TxtResolver) -> Domain:
    """Look the domain's TXT record up; when it carries the token, the domain is verified
    (for this organization alone). `Invalid` says what to publish when it is not found;
    `Conflict` when another organization verified the domain meanwhile."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        claim = await access_domain(ctx, domain_id)
    if claim.verified_at is not None:
        return claim
    # The lookups run outside any transaction: no connection waits on DNS.
    expected = claim.record_value
    found = False
    for name in (claim.record_name, claim.domain):
        if any(value.strip() == expected for value in await dns.txt(name)):
            found = True
            break
    async with tenant_transaction(ctx):
        if not found:
            await audit.record(
                ctx, "sso.domain_check_failed", "sso_domain", claim.id, domain=claim.domain
            )
            failed = Invalid(
                "No TXT record {value} was found at {name}. DNS changes can take a while to "
                "spread: try again later.",
                value=expected,
                name=claim.record_name,
            )
        else:
            now = datetime.now(UTC)
            inserted = await fetch(
                """INSERT INTO verified_domain (domain, organization_id, verified_at)
                   VALUES ($1, $2, $3) ON CONFLICT (domain) DO NOTHING RETURNING domain""",
                claim.domain,
                ctx.tenant_id,
                now,
            )
            if not inserted:
                owner = await fetch(
                    "SELECT organization_id FROM verified_domain WHERE domain = $1", claim.domain
                )
                if owner and owner[0]["organization_id"] != ctx.tenant_id:
                    raise Conflict(
                        "{domain} is already verified by another organization.",
                        domain=claim.domain,
                    )
            rows = await fetch(
                f"""UPDATE sso_domain SET verified_at = $3 WHERE tenant_id = $1 AND id = $2
                    RETURNING {_COLUMNS}""",  # noqa: S608 - constant columns
                ctx.tenant_id,
                claim.id,
                now,
            )
            await audit.record(
                ctx, "sso.domain_verified", "sso_domain", claim.id, domain=claim.domain
            )
            return _domain(rows[0])
    raise failed


async def remove_domain(ctx: TenantContext, domain_id: UUID | str) -> Domain:
    """Drop a domain claim (and its verification: its addresses are nobody's any more)."""
    ctx.require(Permission.SSO_MANAGE)
    async with tenant_transaction(ctx):
        claim = await access_domain(ctx, domain_id)
        await execute(
            "DELETE FROM verified_domain WHERE domain = $1 AND organization_id = $2",
            claim.domain,
            ctx.tenant_id,
        )
        await execute(
            "DELETE FROM sso_domain WHERE tenant_id = $1 AND id = $2", ctx.tenant_id, claim.id
        )
        await audit.record(
            ctx,
            "sso.domain_removed",
            "sso_domain",
            claim.id,
            domain=claim.domain,
            was_verified=claim.verified_at is not None,
        )
    return claim


async def publish_in_development_zone(ctx: TenantContext, domain_id: UUID | str) -> Domain:
    """Publish a test domain's record in the development zone (the demo's DNS); `Invalid`
    when no development zone is in use or the domain could be real. Audited."""
    ctx.require(Permission.SSO_MANAGE)
    zone = development_zone()
    async with tenant_transaction(ctx):
        claim = await access_domain(ctx, domain_id)
        if zone is None or not is_reserved(claim.domain):
            raise Invalid("Only test domains (.test, .example) can be published in development.")
        zone.publish(claim.record_name, claim.record_value)
        await audit.record(
            ctx,
            "sso.domain_published_in_development",
            "sso_domain",
            claim.id,
            domain=claim.domain,
        )
    return claim
