"""Listings of the organization's learners: newest first with cursors both ways, or by
name forward only with cursors of their own; search and group filters; one learner with every
participation, levels only of shared ones. Another tenant's learners are unknown, each read
needs its permission, and a page costs a fixed number of statements whatever its size."""

from __future__ import annotations

import asyncio
import base64
import json
from uuid import uuid4

import pytest

from campaigns import learner_listing
from campaigns.learner_import import import_learners
from campaigns.paging import Page
from campaigns.participation.results import share
from campaigns.participation.start import start_or_resume
from core.errors import Forbidden, Invalid, NotFound
from engine import Bank
from tenants.context import Actor, TenantContext
from tenants.permissions import Permission
from tests.campaigns.conftest import Simulee, make_campaign, make_participant, take_test
from tests.campaigns.listing_helpers import every_page, seed
from tests.conftest import TenantFixture


async def test_learners_page_search_and_group(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 10, groups=("North", "South"))
    other = await make_campaign(tenant_b)
    await seed(tenant_b, other.id, 4, prefix="Stranger")
    ctx = tenant_a.owner_ctx
    pages = await every_page(lambda c, n: learner_listing.list_learners(ctx, c, n), 3)
    names = [item.name for p in pages for item in p.items]
    assert names == [f"Learner {i:03d}" for i in reversed(range(10))]
    assert all(item.participations == 1 for p in pages for item in p.items)
    north = await learner_listing.list_learners(ctx, None, 100, group="North")
    assert len(north.items) == 5
    found = await learner_listing.list_learners(ctx, None, 100, search="ext-00")
    assert len(found.items) == 10
    found = await learner_listing.list_learners(ctx, None, 100, search="Stranger")
    assert found.items == []


async def test_learners_in_name_order_page_forward_with_their_own_cursors(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    rows = "".join(
        f"{'learner' if i % 2 else 'Learner'} {i:02},l{i}@example.org,EXT-{i},"
        f"{'North' if i < 5 else 'South'}\n"
        for i in reversed(range(12))
    )
    await import_learners(tenant_a.owner_ctx, f"name,email,external_id,groups\n{rows}".encode())
    await import_learners(tenant_b.owner_ctx, b"name,email\nLearner 00,b@example.org\n")
    ctx = tenant_a.member_ctx

    async def by_name(cursor: str | None, limit: int) -> Page[learner_listing.LearnerRow]:
        return await learner_listing.list_learners(ctx, cursor, limit, order="name")

    pages = await every_page(by_name, 5)
    assert [[item.name.lower() for item in p.items] for p in pages] == [
        [f"learner {i:02}" for i in range(0, 5)],
        [f"learner {i:02}" for i in range(5, 10)],
        ["learner 10", "learner 11"],
    ]
    assert all(p.previous_cursor is None for p in pages)
    assert all(item.user_id is None for p in pages for item in p.items)
    found = await learner_listing.list_learners(ctx, search="L3@EXAMPLE", order="name")
    assert [item.email for item in found.items] == ["l3@example.org"]
    assert len((await learner_listing.list_learners(ctx, search="ext-1", order="name")).items) == 3
    assert (await learner_listing.list_learners(ctx, search="%", order="name")).items == []
    assert len((await learner_listing.list_learners(ctx, group="North", order="name")).items) == 5


async def test_a_learners_cursor_from_the_other_order_or_forged_is_refused(
    tenant_a: TenantFixture,
) -> None:
    rows = "".join(f"P{i},p{i}@example.org\n" for i in range(3))
    await import_learners(tenant_a.owner_ctx, f"name,email\n{rows}".encode())
    ctx = tenant_a.owner_ctx
    newest = (await learner_listing.list_learners(ctx, None, 1)).next_cursor
    by_name = (await learner_listing.list_learners(ctx, None, 1, order="name")).next_cursor
    assert newest
    assert by_name
    forged = [
        "not-a-cursor",
        base64.urlsafe_b64encode(json.dumps(["a\x00", str(uuid4())]).encode()).decode(),
        base64.urlsafe_b64encode(f"{uuid4()}|{'x' * 201}".encode()).decode(),
    ]
    orders: tuple[learner_listing.LearnerOrder, ...] = ("name", "newest")
    cases: list[tuple[learner_listing.LearnerOrder, str]] = [("name", newest), ("newest", by_name)]
    cases += [(order, cursor) for order in orders for cursor in forged]
    for order, cursor in cases:
        with pytest.raises(Invalid) as caught:
            await learner_listing.list_learners(ctx, cursor, order=order)
        assert (caught.value.field, caught.value.message) == (
            "cursor",
            "This page link is not valid.",
        )
    with pytest.raises(Invalid) as caught:
        await learner_listing.list_learners(ctx, search="x" * 201, order="name")
    assert caught.value.field == "search"


async def test_a_learner_shows_every_participation_levels_only_when_shared(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    first = await make_campaign(tenant_a, name="First")
    second = await make_campaign(tenant_a, name="Second")
    person = await make_participant(tenant_a, "Two Campaigns")
    one = await start_or_resume(person.ctx, first.id)
    await take_test(person.ctx, one.id, Simulee(test_bank, 0.0))
    await share(person.ctx, one.id, consent=True)
    two = await start_or_resume(person.ctx, second.id)
    await take_test(person.ctx, two.id, Simulee(test_bank, 0.0))
    [row] = (await learner_listing.list_learners(tenant_a.owner_ctx, None, 10, search="Two")).items
    assert (row.participations, row.user_id) == (2, person.user_id)
    learner = await learner_listing.get_learner(tenant_a.owner_ctx, row.id)
    assert [(p.campaign_name, p.status) for p in learner.participations] == [
        ("Second", "completed"),
        ("First", "shared"),
    ]
    assert learner.participations[0].level is None
    assert learner.participations[1].level is not None
    assert learner.email == person.email
    with pytest.raises(NotFound):
        await learner_listing.get_learner(tenant_b.owner_ctx, row.id)
    with pytest.raises(NotFound):
        await learner_listing.get_learner(tenant_a.owner_ctx, "not-a-uuid")


def _token_ctx(tenant: TenantFixture, *scopes: Permission) -> TenantContext:
    return TenantContext(tenant.owner_ctx.tenant, Actor(kind="api_token"), frozenset(scopes))


async def test_learners_need_their_permission(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 3)
    campaigns_only = _token_ctx(tenant_a, Permission.CAMPAIGNS_READ)
    learners = _token_ctx(tenant_a, Permission.CAMPAIGNS_READ, Permission.LEARNERS_READ)
    results = _token_ctx(tenant_a, Permission.CAMPAIGNS_READ, Permission.RESULTS_READ)
    assert len((await learner_listing.list_learners(learners)).items) == 3
    for read in (
        learner_listing.list_learners(campaigns_only),
        learner_listing.get_learner(results, uuid4()),
    ):
        with pytest.raises(Forbidden):
            await read


async def test_a_page_of_learners_costs_the_same_statements_whatever_its_size(
    tenant_a: TenantFixture, tenant_b: TenantFixture, statements: list[str]
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 60, groups=("A", "B"))
    counts = []
    for size in (1, 10, 60):
        statements.clear()
        page = await learner_listing.list_learners(tenant_a.owner_ctx, None, size)
        await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
        assert page.items
        counts.append(len(statements))
    assert counts == [3, 3, 3]  # BEGIN with two SET LOCAL, the page, COMMIT
