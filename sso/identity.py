"""What a sign-in through an identity provider proves: the one shape that OIDC and SAML both
hand to provisioning and to the sign-in routes, whatever protocol carried it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class ProvenIdentity:
    """A person as a connection's provider vouched for them, after every protocol check passed
    (signature, issuer, audience, times, nonce or InResponseTo, replay).

    `email_verified` is the provider's word (OIDC's `email_verified`; SAML connections say
    per connection whether their IdP's addresses are verified). `claims` keeps what was
    received, for "test this connection" and for mapping a campaign's external id.
    """

    tenant_id: UUID
    connection_id: UUID
    subject: str
    email: str
    email_verified: bool
    given_name: str = ""
    family_name: str = ""
    groups: tuple[str, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.given_name, self.family_name) if part) or self.email
