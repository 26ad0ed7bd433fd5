"""SCIM groups: members added and removed every way directories do it, roles following the
group mapping, and concurrent PATCHes of one group that never lose a member."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from core import database
from sso import scim
from tests.api.conftest import app, audit_actions  # noqa: F401 - the application fixture
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso.scim_helpers import Directory, directory_of, patch_body, scim_client, user_body


@pytest.fixture
async def directory(tenant_a: TenantFixture) -> Directory:
    return await directory_of(tenant_a)


@pytest.fixture
async def client(app: Litestar, directory: Directory) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with scim_client(app, directory.token) as http:
        yield http


async def _user(client: httpx.AsyncClient, directory: Directory) -> str:
    response = await client.post("/Users", json=user_body(directory.email()))
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


async def _role(directory: Directory, user_id: str) -> str:
    user = await scim.get_user(directory.tenant.owner_ctx, user_id)
    async with as_tenant(directory.tenant.id):
        rows = await database.fetch(
            "SELECT role FROM membership WHERE tenant_id = $1 AND user_id = $2",
            directory.tenant.id,
            user.user_id,
        )
    role: str = rows[0]["role"]
    return role


def _members(group: dict[str, Any]) -> set[str]:
    return {member["value"] for member in group.get("members", [])}


async def test_a_group_is_created_with_members_and_listed_by_display_name(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    ada, bob = await _user(client, directory), await _user(client, directory)
    response = await client.post(
        "/Groups",
        json={
            "displayName": "Sales",
            "externalId": "g-1",
            "members": [{"value": ada}, {"value": bob}],
        },
    )
    assert response.status_code == 201, response.text
    group = response.json()
    assert _members(group) == {ada, bob}
    assert group["members"][0]["$ref"].endswith(f"/scim/v2/Users/{group['members'][0]['value']}")
    found = await client.get("/Groups", params={"filter": 'displayName eq "sales"'})
    assert [g["id"] for g in found.json()["Resources"]] == [group["id"]]
    by_member = await client.get("/Groups", params={"filter": f'members[value eq "{ada}"]'})
    assert [g["id"] for g in by_member.json()["Resources"]] == [group["id"]]
    slim = await client.get("/Groups", params={"excludedAttributes": "members"})
    assert "members" not in slim.json()["Resources"][0]
    user = (await client.get(f"/Users/{ada}")).json()
    assert user["groups"] == [
        {"value": group["id"], "$ref": group["meta"]["location"], "display": "Sales"}
    ]
    again = await client.post("/Groups", json={"displayName": "Sales"})
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"
    unknown = await client.post(
        "/Groups", json={"displayName": "Ghosts", "members": [{"value": str(group["id"])}]}
    )
    assert unknown.status_code == 400


async def test_patch_adds_and_removes_members_by_filter_and_by_value(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    ada, bob, cid = [await _user(client, directory) for _ in range(3)]
    group = (await client.post("/Groups", json={"displayName": "Ops"})).json()
    url = f"/Groups/{group['id']}"
    added = await client.patch(
        url,
        json=patch_body(
            {"op": "Add", "path": "members", "value": [{"value": ada}, {"value": bob}]},
            {"op": "add", "path": "members", "value": [{"value": ada}]},  # already in: kept once
        ),
    )
    assert added.status_code == 200, added.text
    assert sorted(m["value"] for m in added.json()["members"]) == sorted([ada, bob])
    removed = await client.patch(
        url, json=patch_body({"op": "remove", "path": f'members[value eq "{ada}"]'})
    )
    assert _members(removed.json()) == {bob}
    # Entra ID removes with a value and no filter, and renames with a no-path replace.
    entra = await client.patch(
        url,
        json=patch_body(
            {"op": "Add", "path": "members", "value": [{"value": cid}]},
            {"op": "Remove", "path": "members", "value": [{"value": bob}]},
            {"op": "Replace", "value": {"id": group["id"], "displayName": "Operations"}},
        ),
    )
    assert entra.status_code == 400  # id is read-only
    entra = await client.patch(
        url,
        json=patch_body(
            {"op": "Add", "path": "members", "value": [{"value": cid}]},
            {"op": "Remove", "path": "members", "value": [{"value": bob}]},
            {"op": "Replace", "value": {"displayName": "Operations"}},
        ),
    )
    assert entra.status_code == 200, entra.text
    assert entra.json()["displayName"] == "Operations"
    assert _members(entra.json()) == {cid}
    cleared = await client.patch(url, json=patch_body({"op": "remove", "path": "members"}))
    assert "members" not in cleared.json()
    replaced = await client.put(url, json={"displayName": "Ops", "members": [{"value": ada}]})
    assert _members(replaced.json()) == {ada}
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert "scim.group_deleted" in await audit_actions(directory.tenant.id)


async def test_a_group_mapped_to_admin_makes_its_members_admins_and_leaving_it_undoes_it(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    ctx = directory.tenant.owner_ctx
    ada = await _user(client, directory)
    group = (await client.post("/Groups", json={"displayName": "Jalon admins"})).json()
    await scim.set_group_mapping(ctx, "jalon ADMINS", "admin", "Managers")
    assert await _role(directory, ada) == "member"  # not in the group yet
    url = f"/Groups/{group['id']}"
    await client.patch(
        url, json=patch_body({"op": "add", "path": "members", "value": [{"value": ada}]})
    )
    assert await _role(directory, ada) == "admin"
    user = await scim.get_user(ctx, ada)
    assert await scim.learner_groups_of(ctx, user.user_id) == ["Managers"]
    await client.patch(url, json=patch_body({"op": "remove", "path": f'members[value eq "{ada}"]'}))
    assert await _role(directory, ada) == "member"
    await client.patch(
        url, json=patch_body({"op": "add", "path": "members", "value": [{"value": ada}]})
    )
    assert await _role(directory, ada) == "admin"
    mapping = (await scim.list_group_mappings(ctx))[0]
    await scim.remove_group_mapping(ctx, mapping.id)
    assert await _role(directory, ada) == "admin"  # no mapping left: roles are the console's
    await scim.set_group_mapping(ctx, "Jalon admins", "member")
    assert await _role(directory, ada) == "member"
    actions = await audit_actions(directory.tenant.id)
    assert actions.count("member.role_changed") == 4
    assert "scim.mapping_set" in actions
    assert "scim.mapping_removed" in actions


async def test_an_owner_keeps_their_role_whatever_the_groups_say(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    owner = directory.tenant.owner
    async with as_tenant(directory.tenant.id):
        await database.execute(
            "UPDATE user_account SET email = $2 WHERE id = $1", owner.id, directory.email("boss")
        )
    boss = (await client.post("/Users", json=user_body(directory.email("boss")))).json()["id"]
    await scim.set_group_mapping(directory.tenant.owner_ctx, "Staff", "member")
    await scim.set_group_mapping(directory.tenant.owner_ctx, "Admins", "admin")
    await client.post("/Groups", json={"displayName": "Staff", "members": [{"value": boss}]})
    assert await _role(directory, boss) == "owner"


async def test_concurrent_patches_of_one_group_lose_no_member(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    ctx = directory.tenant.owner_ctx
    people = [await _user(client, directory) for _ in range(8)]
    group = await scim.create_group(ctx, {"displayName": "Everyone"})

    async def add(person: str) -> None:
        # Each PATCH in its own transaction, on its own pooled connection, all at once.
        await scim.patch_group(
            ctx,
            group.id,
            patch_body({"op": "add", "path": "members", "value": [{"value": person}]}),
        )

    await asyncio.gather(*(add(person) for person in people))
    after = await scim.get_group(ctx, group.id)
    assert sorted(str(member) for member in after.members) == sorted(people)

    async def remove(person: str) -> None:
        await scim.patch_group(
            ctx, group.id, patch_body({"op": "remove", "path": f'members[value eq "{person}"]'})
        )

    await asyncio.gather(*(remove(person) for person in people[:4]))
    after = await scim.get_group(ctx, group.id)
    assert sorted(str(member) for member in after.members) == sorted(people[4:])


async def test_deleting_a_user_takes_them_out_of_their_groups(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    ada = await _user(client, directory)
    group = (
        await client.post("/Groups", json={"displayName": "G", "members": [{"value": ada}]})
    ).json()
    await client.delete(f"/Users/{ada}")
    assert "members" not in (await client.get(f"/Groups/{group['id']}")).json()


async def test_group_pages_and_filters_on_external_id(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    ids = [
        (await client.post("/Groups", json={"displayName": f"G{i}", "externalId": f"x{i}"})).json()[
            "id"
        ]
        for i in range(3)
    ]
    page = (await client.get("/Groups", params={"startIndex": 2, "count": 1})).json()
    assert page["totalResults"] == 3
    assert [g["id"] for g in page["Resources"]] == [ids[1]]
    found = await client.get("/Groups", params={"filter": 'externalId eq "x2"'})
    assert [g["id"] for g in found.json()["Resources"]] == [ids[2]]
    searched = await client.post(
        "/Groups/.search", json={"filter": 'displayName sw "g"', "count": 2}
    )
    assert searched.status_code == 200
    assert searched.json()["totalResults"] == 3
    assert len(searched.json()["Resources"]) == 2


async def test_a_patch_waits_for_the_group_row_another_transaction_holds(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    """The lock is what serializes: a PATCH started while another transaction holds the
    group's row waits for it, then reads what that transaction wrote."""
    ctx, tenant_id = directory.tenant.owner_ctx, directory.tenant.id
    first, second = await _user(client, directory), await _user(client, directory)
    group = await scim.create_group(ctx, {"displayName": "Locked"})
    locked, release = asyncio.Event(), asyncio.Event()

    async def hold_the_row() -> None:
        async with as_tenant(tenant_id):
            await database.fetch(
                "SELECT id FROM directory_group WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                tenant_id,
                group.id,
            )
            locked.set()
            await release.wait()
            # Written under the lock, committed before the waiting PATCH reads anything.
            await database.execute(
                """INSERT INTO directory_group_member (tenant_id, id, group_id, directory_user_id)
                   VALUES ($1, gen_random_uuid(), $2, $3)""",
                tenant_id,
                group.id,
                first,
            )

    holder = asyncio.create_task(hold_the_row())
    await locked.wait()
    patching = asyncio.create_task(
        scim.patch_group(
            ctx,
            group.id,
            patch_body({"op": "add", "path": "members", "value": [{"value": second}]}),
        )
    )
    try:
        for _ in range(400):  # until the PATCH is seen waiting on the row (or give up)
            await asyncio.sleep(0.025)
            async with as_tenant(tenant_id):
                waiting = await database.fetch(
                    """SELECT 1 FROM pg_stat_activity
                       WHERE datname = current_database() AND state = 'active'
                         AND pid <> pg_backend_pid()
                         AND query LIKE '%FROM directory_group g%FOR UPDATE%'"""
                )
            if waiting:
                break
        assert waiting, "the PATCH never waited for the row"
        assert not patching.done()
    finally:
        release.set()
        await holder
    patched = await patching
    assert sorted(str(member) for member in patched.members) == sorted([first, second])
