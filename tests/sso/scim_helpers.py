"""What the SCIM tests share: an organization with a verified domain and a SCIM token, and a
client that speaks to `/scim/v2` with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
from litestar import Litestar

from sso.scim_tokens import create_scim_token
from tests.api.running import asgi_transport
from tests.conftest import TenantFixture
from tests.sso.seeding import add_verified_domain

MEDIA = "application/scim+json"


@dataclass(frozen=True)
class Directory:
    """A tenant as its directory sees it: its verified domain and a SCIM token."""

    tenant: TenantFixture
    domain: str
    token: str

    def email(self, local: str = "") -> str:
        return f"{local or 'p-' + uuid4().hex[:10]}@{self.domain}"


async def directory_of(tenant: TenantFixture) -> Directory:
    domain = f"d{uuid4().hex[:12]}.example.com"
    await add_verified_domain(tenant.id, domain)
    issued = await create_scim_token(tenant.owner_ctx, "Entra ID")
    return Directory(tenant, domain, issued.token)


@asynccontextmanager
async def scim_client(app: Litestar, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the application in-process, sending `token` as its bearer."""
    async with httpx.AsyncClient(
        transport=asgi_transport(app),
        base_url="http://127.0.0.1/scim/v2",
        headers={"authorization": f"Bearer {token}", "content-type": MEDIA},
    ) as client:
        yield client


def user_body(email: str, **extra: Any) -> dict[str, Any]:
    """A User document as a directory sends it."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "displayName": "Ada Lovelace",
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
        **extra,
    }


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": list(operations),
    }
