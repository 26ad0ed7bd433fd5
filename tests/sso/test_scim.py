"""SCIM 2.0 over HTTP, as a directory uses it: users and groups created, read, listed with
filters and pages, replaced, patched (Entra ID's way too), deactivated and deleted, each
change reaching the organization's memberships and audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from core import database
from core.errors import NotFound
from sso import scim
from sso.scim_tokens import revoke_scim_token
from tenants.context import Actor
from tenants.members import list_members
from tenants.organizations import member_context
from tests.api.conftest import app, audit_actions  # noqa: F401 - the application fixture
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant
from tests.sso.scim_helpers import (
    MEDIA,
    Directory,
    directory_of,
    patch_body,
    scim_client,
    user_body,
)


@pytest.fixture
async def directory(tenant_a: TenantFixture) -> Directory:
    return await directory_of(tenant_a)


@pytest.fixture
async def client(app: Litestar, directory: Directory) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with scim_client(app, directory.token) as http:
        yield http


async def _membership(tenant: TenantFixture, email: str) -> dict[str, Any] | None:
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            """SELECT m.id, m.role, m.suspended_at FROM membership m
               JOIN user_account u ON u.id = m.user_id
               WHERE m.tenant_id = $1 AND lower(u.email) = lower($2)""",
            tenant.id,
            email,
        )
    return rows[0] if rows else None


async def _create(client: httpx.AsyncClient, email: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/Users", json=user_body(email, **extra))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- users -----------------------------------------------------------------------------------


async def test_a_created_user_is_a_member_with_their_directory_attributes(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    email = directory.email("ada")
    response = await client.post("/Users", json=user_body(email.upper(), externalId="e-1"))
    assert response.status_code == 201
    assert response.headers["content-type"].startswith(MEDIA)
    created = response.json()
    assert created["userName"] == email  # lower case: it names the account
    assert created["externalId"] == "e-1"
    assert created["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert created["active"] is True
    assert response.headers["location"] == created["meta"]["location"]
    assert created["meta"]["location"].endswith(f"/scim/v2/Users/{created['id']}")
    fetched = await client.get(f"/Users/{created['id']}")
    assert fetched.json() == created
    membership = await _membership(directory.tenant, email)
    assert membership is not None
    assert membership["role"] == "member"
    assert membership["suspended_at"] is None
    actions = await audit_actions(directory.tenant.id)
    assert actions[-2:] == ["member.added", "scim.user_created"]


async def test_an_existing_account_is_reused_and_an_existing_member_keeps_their_role(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    person = await make_user("Grace Hopper")
    async with as_tenant(directory.tenant.id):
        # The person's account moves into the verified domain, then becomes an admin.
        await database.execute(
            "UPDATE user_account SET email = $2 WHERE id = $1",
            person.id,
            directory.email("grace"),
        )
    from tenants.members import add_member

    await add_member(directory.tenant.owner_ctx, person, "admin")
    created = await _create(client, directory.email("grace"))
    user = await scim.get_user(directory.tenant.owner_ctx, created["id"])
    assert user.user_id == person.id
    membership = await _membership(directory.tenant, directory.email("grace"))
    assert membership is not None
    assert membership["role"] == "admin"


async def test_only_addresses_of_verified_domains_are_provisioned(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    outside = await client.post("/Users", json=user_body("someone@elsewhere.example.com"))
    assert outside.status_code == 400
    assert outside.json()["scimType"] == "invalidValue"
    assert outside.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    not_an_email = await client.post("/Users", json=user_body("ada"))
    assert not_an_email.status_code == 400
    assert await _membership(directory.tenant, "someone@elsewhere.example.com") is None


async def test_a_user_name_provisioned_twice_is_a_uniqueness_conflict(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    email = directory.email()
    await _create(client, email)
    again = await client.post("/Users", json=user_body(email))
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"
    assert again.json()["status"] == "409"


async def test_filters_find_users_by_user_name_external_id_display_name_and_email(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    ada = await _create(client, directory.email("ada"), externalId="A-1", displayName="Ada L")
    bob = await _create(
        client,
        directory.email("bob"),
        externalId="B-2",
        displayName="Bob M",
        emails=[{"value": "bob@home.example.org", "type": "home"}],
    )

    async def ids(filter_text: str) -> list[str]:
        response = await client.get("/Users", params={"filter": filter_text})
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["Resources"]]

    assert await ids(f'userName eq "{directory.email("ADA")}"') == [ada["id"]]
    assert await ids('externalId eq "B-2"') == [bob["id"]]
    assert await ids('externalId eq "b-2"') == []  # externalId is case-exact
    assert await ids('displayName eq "bob m"') == [bob["id"]]
    assert await ids('emails.value eq "BOB@home.example.org"') == [bob["id"]]
    assert await ids('emails[type eq "home" and value co "bob@"]') == [bob["id"]]
    assert await ids('userName sw "ada@" and externalId eq "A-1"') == [ada["id"]]
    assert await ids('externalId eq "A-1" or externalId eq "B-2"') == [ada["id"], bob["id"]]
    assert await ids('not (externalId eq "A-1")') == [bob["id"]]
    assert await ids("urn:ietf:params:scim:schemas:core:2.0:User:userName pr") == [
        ada["id"],
        bob["id"],
    ]
    assert await ids("active eq true") == [ada["id"], bob["id"]]


@pytest.mark.parametrize(
    "filter_text",
    ["userName eq ada", 'userName zz "x"', 'password eq "x"', '(userName eq "x"', "userName"],
)
async def test_a_filter_that_cannot_run_is_invalid_filter(
    client: httpx.AsyncClient, filter_text: str
) -> None:
    response = await client.get("/Users", params={"filter": filter_text})
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


async def test_listings_page_with_start_index_and_count(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    created = [(await _create(client, directory.email(f"u{i}")))["id"] for i in range(5)]
    first = (await client.get("/Users", params={"startIndex": 1, "count": 2})).json()
    second = (await client.get("/Users", params={"startIndex": 3, "count": 2})).json()
    last = (await client.get("/Users", params={"startIndex": 5, "count": 2})).json()
    assert first["totalResults"] == second["totalResults"] == 5
    assert first["startIndex"] == 1
    assert second["startIndex"] == 3
    assert first["itemsPerPage"] == 2
    listed = [u["id"] for page in (first, second, last) for u in page["Resources"]]
    assert listed == created
    only_total = (await client.get("/Users", params={"count": 0})).json()
    assert only_total["totalResults"] == 5
    assert only_total["Resources"] == []


async def test_attributes_and_excluded_attributes_shape_what_is_returned(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    created = await _create(client, directory.email())
    narrow = (await client.get(f"/Users/{created['id']}", params={"attributes": "userName"})).json()
    assert set(narrow) == {"schemas", "id", "userName"}
    sub = await client.get(f"/Users/{created['id']}", params={"attributes": "name.givenName"})
    assert sub.json()["name"] == {"givenName": "Ada"}
    wide = await client.get(f"/Users/{created['id']}", params={"excludedAttributes": "emails"})
    assert "emails" not in wide.json()
    assert "userName" in wide.json()


async def test_put_replaces_the_user_and_clears_what_it_leaves_out(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    created = await _create(client, directory.email(), externalId="x")
    body = {"userName": created["userName"], "name": {"givenName": "Augusta"}}
    replaced = (await client.put(f"/Users/{created['id']}", json=body)).json()
    assert replaced["name"] == {"givenName": "Augusta"}
    assert "externalId" not in replaced
    assert "emails" not in replaced
    assert "active" not in replaced  # not said: the person stays active
    membership = await _membership(directory.tenant, created["userName"])
    assert membership is not None
    assert membership["suspended_at"] is None


async def test_patch_changes_names_and_emails_through_paths_and_filters(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    created = await _create(client, directory.email())
    url = f"/Users/{created['id']}"
    response = await client.patch(
        url,
        json=patch_body(
            {"op": "replace", "path": "name.givenName", "value": "Augusta"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@x.example"},
            {"op": "add", "path": "emails", "value": [{"value": "h@x.example", "type": "home"}]},
            {"op": "add", "path": 'emails[type eq "other"].value', "value": "o@x.example"},
            {"op": "add", "path": "externalId", "value": "ext-9"},
        ),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"]["givenName"] == "Augusta"
    assert patched["externalId"] == "ext-9"
    assert {(e.get("type"), e["value"]) for e in patched["emails"]} == {
        ("work", "w@x.example"),
        ("home", "h@x.example"),
        ("other", "o@x.example"),
    }
    removed = await client.patch(
        url,
        json=patch_body(
            {"op": "remove", "path": 'emails[type eq "home"]'},
            {"op": "remove", "path": "name.familyName"},
        ),
    )
    assert [e["type"] for e in removed.json()["emails"]] == ["work", "other"]
    assert removed.json()["name"] == {"givenName": "Augusta"}
    assert (await client.get(url)).json() == removed.json()


async def test_entra_ids_patch_quirks_are_understood(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    created = await _create(client, directory.email())
    url = f"/Users/{created['id']}"
    response = await client.patch(
        url,
        json=patch_body(
            {"op": "Replace", "path": "displayName", "value": "A. Lovelace"},
            {"op": "Add", "value": {"name.familyName": "King", "externalId": "0001"}},
            {
                "op": "Add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "Maths",
            },
        ),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["displayName"] == "A. Lovelace"
    assert patched["name"]["familyName"] == "King"
    assert patched["externalId"] == "0001"
    by_external = await client.get("/Users", params={"filter": 'externalId eq "0001"'})
    assert [u["id"] for u in by_external.json()["Resources"]] == [created["id"]]


async def test_deactivating_suspends_the_membership_and_reactivating_restores_it(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    email = directory.email()
    created = await _create(client, email)
    url = f"/Users/{created['id']}"
    off = await client.patch(
        url, json=patch_body({"op": "Replace", "path": "active", "value": "False"})
    )
    assert off.json()["active"] is False
    membership = await _membership(directory.tenant, email)
    assert membership is not None
    assert membership["suspended_at"] is not None
    listed = await list_members(directory.tenant.owner_ctx, limit=None)
    assert [m.suspended_at is not None for m in listed.items if m.email == email] == [True]
    async with as_tenant(directory.tenant.id):
        account = (await database.fetch("SELECT id FROM user_account WHERE email = $1", email))[0][
            "id"
        ]
    from tenants.accounts import get_user

    person = await get_user(account)
    assert person is not None
    with pytest.raises(NotFound):
        await member_context(directory.tenant.slug, person, Actor(kind="user", user_id=person.id))
    on = await client.patch(url, json=patch_body({"op": "replace", "value": {"active": "True"}}))
    assert on.json()["active"] is True
    ctx = await member_context(directory.tenant.slug, person, Actor(kind="user", user_id=person.id))
    assert ctx.role == "member"
    actions = await audit_actions(directory.tenant.id)
    assert "member.suspended" in actions
    assert "member.reactivated" in actions


async def test_the_last_owner_cannot_be_suspended_by_the_directory(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    owner = directory.tenant.owner
    async with as_tenant(directory.tenant.id):
        await database.execute(
            "UPDATE user_account SET email = $2 WHERE id = $1", owner.id, directory.email("boss")
        )
    created = await _create(client, directory.email("boss"))
    refused = await client.patch(
        f"/Users/{created['id']}",
        json=patch_body({"op": "replace", "path": "active", "value": False}),
    )
    assert refused.status_code == 409
    membership = await _membership(directory.tenant, directory.email("boss"))
    assert membership is not None
    assert membership["suspended_at"] is None


async def test_deleting_a_user_removes_the_membership_and_keeps_the_account(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    email = directory.email()
    created = await _create(client, email)
    deleted = await client.delete(f"/Users/{created['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"/Users/{created['id']}")).status_code == 404
    assert await _membership(directory.tenant, email) is None
    async with as_tenant(directory.tenant.id):
        accounts = await database.fetch("SELECT id FROM user_account WHERE email = $1", email)
    assert len(accounts) == 1
    assert (await audit_actions(directory.tenant.id))[-2:] == [
        "member.removed",
        "scim.user_deleted",
    ]


async def test_bad_patches_are_scim_errors(client: httpx.AsyncClient, directory: Directory) -> None:
    created = await _create(client, directory.email())
    url = f"/Users/{created['id']}"
    cases = [
        (patch_body({"op": "replace", "path": "nickName", "value": "x"}), "invalidPath"),
        (patch_body({"op": "explode", "path": "active"}), "invalidSyntax"),
        (patch_body({"op": "replace", "path": "active", "value": "perhaps"}), "invalidValue"),
        (patch_body({"op": "replace", "path": "groups", "value": []}), "mutability"),
        (patch_body({"op": "replace", "path": 'emails[value eq "no"]', "value": {}}), "noTarget"),
        ({"Operations": []}, "invalidSyntax"),
    ]
    for body, scim_type in cases:
        response = await client.patch(url, json=body)
        assert response.status_code == 400, body
        assert response.json()["scimType"] == scim_type, body
    broken = await client.post("/Users", content=b"{not json")
    assert broken.status_code == 400


# --- tokens and isolation ------------------------------------------------------------------


async def test_no_token_a_revoked_or_forged_token_is_refused(
    app: Litestar,  # noqa: F811
    directory: Directory,
    tenant_b: TenantFixture,
) -> None:
    async with scim_client(app, "nothing") as anonymous:
        response = await anonymous.get("/Users")
        assert response.status_code == 401
        assert response.json()["status"] == "401"
    forged = directory.token.replace(directory.tenant.id.hex, tenant_b.id.hex)
    async with scim_client(app, forged) as foreign:
        assert (await foreign.get("/Users")).status_code == 401
    tokens = await scim.list_users(directory.tenant.owner_ctx)
    assert tokens.total == 0
    from sso.scim_tokens import list_scim_tokens

    (token,) = await list_scim_tokens(directory.tenant.owner_ctx)
    await revoke_scim_token(directory.tenant.owner_ctx, token.id)
    async with scim_client(app, directory.token) as revoked:
        assert (await revoked.get("/Users")).status_code == 401


async def test_a_tenants_token_reaches_none_of_another_tenants_users_or_groups(
    app: Litestar,  # noqa: F811
    client: httpx.AsyncClient,
    tenant_b: TenantFixture,
) -> None:
    theirs = await directory_of(tenant_b)
    async with scim_client(app, theirs.token) as other:
        user = await _create(other, theirs.email())
        group = (await other.post("/Groups", json={"displayName": "B team"})).json()
    for path in (f"/Users/{user['id']}", f"/Groups/{group['id']}"):
        assert (await client.get(path)).status_code == 404
        assert (await client.put(path, json=user_body(theirs.email()))).status_code == 404
        patched = await client.patch(
            path, json=patch_body({"op": "replace", "path": "displayName", "value": "x"})
        )
        assert patched.status_code == 404
        assert (await client.delete(path)).status_code == 404
    listed = await client.get("/Users", params={"filter": f'userName eq "{user["userName"]}"'})
    assert listed.json()["totalResults"] == 0
    assert (await client.get("/Groups")).json()["totalResults"] == 0


async def test_unknown_paths_and_search_everywhere_answer_scim_errors(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/Nothing/here")
    assert missing.status_code == 404
    assert missing.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    everywhere = await client.post("/.search", json={})
    assert everywhere.status_code == 501


async def test_discovery_documents_describe_users_and_groups(client: httpx.AsyncClient) -> None:
    config = (await client.get("/ServiceProviderConfig")).json()
    assert config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False
    types = (await client.get("/ResourceTypes")).json()
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    user = await client.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
    assert {a["name"] for a in user.json()["attributes"]} >= {"userName", "emails", "active"}
    assert (await client.get("/ResourceTypes/Printer")).status_code == 404
