"""Members and invitations as the services return them: typed, one listing for every channel
(the console asks for everyone by role, the JSON API pages by joining order)."""

from __future__ import annotations

import pytest

from core.errors import Invalid, NotFound
from core.settings import Settings
from tenants import members
from tenants.members import Invitation, Member, MemberOrder
from tests.conftest import TenantFixture, make_user


async def _walk(fixture: TenantFixture, order: MemberOrder, limit: int) -> list[Member]:
    """Every member, read `limit` at a time by following the cursors."""
    seen: list[Member] = []
    cursor = None
    while True:
        page = await members.list_members(fixture.owner_ctx, cursor, limit, order)
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor


async def test_role_order_puts_owners_then_admins_then_members_each_by_name(
    tenant_a: TenantFixture,
) -> None:
    # Names that sort against joining order, one with the cursor's separator in it.
    for name, role in [("Zoe Admin", "admin"), ("Abel | Admin", "admin"), ("Aaron X", "member")]:
        await members.add_member(tenant_a.owner_ctx, await make_user(name), role)
    everyone = await members.list_members(tenant_a.owner_ctx, limit=None, order=MemberOrder.ROLE)
    assert everyone.next_cursor is None
    assert [(m.role, m.name) for m in everyone.items] == [
        ("owner", "Alpha Owner"),
        ("admin", "Abel | Admin"),
        ("admin", "Zoe Admin"),
        ("member", "Aaron X"),
        ("member", "Alpha Member"),
    ]
    # Page by page, the same people in the same order, none repeated.
    assert await _walk(tenant_a, MemberOrder.ROLE, 2) == everyone.items
    assert await _walk(tenant_a, MemberOrder.ROLE, 1) == everyone.items


async def test_joining_order_pages_everyone_once(tenant_a: TenantFixture) -> None:
    newcomer = await make_user("Newcomer Person")
    await members.add_member(tenant_a.owner_ctx, newcomer, "member")
    walked = await _walk(tenant_a, MemberOrder.JOINED, 1)
    assert [m.user_id for m in walked] == [tenant_a.owner.id, tenant_a.member.id, newcomer.id]
    assert all(isinstance(m, Member) for m in walked)


async def test_a_cursor_of_one_order_is_refused_by_the_other(tenant_a: TenantFixture) -> None:
    joined = await members.list_members(tenant_a.owner_ctx, limit=1)
    by_role = await members.list_members(tenant_a.owner_ctx, limit=1, order=MemberOrder.ROLE)
    assert joined.next_cursor is not None
    assert by_role.next_cursor is not None
    with pytest.raises(Invalid) as refused:
        await members.list_members(
            tenant_a.owner_ctx, joined.next_cursor, 1, order=MemberOrder.ROLE
        )
    assert refused.value.field == "cursor"
    with pytest.raises(Invalid) as refused:
        await members.list_members(tenant_a.owner_ctx, by_role.next_cursor, 1)
    assert refused.value.field == "cursor"


@pytest.mark.parametrize("limit", [0, 201])
async def test_a_page_size_out_of_bounds_is_refused(tenant_a: TenantFixture, limit: int) -> None:
    with pytest.raises(Invalid) as refused:
        await members.list_members(tenant_a.owner_ctx, limit=limit)
    assert refused.value.field == "limit"


async def test_one_member_is_typed_and_another_tenants_is_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    page = await members.list_members(tenant_a.owner_ctx, limit=None)
    mine = page.items[0]
    assert await members.get_member(tenant_a.owner_ctx, mine.id) == mine
    with pytest.raises(NotFound):
        await members.get_member(tenant_b.owner_ctx, mine.id)


async def test_invitations_are_listed_and_read_as_the_same_typed_object(
    tenant_a: TenantFixture, tenant_b: TenantFixture, settings: Settings
) -> None:
    invitation_id = await members.invite(
        tenant_a.owner_ctx, "typed-invitee@example.org", "admin", settings
    )
    listed = await members.list_invitations(tenant_a.owner_ctx)
    assert [i.id for i in listed] == [invitation_id]
    one = await members.get_invitation(tenant_a.owner_ctx, invitation_id)
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
        await members.get_invitation(tenant_b.owner_ctx, invitation_id)
