"""The JSON API, `/api/v1`, with real tokens: authentication, scopes, endpoints, pagination,
errors, and the OpenAPI document that describes it."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import uuid4

import httpx
import pytest
from litestar import Litestar

from core import database
from tenants.accounts import create_user
from tenants.organizations import set_status, system_context
from tenants.tokens import create_token
from tests.api.conftest import audit_actions, bearer, issue_token
from tests.conftest import TenantFixture, make_tenant, make_user
from tests.db import as_tenant


@pytest.fixture(scope="module")
async def shared(db: str) -> TenantFixture:
    """A tenant for the requests that only read or are refused."""
    return await make_tenant("Shared")


@pytest.fixture(scope="module")
async def shared_token(shared: TenantFixture) -> str:
    """A token of the shared tenant carrying every scope a token may carry."""
    return await issue_token(shared.owner_ctx)


def _error(response: httpx.Response, status: int) -> str:
    """The message of a JSON error answer, checking its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    message: str = body["error"]["message"]
    return message


async def _membership_id(tenant: TenantFixture, user_id: Any) -> str:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT id FROM membership WHERE tenant_id = $1 AND user_id = $2", tenant.id, user_id
        )
    return str(rows[0]["id"])


# --- authentication --------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer   ",
        "Basic dXNlcjpwYXNz",
        "Token {token}",
        "Bearer jalon_",
        "Bearer jalon_nothex_secret",
        "Bearer jalon_{hex}_",
        "Bearer jalon_{hex}_wrong-secret",
        "Bearer {token}x",
        "Bearer {other_tenant}",
        "Bearer \u00e9t\u00e9",
        "Bearer jalon_{hex}_nul\x00byte",
    ],
)
async def test_missing_or_malformed_credentials_are_401(
    client: httpx.AsyncClient,
    shared: TenantFixture,
    shared_token: str,
    authorization: str | None,
) -> None:
    headers: dict[bytes, bytes] = {}
    if authorization is not None:
        # The token of the shared tenant presented under another tenant's id cannot work.
        other = shared_token.replace(shared.id.hex, uuid4().hex)
        value = authorization.format(token=shared_token, hex=shared.id.hex, other_tenant=other)
        headers[b"authorization"] = value.encode()
    response = await client.get("/api/v1/organization", headers=headers)
    # No bearer token at all is told how to send one; a bearer token that is not valid is
    # refused without saying which part is wrong.
    scheme, _, raw = (authorization or "").partition(" ")
    expected = (
        "Invalid or expired API token."
        if scheme == "Bearer" and raw.strip()
        else "Send an API token as 'Authorization: Bearer <token>'."
    )
    assert _error(response, 401) == expected


async def test_a_bearer_token_reads_its_organization_and_its_use_is_recorded(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx, "org:organization:read")
    async with as_tenant(tenant_a.id):
        unused = await database.fetch(
            "SELECT last_used_at FROM api_token WHERE tenant_id = $1", tenant_a.id
        )
    assert unused == [{"last_used_at": None}]
    response = await client.get("/api/v1/organization", headers=bearer(token))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(tenant_a.id)
    assert body["slug"] == tenant_a.slug
    assert body["timezone"] == "Europe/Paris"
    assert body["status"] == "trial"
    assert "logo_data_url" not in body
    async with as_tenant(tenant_a.id):
        used = await database.fetch(
            "SELECT last_used_at IS NOT NULL AS used FROM api_token WHERE tenant_id = $1",
            tenant_a.id,
        )
    assert used == [{"used": True}]


async def test_expired_and_revoked_tokens_are_401(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    expiring = await create_token(tenant_a.owner_ctx, "expiring", ["org:organization:read"], 1)
    revoked = await create_token(tenant_a.owner_ctx, "revoked", ["org:organization:read"], None)
    for issued in (expiring, revoked):
        ok = await client.get("/api/v1/organization", headers=bearer(issued.token))
        assert ok.status_code == 200
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE api_token SET expires_at = now() - interval '1 second' WHERE id = $1",
            expiring.id,
        )
    from tenants.tokens import revoke_token

    await revoke_token(tenant_a.owner_ctx, revoked.id)
    for issued in (expiring, revoked):
        response = await client.get("/api/v1/organization", headers=bearer(issued.token))
        assert _error(response, 401) == "Invalid or expired API token."


async def test_a_suspended_organizations_tokens_are_401(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    await set_status(system_context(tenant_a.owner_ctx.tenant), "suspended")
    response = await client.get("/api/v1/organization", headers=bearer(token))
    assert _error(response, 401) == "Invalid or expired API token."


async def test_errors_are_in_the_callers_language(
    client: httpx.AsyncClient, shared: TenantFixture
) -> None:
    response = await client.get(
        "/api/v1/organization",
        headers={"authorization": "Bearer jalon_nope", "accept-language": "fr"},
    )
    assert _error(response, 401) == "Jeton d’API non valide ou expiré."


async def test_only_the_digest_of_a_token_is_stored(tenant_a: TenantFixture) -> None:
    issued = await create_token(tenant_a.owner_ctx, "digest", ["org:members:read"], 30)
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT * FROM api_token WHERE tenant_id = $1 AND id = $2", tenant_a.id, issued.id
        )
    assert rows[0]["token_hash"] == hashlib.sha256(issued.token.encode()).digest()
    # the random part follows the tenant's id (it may itself hold "_")
    secret = issued.token.split(tenant_a.id.hex + "_", 1)[1]
    assert len(secret) >= 40
    assert secret not in repr(rows[0])


# --- scopes ----------------------------------------------------------------------------


SCOPED_REQUESTS = [
    ("GET", "/api/v1/organization", None, "org:organization:read"),
    ("GET", "/api/v1/members", None, "org:members:read"),
    ("GET", "/api/v1/members/{membership_id}", None, "org:members:read"),
    ("PATCH", "/api/v1/members/{membership_id}", {"role": "admin"}, "org:members:update"),
    ("DELETE", "/api/v1/members/{membership_id}", None, "org:members:remove"),
    ("GET", "/api/v1/invitations", None, "org:members:read"),
    ("GET", "/api/v1/invitations/{invitation_id}", None, "org:members:read"),
    ("POST", "/api/v1/invitations", {"email": "scoped@example.org"}, "org:members:invite"),
    ("POST", "/api/v1/invitations/{invitation_id}/resend", None, "org:members:invite"),
    ("DELETE", "/api/v1/invitations/{invitation_id}", None, "org:members:invite"),
    ("GET", "/api/v1/campaigns", None, "org:campaigns:read"),
    ("GET", "/api/v1/campaigns/{campaign_id}", None, "org:campaigns:read"),
    ("GET", "/api/v1/campaigns/{campaign_id}/participations", None, "org:learners:read"),
    ("GET", "/api/v1/campaigns/{campaign_id}/results", None, "org:results:read"),
    ("GET", "/api/v1/learners", None, "org:learners:read"),
    ("GET", "/api/v1/learners/{learner_id}", None, "org:learners:read"),
    ("GET", "/api/v1/audit", None, "org:audit:read"),
]


@pytest.fixture(scope="module")
async def shared_campaign(shared: TenantFixture) -> dict[str, str]:
    """A campaign of the shared tenant with one learner who took part."""
    from campaigns.campaign_fields import CampaignFields
    from campaigns.service import create_campaign
    from tests.campaigns.listing_helpers import seed

    campaign = await create_campaign(
        shared.owner_ctx, CampaignFields(name="Scoped", profile_key="digcomp")
    )
    [participation] = await seed(shared, campaign.id, 1, prefix="Scoped")
    async with as_tenant(shared.id):
        rows = await database.fetch(
            "SELECT learner_id FROM participation WHERE tenant_id = $1 AND id = $2",
            shared.id,
            participation,
        )
    return {"campaign_id": str(campaign.id), "learner_id": str(rows[0]["learner_id"])}


def test_every_api_endpoint_is_in_the_scope_table(app: Litestar) -> None:
    from tests.api.test_isolation import api_endpoints

    assert {(method, path) for method, path, _, _ in SCOPED_REQUESTS} == api_endpoints(app)


@pytest.mark.parametrize(("method", "path", "body", "scope"), SCOPED_REQUESTS)
async def test_a_token_without_the_scope_gets_403_and_changes_nothing(
    client: httpx.AsyncClient,
    shared: TenantFixture,
    shared_campaign: dict[str, str],
    method: str,
    path: str,
    body: dict[str, str] | None,
    scope: str,
) -> None:
    from tenants.permissions import TOKEN_SCOPES

    others = sorted(s.value for s in TOKEN_SCOPES if s.value != scope)
    token = await issue_token(shared.owner_ctx, *others)
    membership = await _membership_id(shared, shared.member.id)
    async with as_tenant(shared.id):
        invitation = uuid4()
        await database.execute(
            "INSERT INTO invitation (tenant_id, id, email, role, token_hash, expires_at) "
            "VALUES ($1, $2, $3, 'member', $4, now() + interval '1 day')",
            shared.id,
            invitation,
            f"scope-{invitation.hex[:8]}@example.org",
            uuid4().bytes,
        )
    before = await audit_actions(shared.id)
    url = path.format(membership_id=membership, invitation_id=invitation, **shared_campaign)
    response = await client.request(method, url, json=body, headers=bearer(token))
    assert _error(response, 403) == "This token does not have the required scope."
    assert await audit_actions(shared.id) == before
    allowed = await issue_token(shared.owner_ctx, scope)
    if method == "GET":
        assert (await client.get(url, headers=bearer(allowed))).status_code == 200


# --- members ---------------------------------------------------------------------------


async def test_members_are_listed_in_joining_order_one_keyset_page_at_a_time(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    people = [
        await create_user(f"page-{i}-{uuid4().hex[:6]}@example.org", f"Person {i}", None, "en")
        for i in range(7)
    ]
    async with as_tenant(tenant_a.id):
        # One transaction: the seven share one created_at, so the id decides their order.
        for person in people:
            await database.execute(
                "INSERT INTO membership (tenant_id, id, user_id, role) "
                "VALUES ($1, $2, $3, 'member')",
                tenant_a.id,
                uuid4(),
                person.id,
            )
    token = await issue_token(tenant_a.owner_ctx, "org:members:read")
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    late_joiner = await make_user("Late Joiner")
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/members", params=params, headers=bearer(token))
        assert response.status_code == 200
        page = response.json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if pages == 1:
            # Someone joins while the client pages: nobody repeats, nobody is skipped.
            from tenants.members import add_member

            await add_member(tenant_a.owner_ctx, late_joiner, "member")
        if cursor is None:
            break
        assert len(page["items"]) == 4
    assert pages == 3  # 2 fixture members + 7 + the late joiner = 10 = 4 + 4 + 2
    emails = [item["email"] for item in seen]
    assert len(emails) == len(set(emails)) == 10
    assert emails[:2] == [tenant_a.owner.email, tenant_a.member.email]
    assert emails[-1] == late_joiner.email
    keys = [(item["created_at"], item["id"]) for item in seen]
    assert keys[2:9] == sorted(keys[2:9])  # equal times: by id
    assert set(seen[0]) == {"id", "user_id", "email", "name", "role", "created_at"}


async def test_the_default_page_holds_fifty_members(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    people = [
        await create_user(f"crowd-{i}-{uuid4().hex[:6]}@example.org", f"Crowd {i}", None, "en")
        for i in range(49)
    ]
    async with as_tenant(tenant_a.id):
        for person in people:
            await database.execute(
                "INSERT INTO membership (tenant_id, id, user_id, role) "
                "VALUES ($1, $2, $3, 'member')",
                tenant_a.id,
                uuid4(),
                person.id,
            )
    token = await issue_token(tenant_a.owner_ctx, "org:members:read")
    first = (await client.get("/api/v1/members", headers=bearer(token))).json()
    assert len(first["items"]) == 50
    assert first["next_cursor"]
    rest = await client.get(
        "/api/v1/members", params={"cursor": first["next_cursor"]}, headers=bearer(token)
    )
    assert rest.json()["next_cursor"] is None
    emails = [item["email"] for item in first["items"] + rest.json()["items"]]
    assert sorted(emails) == sorted(
        [tenant_a.owner.email, tenant_a.member.email, *(person.email for person in people)]
    )


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"limit": "0"}, 422, "Ask for between 1 and 200 items per page."),
        ({"limit": "201"}, 422, "Ask for between 1 and 200 items per page."),
        ({"cursor": "forged"}, 422, "This page link is not valid."),
        ({"cursor": "MjAyNi0wMS0wMVQwMDowMDowMHx4"}, 422, "This page link is not valid."),
        ({"cursor": "MjAyNi0wMS0wMVQwMDowMDowMHw" + "A" * 10}, 422, "This page link is not valid."),
        ({"limit": "many"}, 400, "The request is not valid"),
    ],
)
async def test_bad_paging_parameters_are_explained(
    client: httpx.AsyncClient,
    shared_token: str,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = await client.get("/api/v1/members", params=params, headers=bearer(shared_token))
    assert message in _error(response, status)


async def test_a_member_is_read_changed_and_removed_each_change_audited_once(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    membership = await _membership_id(tenant_a, tenant_a.member.id)
    url = f"/api/v1/members/{membership}"
    read = await client.get(url, headers=bearer(token))
    assert read.status_code == 200
    assert read.json()["email"] == tenant_a.member.email
    assert read.json()["role"] == "member"
    before = await audit_actions(tenant_a.id)
    changed = await client.patch(url, json={"role": "admin"}, headers=bearer(token))
    assert changed.status_code == 200
    assert changed.json()["role"] == "admin"
    assert await audit_actions(tenant_a.id) == [*before, "member.role_changed"]
    removed = await client.delete(url, headers=bearer(token))
    assert removed.status_code == 204
    assert await audit_actions(tenant_a.id) == [*before, "member.role_changed", "member.removed"]
    assert _error(await client.get(url, headers=bearer(token)), 404) == "Not found."
    async with as_tenant(tenant_a.id):
        actors = await database.fetch(
            "SELECT actor_kind, actor_label FROM audit_event WHERE tenant_id = $1 "
            "AND action = 'member.removed'",
            tenant_a.id,
        )
    assert actors == [{"actor_kind": "api_token", "actor_label": "token:test integration"}]


async def test_a_token_cannot_touch_owners(
    client: httpx.AsyncClient, shared: TenantFixture, shared_token: str
) -> None:
    owner = await _membership_id(shared, shared.owner.id)
    member = await _membership_id(shared, shared.member.id)
    before = await audit_actions(shared.id)
    demote = await client.patch(
        f"/api/v1/members/{owner}", json={"role": "member"}, headers=bearer(shared_token)
    )
    promote = await client.patch(
        f"/api/v1/members/{member}", json={"role": "owner"}, headers=bearer(shared_token)
    )
    remove = await client.delete(f"/api/v1/members/{owner}", headers=bearer(shared_token))
    invite = await client.post(
        "/api/v1/invitations",
        json={"email": "new-owner@example.org", "role": "owner"},
        headers=bearer(shared_token),
    )
    for response in (demote, promote, invite):
        assert _error(response, 403) == "Only an owner can appoint or change an owner."
    assert _error(remove, 403) == "Only an owner can remove an owner."
    assert await audit_actions(shared.id) == before


async def test_the_last_owner_stays_even_for_a_token_of_an_owner_context(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    # A system context (as the CLI issues tokens) holds every permission, owners included;
    # the token it issues still cannot carry org:owners:manage.
    token = await issue_token(system_context(tenant_a.owner_ctx.tenant))
    owner = await _membership_id(tenant_a, tenant_a.owner.id)
    response = await client.delete(f"/api/v1/members/{owner}", headers=bearer(token))
    assert _error(response, 403) == "Only an owner can remove an owner."


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"role": "superadmin"}, 422, "Choose one of the offered options."),
        ({"role": ""}, 422, "Choose one of the offered options."),
        ({"role": 3}, 400, "The request is not valid"),
        ({}, 400, "The request is not valid"),
        ("not json", 400, "The request is not valid"),
    ],
)
async def test_bad_role_changes_are_explained_and_change_nothing(
    client: httpx.AsyncClient,
    shared: TenantFixture,
    shared_token: str,
    body: Any,
    status: int,
    message: str,
) -> None:
    membership = await _membership_id(shared, shared.member.id)
    before = await audit_actions(shared.id)
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
    response = await client.patch(
        f"/api/v1/members/{membership}", headers=bearer(shared_token), **kwargs
    )
    assert message in _error(response, status)
    assert await audit_actions(shared.id) == before


# --- invitations -----------------------------------------------------------------------


async def test_invitations_are_created_read_listed_resent_and_revoked(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx)
    before = await audit_actions(tenant_a.id)
    created = await client.post(
        "/api/v1/invitations",
        json={"email": "api.invitee@example.org", "role": "admin"},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    invitation_id = created.json()["id"]
    url = f"/api/v1/invitations/{invitation_id}"
    read = await client.get(url, headers=bearer(token))
    assert read.status_code == 200
    assert read.json()["email"] == "api.invitee@example.org"
    assert read.json()["role"] == "admin"
    assert read.json()["status"] == "pending"
    assert "token_hash" not in read.json()
    listed = await client.get("/api/v1/invitations", headers=bearer(token))
    assert [item["id"] for item in listed.json()] == [invitation_id]
    resent = await client.post(f"{url}/resend", headers=bearer(token))
    assert resent.status_code == 204
    revoked = await client.delete(url, headers=bearer(token))
    assert revoked.status_code == 204
    assert (await client.get(url, headers=bearer(token))).json()["status"] == "revoked"
    assert (await client.get("/api/v1/invitations", headers=bearer(token))).json() == []
    again = await client.delete(url, headers=bearer(token))
    assert _error(again, 409) == "This invitation is no longer pending."
    assert await audit_actions(tenant_a.id) == [
        *before,
        "member.invited",
        "invitation.resent",
        "invitation.revoked",
    ]
    async with database.global_transaction():
        mails = await database.fetch(
            "SELECT 1 FROM mail_message WHERE to_address = 'api.invitee@example.org'"
        )
    assert len(mails) == 2


@pytest.mark.parametrize(
    ("body", "status", "message", "field"),
    [
        ({"email": "not-an-email"}, 422, "Enter a valid email address.", "email"),
        ({"email": "x" * 250 + "@example.org"}, 422, "Enter a valid email address.", "email"),
        ({"email": "nul\x00@example.org"}, 422, "Enter a valid email address.", "email"),
        ({"email": "ok@example.org", "role": "boss"}, 422, "Choose one of the offered", "role"),
        ({"email": "{member}"}, 409, "This person is already a member.", "email"),
        ({"email": "{member_upper}"}, 409, "This person is already a member.", "email"),
        ({"role": "member"}, 400, "The request is not valid", None),
        ({"email": 42}, 400, "The request is not valid", None),
    ],
)
async def test_bad_invitations_are_explained_and_nothing_is_written(
    client: httpx.AsyncClient,
    shared: TenantFixture,
    shared_token: str,
    body: dict[str, Any],
    status: int,
    message: str,
    field: str | None,
) -> None:
    if isinstance(body.get("email"), str):
        body = {
            **body,
            "email": body["email"].format(
                member=shared.member.email, member_upper=shared.member.email.upper()
            ),
        }
    before = await audit_actions(shared.id)
    async with as_tenant(shared.id):
        invitations = await database.fetch(
            "SELECT id FROM invitation WHERE tenant_id = $1", shared.id
        )
    response = await client.post("/api/v1/invitations", json=body, headers=bearer(shared_token))
    assert message in _error(response, status)
    if field:
        assert response.json()["error"]["field"] == field
    async with as_tenant(shared.id):
        after = await database.fetch("SELECT id FROM invitation WHERE tenant_id = $1", shared.id)
    assert after == invitations
    assert await audit_actions(shared.id) == before


async def test_unknown_ids_are_404_whatever_their_shape(
    client: httpx.AsyncClient, shared_token: str
) -> None:
    for path in (
        f"/api/v1/members/{uuid4()}",
        "/api/v1/members/not-a-uuid",
        "/api/v1/members/nul%00",
        f"/api/v1/invitations/{uuid4()}",
        "/api/v1/invitations/%20",
    ):
        assert _error(await client.get(path, headers=bearer(shared_token)), 404) == "Not found."


# --- OpenAPI ---------------------------------------------------------------------------


async def test_the_openapi_document_describes_every_endpoint_and_the_bearer_scheme(
    client: httpx.AsyncClient, app: Litestar
) -> None:
    from tests.api.test_isolation import api_endpoints

    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A tenant API token (jalon_…).",
    }
    documented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if path.startswith("/api/v1/")
    }
    assert documented == api_endpoints(app)
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            assert operation["security"] == [{"bearer": []}], path
            assert {"401", "403", "404", "422"} <= set(operation["responses"]), path
    assert [path for path in schema["paths"] if not path.startswith("/api/v1/")] == []  # pages


async def test_a_body_beyond_the_size_limit_is_413_and_writes_nothing(
    client: httpx.AsyncClient, shared: TenantFixture, shared_token: str
) -> None:
    before = await audit_actions(shared.id)
    body = b'{"email": "' + b"a" * 3_000_000 + b'@example.org"}'
    response = await client.post(
        "/api/v1/invitations",
        content=body,
        headers={**bearer(shared_token), "content-type": "application/json"},
    )
    assert _error(response, 413) == "What you sent is too large."
    assert await audit_actions(shared.id) == before
