"""Learners in the console: the groups offered as a filter and the count, each kept to its
organization, and who may read and import them."""

from __future__ import annotations

import pytest

from campaigns.learner_import import import_learners
from campaigns.learners import (
    count_learners,
    learner_groups,
    require_learners_importer,
    require_learners_reader,
)
from core.errors import Forbidden
from tenants.context import Actor, TenantContext
from tenants.permissions import Permission
from tests.conftest import TenantFixture


async def test_groups_and_count_are_the_organizations_own(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    await import_learners(
        tenant_a.owner_ctx,
        b"name,email,groups\nAnne,a@example.org,Lyon|Accounting\nBen,b@example.org,Lyon\n",
    )
    await import_learners(tenant_b.owner_ctx, b"name,email,groups\nCarl,c@example.org,Paris\n")
    assert await learner_groups(tenant_a.member_ctx) == ["Accounting", "Lyon"]
    assert await count_learners(tenant_a.member_ctx) == 2
    assert await count_learners(tenant_b.member_ctx) == 1


def test_members_read_owners_import_and_api_tokens_do_neither(tenant_a: TenantFixture) -> None:
    require_learners_reader(tenant_a.member_ctx)
    require_learners_importer(tenant_a.owner_ctx)
    with pytest.raises(Forbidden):
        require_learners_importer(tenant_a.member_ctx)
    token = TenantContext(
        tenant_a.owner_ctx.tenant,
        Actor(kind="api_token"),
        frozenset({Permission.LEARNERS_READ, Permission.LEARNERS_IMPORT}),
    )
    for require in (require_learners_reader, require_learners_importer):
        with pytest.raises(Forbidden):
            require(token)
