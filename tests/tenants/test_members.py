"""Members as the services return them: typed, one listing for every channel (the console
asks for everyone by role, the JSON API pages by joining order)."""

from __future__ import annotations

import pytest

from core.errors import Invalid, NotFound
from tenants import members
from tenants.members import Member, MemberOrder
from tests.conftest import TenantFixture, make_user


async def _walk(fixture: TenantFixture, limit: int) -> list[Member]:
    """Every member in joining order, read `limit` at a time by following the cursors."""
    seen: list[Member] = []
    cursor = None
    while True:
        page = await members.list_members(fixture.owner_ctx, cursor, limit)
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor


async def test_role_order_puts_owners_then_admins_then_members_each_by_name(
    tenant_a: TenantFixture,
) -> None:
    # Names that sort against joining order.
    for name, role in [("Zoe Admin", "admin"), ("Abel Admin", "admin"), ("Aaron X", "member")]:
        await members.add_member(tenant_a.owner_ctx, await make_user(name), role)
    everyone = await members.list_members(tenant_a.owner_ctx, limit=None, order=MemberOrder.ROLE)
    assert everyone.next_cursor is None
    assert [(m.role, m.name) for m in everyone.items] == [
        ("owner", "Alpha Owner"),
        ("admin", "Abel Admin"),
        ("admin", "Zoe Admin"),
        ("member", "Aaron X"),
        ("member", "Alpha Member"),
    ]


async def test_joining_order_pages_everyone_once(tenant_a: TenantFixture) -> None:
    newcomer = await make_user("Newcomer Person")
    await members.add_member(tenant_a.owner_ctx, newcomer, "member")
    walked = await _walk(tenant_a, 1)
    assert [m.user_id for m in walked] == [tenant_a.owner.id, tenant_a.member.id, newcomer.id]
    assert all(isinstance(m, Member) for m in walked)


async def test_role_order_is_only_the_whole_list(tenant_a: TenantFixture) -> None:
    """No page of the role order exists: a joining-order cursor or a page size is refused as a
    forged cursor would be."""
    joined = await members.list_members(tenant_a.owner_ctx, limit=1)
    assert joined.next_cursor is not None
    with pytest.raises(Invalid) as refused:
        await members.list_members(
            tenant_a.owner_ctx, joined.next_cursor, None, order=MemberOrder.ROLE
        )
    assert refused.value.field == "cursor"
    with pytest.raises(Invalid) as refused:
        await members.list_members(tenant_a.owner_ctx, limit=1, order=MemberOrder.ROLE)
    assert (refused.value.field, refused.value.message) == (
        "cursor",
        "This page link is not valid.",
    )


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
