"""Invitations as the services return them: one typed object, listed or read alone, for the
console and the JSON API alike (the pages and the link's life are tests/api/test_invitations.py)."""

from __future__ import annotations

import pytest

from core.errors import NotFound
from core.settings import Settings
from tenants import invitations
from tenants.invitations import Invitation
from tests.conftest import TenantFixture


async def test_invitations_are_listed_and_read_as_the_same_typed_object(
    tenant_a: TenantFixture, tenant_b: TenantFixture, settings: Settings
) -> None:
    invitation_id = await invitations.invite(
        tenant_a.owner_ctx, "typed-invitee@example.org", "admin", settings
    )
    listed = await invitations.list_invitations(tenant_a.owner_ctx)
    assert [i.id for i in listed] == [invitation_id]
    one = await invitations.get_invitation(tenant_a.owner_ctx, invitation_id)
    assert isinstance(one, Invitation)
    assert one == listed[0]
    assert (one.email, one.role, one.status, one.expired, one.send_count) == (
        "typed-invitee@example.org",
        "admin",
        "pending",
        False,
        1,
    )
    with pytest.raises(NotFound):
        await invitations.get_invitation(tenant_b.owner_ctx, invitation_id)
