"""SCIM groups to learner groups: a person the directory provisioned is filed under the learner
groups their directory groups map to, on their learner record, as the directory changes and
when their first participation makes the record; groups of an import that no mapping targets
stay, and another organization's learners are never touched."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from litestar import Litestar

from campaigns.learner_import import import_learners
from campaigns.participation.landing import participant_context
from campaigns.participation.start import start_or_resume
from core import database
from core.database import global_transaction
from sso import scim
from tenants.context import Actor, TenantContext
from tests.api.conftest import app  # noqa: F401 - the application fixture
from tests.campaigns.conftest import (  # noqa: F401 - fixtures
    make_campaign,
    make_participant,
    test_bank,
)
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso.scim_helpers import Directory, directory_of, patch_body, scim_client, user_body

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("test_bank")


@pytest.fixture
async def directory(tenant_a: TenantFixture) -> Directory:
    return await directory_of(tenant_a)


@pytest.fixture
async def client(app: Litestar, directory: Directory) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with scim_client(app, directory.token) as http:
        yield http


@dataclass(frozen=True)
class Person:
    """Someone the directory provisioned: their SCIM id, their global account, their email."""

    scim_id: str
    account_id: UUID
    email: str

    def ctx(self, tenant: TenantFixture) -> TenantContext:
        """Their context as a participant of `tenant`'s campaigns."""
        actor = Actor(kind="user", user_id=self.account_id, label=self.email)
        return participant_context(tenant.owner_ctx.tenant, actor)


async def _provision(client: httpx.AsyncClient, directory: Directory) -> Person:
    email = directory.email()
    response = await client.post("/Users", json=user_body(email))
    assert response.status_code == 201, response.text
    scim_id = response.json()["id"]
    user = await scim.get_user(directory.tenant.owner_ctx, scim_id)
    return Person(scim_id, user.user_id, email)


async def _group(client: httpx.AsyncClient, name: str, *members: Person) -> str:
    body = {"displayName": name, "members": [{"value": m.scim_id} for m in members]}
    response = await client.post("/Groups", json=body)
    assert response.status_code == 201, response.text
    group_id: str = response.json()["id"]
    return group_id


async def _add(client: httpx.AsyncClient, group_id: str, person: Person) -> None:
    operation = {"op": "add", "path": "members", "value": [{"value": person.scim_id}]}
    response = await client.patch(f"/Groups/{group_id}", json=patch_body(operation))
    assert response.status_code == 200, response.text


async def _remove(client: httpx.AsyncClient, group_id: str, person: Person) -> None:
    operation = {"op": "remove", "path": f'members[value eq "{person.scim_id}"]'}
    response = await client.patch(f"/Groups/{group_id}", json=patch_body(operation))
    assert response.status_code == 200, response.text


async def _groups(tenant: TenantFixture, account_id: UUID) -> list[str] | None:
    """The groups on the learner record of `account_id` in `tenant` (None: no record)."""
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT groups FROM learner WHERE tenant_id = $1 AND user_id = $2",
            tenant.id,
            account_id,
        )
    return list(rows[0]["groups"]) if rows else None


async def _a_learner(tenant: TenantFixture, person: Person, groups: str) -> None:
    """`person` takes part in a campaign of `tenant` (their learner record made), then the
    organization imports them with `groups` (`|`-separated), as a CSV file does."""
    await start_or_resume(person.ctx(tenant), (await make_campaign(tenant)).id)
    csv = f"name,email,groups\nAda Lovelace,{person.email},{groups}\n".encode()
    result = await import_learners(tenant.owner_ctx, csv)
    assert not result.problems, result.problems


async def test_joining_a_mapped_group_files_the_learner_and_leaving_it_unfiles_them(
    client: httpx.AsyncClient, directory: Directory, tenant_b: TenantFixture
) -> None:
    tenant, ctx = directory.tenant, directory.tenant.owner_ctx
    ada = await _provision(client, directory)
    await _a_learner(tenant, ada, "Accounting")
    await _a_learner(tenant_b, ada, "Paris|Night shift")  # the same person, elsewhere
    await scim.set_group_mapping(ctx, "Paris office", "member", "Paris")
    group = await _group(client, "Paris office")
    assert await _groups(tenant, ada.account_id) == ["Accounting"]

    await _add(client, group, ada)
    assert await _groups(tenant, ada.account_id) == ["Accounting", "Paris"]

    await _remove(client, group, ada)
    assert await _groups(tenant, ada.account_id) == ["Accounting"]  # the import's group kept
    assert await _groups(tenant_b, ada.account_id) == ["Paris", "Night shift"]

    await _add(client, group, ada)
    assert (await client.delete(f"/Groups/{group}")).status_code == 204
    assert await _groups(tenant, ada.account_id) == ["Accounting"]
    assert await _groups(tenant_b, ada.account_id) == ["Paris", "Night shift"]


async def test_a_mapping_change_files_the_groups_members_again(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    tenant, ctx = directory.tenant, directory.tenant.owner_ctx
    ada, bob = await _provision(client, directory), await _provision(client, directory)
    await _a_learner(tenant, ada, "Accounting")
    await _a_learner(tenant, bob, "Paris")  # imported there, and in no directory group
    await _group(client, "Paris office", ada)
    assert await _groups(tenant, ada.account_id) == ["Accounting"]  # no mapping yet

    await scim.set_group_mapping(ctx, "Paris office", "member", "Paris")
    assert await _groups(tenant, ada.account_id) == ["Accounting", "Paris"]
    assert await _groups(tenant, bob.account_id) == []  # Paris is the directory's now

    await scim.set_group_mapping(ctx, "paris OFFICE", "member", "Lyon")
    assert await _groups(tenant, ada.account_id) == ["Accounting", "Lyon"]

    mapping = (await scim.list_group_mappings(ctx))[0]
    await scim.remove_group_mapping(ctx, mapping.id)
    assert await _groups(tenant, ada.account_id) == ["Accounting"]


async def test_deactivated_or_deleted_people_leave_their_mapped_groups(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    tenant = directory.tenant
    ada = await _provision(client, directory)
    await _a_learner(tenant, ada, "Accounting")
    await scim.set_group_mapping(tenant.owner_ctx, "Paris office", "member", "Paris")
    await _group(client, "Paris office", ada)
    assert await _groups(tenant, ada.account_id) == ["Accounting", "Paris"]

    active = {"op": "replace", "path": "active", "value": "False"}
    response = await client.patch(f"/Users/{ada.scim_id}", json=patch_body(active))
    assert response.status_code == 200, response.text
    assert await _groups(tenant, ada.account_id) == ["Accounting"]

    active["value"] = "True"
    await client.patch(f"/Users/{ada.scim_id}", json=patch_body(active))
    assert await _groups(tenant, ada.account_id) == ["Accounting", "Paris"]

    assert (await client.delete(f"/Users/{ada.scim_id}")).status_code == 204
    assert await _groups(tenant, ada.account_id) == ["Accounting"]


async def test_a_person_provisioned_before_their_first_participation_is_filed_at_its_start(
    client: httpx.AsyncClient, directory: Directory, tenant_b: TenantFixture
) -> None:
    tenant = directory.tenant
    await scim.set_group_mapping(tenant.owner_ctx, "Paris office", "member", "Paris")
    await scim.set_group_mapping(tenant.owner_ctx, "Managers", "admin", "")
    ada = await _provision(client, directory)
    await _group(client, "Paris office", ada)
    await _group(client, "Managers", ada)
    campaign = await make_campaign(tenant)
    assert await _groups(tenant, ada.account_id) is None

    await start_or_resume(ada.ctx(tenant), campaign.id)
    assert await _groups(tenant, ada.account_id) == ["Paris"]
    # Elsewhere, the same person is in no directory: filed under nothing.
    await start_or_resume(ada.ctx(tenant_b), (await make_campaign(tenant_b)).id)
    assert await _groups(tenant_b, ada.account_id) == []
    # Someone the directory does not know gets no group either.
    paula = await make_participant(tenant)
    await start_or_resume(paula.ctx, campaign.id)
    assert await _groups(tenant, paula.user_id) == []


async def test_an_imported_learner_claimed_at_the_start_is_filed_too(
    client: httpx.AsyncClient, directory: Directory
) -> None:
    tenant = directory.tenant
    await scim.set_group_mapping(tenant.owner_ctx, "Lyon office", "member", "Lyon")
    await scim.set_group_mapping(tenant.owner_ctx, "Paris office", "member", "Paris")
    ada = await _provision(client, directory)
    await _group(client, "Lyon office", ada)
    csv = f"name,email,groups\nAda,{ada.email},Accounting|Paris\n".encode()
    assert not (await import_learners(tenant.owner_ctx, csv)).problems
    async with global_transaction():  # her provider vouched for her address
        await database.execute(
            "UPDATE user_account SET email_verified = true WHERE id = $1", ada.account_id
        )

    await start_or_resume(ada.ctx(tenant), (await make_campaign(tenant)).id)
    # Paris is a mapping's, and she is not in its group; Accounting is the import's.
    assert await _groups(tenant, ada.account_id) == ["Accounting", "Lyon"]


def _kinds(sent: list[str]) -> list[str]:
    return [statement.split()[0].upper() for statement in sent]


async def _counted_start(ctx: TenantContext, campaign_id: UUID, sent: list[str]) -> list[str]:
    sent.clear()
    started = await start_or_resume(ctx, campaign_id)
    await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
    assert started.status == "started"
    return _kinds(sent)


async def test_the_start_files_the_learner_at_no_statement_of_its_own(
    client: httpx.AsyncClient,
    directory: Directory,
    tenant_b: TenantFixture,
    statements: list[str],
) -> None:
    tenant = directory.tenant
    await scim.set_group_mapping(tenant.owner_ctx, "Paris office", "member", "Paris")
    ada = await _provision(client, directory)
    await _group(client, "Paris office", ada)
    campaign, unmapped = await make_campaign(tenant), await make_campaign(tenant_b)
    for owner, warm_up in ((tenant, campaign), (tenant_b, unmapped)):  # the caches filled
        await start_or_resume((await make_participant(owner, "Warm Up")).ctx, warm_up.id)

    filed = await _counted_start(ada.ctx(tenant), campaign.id, statements)
    plain = await _counted_start((await make_participant(tenant_b)).ctx, unmapped.id, statements)

    assert await _groups(tenant, ada.account_id) == ["Paris"]
    # The same statements as a start in a tenant without mappings (which
    # tests/billing/test_seats.py pins): the learner upsert files her.
    assert filed == plain
    assert "WITH" in filed


def test_the_application_registers_campaigns_filing_with_sso() -> None:
    """In a fresh process, as `jalon serve` starts: importing the application is enough."""
    check = (
        "import api.app, sso.scim; "
        "names = [f.__module__ + '.' + f.__name__ for f in sso.scim.learner_group_listeners()]; "
        "assert names == ['campaigns.directory_groups.file_learners'], names"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
