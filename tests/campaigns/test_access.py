"""Who may act on campaigns and learners in the console (`campaigns.access`): members holding
the permission, never a context without a role, whatever it holds."""

from __future__ import annotations

import pytest

from campaigns.access import require_member
from core.errors import Forbidden
from tenants.context import Actor, ActorKind, TenantContext
from tenants.permissions import Permission
from tests.conftest import TenantFixture


def test_a_member_needs_the_permission(tenant_a: TenantFixture) -> None:
    require_member(tenant_a.member_ctx, Permission.CAMPAIGNS_READ)
    require_member(tenant_a.owner_ctx, Permission.LEARNERS_IMPORT)
    with pytest.raises(Forbidden):
        require_member(tenant_a.member_ctx, Permission.LEARNERS_IMPORT)


@pytest.mark.parametrize("kind", ["api_token", "user"])
def test_a_context_without_a_role_is_refused_whatever_it_holds(
    tenant_a: TenantFixture, kind: ActorKind
) -> None:
    # An API token holds scopes, a participant nothing; neither is a member.
    holder = TenantContext(
        tenant_a.owner_ctx.tenant, Actor(kind=kind), frozenset({Permission.CAMPAIGNS_READ})
    )
    assert holder.role is None
    with pytest.raises(Forbidden):
        require_member(holder, Permission.CAMPAIGNS_READ)
