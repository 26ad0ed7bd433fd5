"""Listings of campaigns: the campaigns with their funnel, a campaign's participations and
shared results, and its progress over time. Pages are complete and stable, filters and search
work, unshared results never show, another tenant's ids are unknown, and a page costs a fixed
number of statements whatever its size."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import pytest

from campaigns import campaign_listing
from campaigns.codes import new_code
from campaigns.paging import MAX_LIMIT, Page
from campaigns.participation.results import share
from campaigns.participation.start import start_or_resume
from core import database
from core.errors import Forbidden, Invalid, NotFound
from engine import Bank
from tenants.context import Actor, TenantContext
from tenants.permissions import Permission
from tests.campaigns.conftest import Simulee, make_campaign, make_participant, take_test
from tests.campaigns.listing_helpers import STATUSES, T0, every_page, seed
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.seeding import insert_rows

# --- participations ----------------------------------------------------------------------


async def test_participations_come_newest_first_complete_and_without_repeats(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    created = await seed(tenant_a, campaign.id, 23)
    other = await make_campaign(tenant_b)
    await seed(tenant_b, other.id, 5, prefix="Outsider")
    ctx = tenant_a.owner_ctx

    async def page(cursor: str | None, limit: int) -> Page[campaign_listing.ParticipationRow]:
        return await campaign_listing.list_participations(ctx, campaign.id, cursor, limit)

    pages = await every_page(page, 5)
    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 3]
    seen = [item.id for p in pages for item in p.items]
    assert seen == list(reversed(created))
    assert pages[0].previous_cursor is None
    assert all(p.previous_cursor for p in pages[1:])
    assert pages[-1].next_cursor is None
    # Going back from any page gives the page before it, exactly.
    for before, current in pairwise(pages):
        assert current.previous_cursor is not None
        back = await page(current.previous_cursor, 5)
        assert [i.id for i in back.items] == [i.id for i in before.items]
        assert back.next_cursor == before.next_cursor
        assert (back.previous_cursor is None) == (before is pages[0])
    assert not [i for p in pages for i in p.items if i.name.startswith("Outsider")]


async def test_rows_with_the_same_time_are_ordered_by_id_across_pages(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    created = await seed(tenant_a, campaign.id, 11, same_time=True)
    pages = await every_page(
        lambda cursor, limit: campaign_listing.list_participations(
            tenant_a.member_ctx, campaign.id, cursor, limit
        ),
        4,
    )
    seen = [item.id for p in pages for item in p.items]
    assert seen == sorted(created, reverse=True)


async def test_new_participants_while_paging_neither_repeat_nor_shift_anyone(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    created = await seed(tenant_a, campaign.id, 9)
    ctx = tenant_a.owner_ctx
    first = await campaign_listing.list_participations(ctx, campaign.id, None, 4)
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE participation SET created_at = now() WHERE tenant_id = $1 AND id = $2",
            tenant_a.id,
            created[0],
        )  # the oldest one moves to the top: it must not be seen twice
    second = await campaign_listing.list_participations(ctx, campaign.id, first.next_cursor, 4)
    assert second.next_cursor is None
    seen = [i.id for p in (first, second) for i in p.items]
    assert seen == list(reversed(created[1:]))


async def test_participations_are_filtered_by_status_search_and_group(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 12, groups=("Sales", "Support"))
    ctx = tenant_a.owner_ctx
    for status in STATUSES:
        page = await campaign_listing.list_participations(
            ctx, campaign.id, None, 100, status=status
        )
        assert len(page.items) == 4
        assert {item.status for item in page.items} == {status}
    sales = await campaign_listing.list_participations(ctx, campaign.id, None, 100, group="Sales")
    assert len(sales.items) == 6
    assert all(item.groups == ["Sales"] for item in sales.items)
    by_name = await campaign_listing.list_participations(
        ctx, campaign.id, None, 100, search="learner 01"
    )
    assert sorted(item.name for item in by_name.items) == [f"Learner {i:03d}" for i in (10, 11)]
    by_email = await campaign_listing.list_participations(
        ctx, campaign.id, None, 100, search="LEARNER7@EXAMPLE"
    )
    assert [item.name for item in by_email.items] == ["Learner 007"]
    by_external = await campaign_listing.list_participations(
        ctx, campaign.id, None, 100, search="ext-004"
    )
    assert [item.external_id for item in by_external.items] == ["EXT-004"]
    combined = await campaign_listing.list_participations(
        ctx, campaign.id, None, 100, status="shared", group="Support", search="Learner"
    )
    assert {item.name for item in combined.items} == {"Learner 005", "Learner 011"}
    # Wildcards typed in the search box are literal characters.
    for literal in ("%", "_", "\\"):
        found = await campaign_listing.list_participations(
            ctx, campaign.id, None, 100, search=literal
        )
        assert found.items == []
    nobody = await campaign_listing.list_participations(ctx, campaign.id, None, 100, group="Nobody")
    assert nobody == Page([], None, None)


async def test_bad_filters_are_explained(tenant_a: TenantFixture, tenant_b: TenantFixture) -> None:
    campaign = await make_campaign(tenant_a)
    ctx = tenant_a.owner_ctx
    with pytest.raises(Invalid) as caught:
        await campaign_listing.list_participations(ctx, campaign.id, status="finished")
    assert (caught.value.field, caught.value.message) == (
        "status",
        "Choose one of the offered statuses.",
    )
    with pytest.raises(Invalid) as caught:
        await campaign_listing.list_participations(ctx, campaign.id, search="a\x00b")
    assert caught.value.field == "search"
    with pytest.raises(Invalid) as caught:
        await campaign_listing.list_participations(ctx, campaign.id, search="x" * 201)
    assert caught.value.field == "search"
    with pytest.raises(Invalid):
        await campaign_listing.list_campaigns_page(ctx, status="deleted")


async def test_unshared_participations_never_carry_a_result(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 9)
    page = await campaign_listing.list_participations(tenant_a.owner_ctx, campaign.id, None, 100)
    for item in page.items:
        if item.status == "shared":
            assert item.level is not None
            assert item.score is not None
        else:
            assert (item.level, item.score) == (None, None)
    results = await campaign_listing.list_shared_results(tenant_a.owner_ctx, campaign.id, None, 100)
    assert len(results.items) == 3
    shared_ids = {i.id for i in page.items if i.status == "shared"}
    assert {r.participation_id for r in results.items} == shared_ids


async def test_shared_results_carry_each_competence_level_most_recent_share_first(
    tenant_a: TenantFixture, tenant_b: TenantFixture, test_bank: Bank
) -> None:
    campaign = await make_campaign(tenant_a)
    person = await make_participant(tenant_a, "Real Sharer")
    taken = await start_or_resume(person.ctx, campaign.id, external_id=None)
    await take_test(person.ctx, taken.id, Simulee(test_bank, 0.5))
    view = await share(person.ctx, taken.id, consent=True)
    keeper = await make_participant(tenant_a, "Real Keeper")
    kept = await start_or_resume(keeper.ctx, campaign.id)
    await take_test(keeper.ctx, kept.id, Simulee(test_bank, 1.0))
    await seed(tenant_a, campaign.id, 6)
    page = await campaign_listing.list_shared_results(tenant_a.member_ctx, campaign.id, None, 100)
    assert page.items[0].name == "Real Sharer"  # shared now; the seeds in 2021
    assert "Real Keeper" not in [r.name for r in page.items]
    mine = page.items[0]
    assert view.result is not None
    assert mine.level == view.result.level
    assert mine.score == view.result.score
    assert {c.code: c.level for c in mine.competences} == {
        code: comp["level"] for code, comp in view.result.competences.items()
    }
    shared_at = [r.shared_at for r in page.items]
    assert shared_at == sorted(shared_at, reverse=True)
    found = await campaign_listing.list_shared_results(
        tenant_a.owner_ctx, campaign.id, None, 100, search="real"
    )
    assert [r.name for r in found.items] == ["Real Sharer"]


async def test_shared_results_page_through_completely(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    created = await seed(tenant_a, campaign.id, 30)
    pages = await every_page(
        lambda cursor, limit: campaign_listing.list_shared_results(
            tenant_a.owner_ctx, campaign.id, cursor, limit
        ),
        3,
    )
    seen = [r.participation_id for p in pages for r in p.items]
    assert seen == [pid for i, pid in reversed(list(enumerate(created))) if i % 3 == 2]


# --- campaigns ---------------------------------------------------------------------------


async def test_campaigns_page_with_their_funnel(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    made = [await make_campaign(tenant_a, name=f"Campaign {i}") for i in range(5)]
    await seed(tenant_a, made[0].id, 7)
    await make_campaign(tenant_b, name="Theirs")
    ctx = tenant_a.member_ctx
    pages = await every_page(lambda c, n: campaign_listing.list_campaigns_page(ctx, c, n), 2)
    seen = [item for p in pages for item in p.items]
    assert [item.id for item in seen] == [c.id for c in reversed(made)]
    first = seen[-1]
    assert (first.started, first.completed, first.shared) == (7, 4, 2)
    assert first.competences == list(made[0].profile.competences)
    assert first.code == made[0].code
    one = await campaign_listing.campaign_summary(ctx, made[0].id)
    assert one == first
    drafts = await campaign_listing.list_campaigns_page(ctx, status="draft")
    assert drafts.items == []


async def test_all_campaigns_lists_what_the_pages_list_in_their_order(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    newest = await make_campaign(tenant_a, name="Newest")
    await seed(tenant_a, newest.id, 4)
    await make_campaign(tenant_b, name="Theirs")
    await _copy_campaign(tenant_a, newest.id, MAX_LIMIT + 5)
    ctx = tenant_a.member_ctx
    every = await campaign_listing.all_campaigns(ctx)
    pages = await every_page(lambda c, n: campaign_listing.list_campaigns_page(ctx, c, n), 50)
    assert len(every) == MAX_LIMIT + 6
    assert every == [item for page in pages for item in page.items]
    assert every[0] == await campaign_listing.campaign_summary(ctx, newest.id)
    assert (every[0].started, every[0].completed, every[0].shared) == (4, 2, 1)
    assert [c.name for c in every[1:4]] == ["Copy 1", "Copy 2", "Copy 3"]


async def test_all_campaigns_cost_the_same_statements_whatever_their_number(
    tenant_a: TenantFixture, statements: list[str]
) -> None:
    first = await make_campaign(tenant_a, name="First")
    await seed(tenant_a, first.id, 3)
    counts = []
    for copies in (0, 2 * MAX_LIMIT):
        await _copy_campaign(tenant_a, first.id, copies)
        statements.clear()
        listed = await campaign_listing.all_campaigns(tenant_a.owner_ctx)
        await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
        assert len(listed) == 1 + copies
        counts.append(len(statements))
    # BEGIN with the two SET LOCAL, every campaign with its funnel, COMMIT
    assert counts == [3, 3]


async def _copy_campaign(tenant: TenantFixture, campaign_id: UUID, copies: int) -> None:
    """`copies` copies of the campaign, named "Copy n", n minutes older than it."""
    columns = ("type", "profile_snapshot", "bank_version", "locales", "status", "created_at")
    async with as_tenant(tenant.id):
        [campaign] = await database.fetch(
            f"""SELECT {", ".join(columns)}, updated_at FROM campaign
                WHERE tenant_id = $1 AND id = $2""",  # noqa: S608 - constant columns
            tenant.id,
            campaign_id,
        )
        await insert_rows(
            "campaign",
            ("tenant_id", "id", "name", "code", *columns, "updated_at"),
            [
                (
                    tenant.id,
                    uuid4(),
                    f"Copy {n}",
                    new_code(),
                    *(campaign[column] for column in columns[:-1]),
                    campaign["created_at"] - timedelta(minutes=n),
                    campaign["updated_at"],
                )
                for n in range(1, copies + 1)
            ],
        )


# --- isolation and permissions -----------------------------------------------------------


async def test_another_tenants_campaign_is_unknown(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    theirs = await make_campaign(tenant_b)
    await seed(tenant_b, theirs.id, 3)
    ctx = tenant_a.owner_ctx
    for read in (
        campaign_listing.list_participations(ctx, theirs.id),
        campaign_listing.list_shared_results(ctx, theirs.id),
        campaign_listing.campaign_summary(ctx, theirs.id),
        campaign_listing.campaign_progress(ctx, theirs.id),
        campaign_listing.campaign_groups(ctx, theirs.id),
        campaign_listing.list_participations(ctx, uuid4()),
        campaign_listing.list_participations(ctx, "nope"),
    ):
        with pytest.raises(NotFound):
            await read


def _token_ctx(tenant: TenantFixture, *scopes: Permission) -> TenantContext:
    return TenantContext(tenant.owner_ctx.tenant, Actor(kind="api_token"), frozenset(scopes))


async def test_each_listing_needs_its_permission(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 3)
    participant = await make_participant(tenant_a)
    campaigns_only = _token_ctx(tenant_a, Permission.CAMPAIGNS_READ)
    learners = _token_ctx(tenant_a, Permission.CAMPAIGNS_READ, Permission.LEARNERS_READ)
    results = _token_ctx(tenant_a, Permission.CAMPAIGNS_READ, Permission.RESULTS_READ)
    assert len((await campaign_listing.list_campaigns_page(campaigns_only)).items) == 1
    assert len((await campaign_listing.list_participations(learners, campaign.id)).items) == 3
    assert len((await campaign_listing.list_shared_results(results, campaign.id)).items) == 1
    refused = [
        campaign_listing.list_campaigns_page(participant.ctx),
        campaign_listing.list_participations(campaigns_only, campaign.id),
        campaign_listing.list_participations(results, campaign.id),
        campaign_listing.list_shared_results(learners, campaign.id),
        campaign_listing.campaign_progress(participant.ctx, campaign.id),
    ]
    for read in refused:
        with pytest.raises(Forbidden):
            await read


# --- progress over time ------------------------------------------------------------------


async def test_progress_cumulates_learners_day_by_day_and_ends_at_the_funnel(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 60)  # an hour apart: 2.5 days of starts
    days = await campaign_listing.campaign_progress(tenant_a.owner_ctx, campaign.id)
    # Europe/Paris (the fixtures' time zone): 09:00 UTC is 10:00, so 14 starts on day one.
    assert days[0].day.isoformat() == "2021-03-02"
    assert days[0].new_started == 14
    assert [d.day for d in days] == [
        days[0].day + timedelta(days=i) for i in range(len(days))
    ]  # no gaps
    last = days[-1]
    assert (last.started, last.completed, last.shared) == (60, 40, 20)
    for before, after in pairwise(days):
        assert after.started == before.started + after.new_started
        assert after.completed >= before.completed
    assert (
        await campaign_listing.campaign_progress(
            tenant_a.owner_ctx, (await make_campaign(tenant_a)).id
        )
        == []
    )


async def test_retakes_count_a_learner_once_in_the_progress(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    [first] = await seed(tenant_a, campaign.id, 1)
    async with as_tenant(tenant_a.id):
        rows = await database.fetch("SELECT learner_id FROM participation WHERE id = $1", first)
        await database.execute(
            """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt,
                   status, created_at) VALUES ($1, $2, $3, $4, 2, 'started', $5)""",
            tenant_a.id,
            uuid4(),
            campaign.id,
            rows[0]["learner_id"],
            T0 + timedelta(days=3),
        )
    days = await campaign_listing.campaign_progress(tenant_a.owner_ctx, campaign.id)
    assert days[-1].started == 1
    assert sum(d.new_started for d in days) == 1


# --- query budget ------------------------------------------------------------------------


async def test_a_page_costs_the_same_statements_whatever_its_size(
    tenant_a: TenantFixture, tenant_b: TenantFixture, statements: list[str]
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 60, groups=("A", "B"))
    ctx = tenant_a.owner_ctx
    reads: dict[str, Callable[[int], Awaitable[Page[Any]]]] = {
        "participations": lambda n: campaign_listing.list_participations(ctx, campaign.id, None, n),
        "results": lambda n: campaign_listing.list_shared_results(ctx, campaign.id, None, n),
        "campaigns": lambda n: campaign_listing.list_campaigns_page(ctx, None, n),
        "filtered": lambda n: campaign_listing.list_participations(
            ctx, campaign.id, None, n, status="shared", group="A", search="learner"
        ),
    }
    for name, read in reads.items():
        counts = []
        for size in (1, 10, 60):
            statements.clear()
            page = await read(size)
            await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
            assert page.items
            counts.append(len(statements))
        # BEGIN with the two SET LOCAL, (the campaign), the page, COMMIT
        expected = 3 if name == "campaigns" else 4
        assert counts == [expected] * 3, name
    statements.clear()
    await campaign_listing.campaign_progress(ctx, campaign.id)
    await asyncio.sleep(0)
    assert len(statements) == 4
