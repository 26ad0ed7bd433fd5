"""Paged listings: campaigns, a campaign's participations and shared results, learners, and a
campaign's progress over time. Pages are complete and stable, filters and search work,
unshared results never show, another tenant's ids are unknown, and a page costs a fixed
number of statements whatever its size."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import pytest

from campaigns import listing
from campaigns.codes import new_code
from campaigns.learner_import import import_learners
from campaigns.listing import Page, decode_cursor, encode_cursor
from campaigns.participation.results import share
from campaigns.participation.start import start_or_resume
from core import database
from core.errors import Forbidden, Invalid, NotFound
from engine import Bank
from tenants.context import Actor, TenantContext
from tenants.permissions import Permission
from tests.campaigns.conftest import Simulee, make_campaign, make_participant, take_test
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.seeding import insert_rows

#: Seeded rows start here, long before anything the tests create through the service.
T0 = datetime(2021, 3, 2, 9, 0, tzinfo=UTC)
STATUSES = ("started", "completed", "shared")


async def seed(
    tenant: TenantFixture,
    campaign_id: UUID,
    count: int,
    *,
    prefix: str = "Learner",
    groups: tuple[str, ...] = (),
    same_time: bool = False,
) -> list[UUID]:
    """`count` learners, each with one participation: statuses cycle started, completed,
    shared; shared and completed ones have a result (levels by index). Rows are written
    directly (the test-taking path is tested elsewhere) an hour apart, or all at once."""
    ids = []
    async with as_tenant(tenant.id):
        for i in range(count):
            learner, participation = uuid4(), uuid4()
            status = STATUSES[i % 3]
            at = T0 if same_time else T0 + timedelta(hours=i)
            await database.execute(
                """INSERT INTO learner (tenant_id, id, name, email, external_id, groups,
                       created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                tenant.id,
                learner,
                f"{prefix} {i:03d}",
                f"{prefix.lower()}{i}@example.org",
                f"EXT-{i:03d}",
                [groups[i % len(groups)]] if groups else [],
                at,
            )
            await database.execute(
                """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt,
                       status, created_at, completed_at, shared_at)
                   VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8)""",
                tenant.id,
                participation,
                campaign_id,
                learner,
                status,
                at,
                None if status == "started" else at + timedelta(minutes=30),
                at + timedelta(days=1) if status == "shared" else None,
            )
            if status != "started":
                await database.execute(
                    """INSERT INTO result (tenant_id, id, participation_id, level, score,
                           competences) VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
                    tenant.id,
                    uuid4(),
                    participation,
                    i % 9,
                    10 * i,
                    json.dumps({"1.1": {"level": i % 9}, "1.2": {"level": (i + 1) % 9}}),
                )
            ids.append(participation)
    return ids


async def every_page(fetch_page: Any, limit: int) -> list[Page[Any]]:
    """Follow `next_cursor` from the first page to the last."""
    pages = [await fetch_page(None, limit)]
    while pages[-1].next_cursor:
        pages.append(await fetch_page(pages[-1].next_cursor, limit))
        assert len(pages) < 100
    return pages


# --- cursors -----------------------------------------------------------------------------


def test_a_cursor_round_trips_and_is_url_safe() -> None:
    ident = uuid4()
    text = encode_cursor("n", T0, ident)
    assert all(ch.isalnum() or ch in "-_" for ch in text)
    at = decode_cursor(text)
    assert at is not None
    assert (at.direction, at.stamp, at.ident) == ("n", T0, ident)
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "cursor",
    [
        "forged",
        "!!!!",
        encode_cursor("n", T0, uuid4())[:-3],
        base64.urlsafe_b64encode(f"x|{T0.isoformat()}|{uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"n|2021-01-01T00:00:00|{uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"n|{T0.isoformat()}|1234".encode()).decode(),
        base64.urlsafe_b64encode(b"n|yesterday|x").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        # at the edge of the calendar: cannot be converted to UTC
        base64.urlsafe_b64encode(f"n|0001-01-01T00:00:00+14:00|{uuid4()}".encode()).decode(),
    ],
)
def test_a_forged_cursor_is_refused_with_a_message(cursor: str) -> None:
    with pytest.raises(Invalid) as caught:
        decode_cursor(cursor)
    assert (caught.value.field, caught.value.message) == ("cursor", "This page link is not valid.")


@pytest.mark.parametrize("limit", [0, -1, 101, 10_000])
async def test_a_limit_out_of_bounds_is_refused(tenant_a: TenantFixture, limit: int) -> None:
    with pytest.raises(Invalid, match="Ask for between 1 and"):
        await listing.list_campaigns_page(tenant_a.owner_ctx, None, limit)
    with pytest.raises(Invalid, match="Ask for between 1 and"):
        await listing.list_learners(tenant_a.owner_ctx, None, limit)


# --- participations ----------------------------------------------------------------------


async def test_participations_come_newest_first_complete_and_without_repeats(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    created = await seed(tenant_a, campaign.id, 23)
    other = await make_campaign(tenant_b)
    await seed(tenant_b, other.id, 5, prefix="Outsider")
    ctx = tenant_a.owner_ctx

    async def page(cursor: str | None, limit: int) -> Page[listing.ParticipationRow]:
        return await listing.list_participations(ctx, campaign.id, cursor, limit)

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
        lambda cursor, limit: listing.list_participations(
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
    first = await listing.list_participations(ctx, campaign.id, None, 4)
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE participation SET created_at = now() WHERE tenant_id = $1 AND id = $2",
            tenant_a.id,
            created[0],
        )  # the oldest one moves to the top: it must not be seen twice
    second = await listing.list_participations(ctx, campaign.id, first.next_cursor, 4)
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
        page = await listing.list_participations(ctx, campaign.id, None, 100, status=status)
        assert len(page.items) == 4
        assert {item.status for item in page.items} == {status}
    sales = await listing.list_participations(ctx, campaign.id, None, 100, group="Sales")
    assert len(sales.items) == 6
    assert all(item.groups == ["Sales"] for item in sales.items)
    by_name = await listing.list_participations(ctx, campaign.id, None, 100, search="learner 01")
    assert sorted(item.name for item in by_name.items) == [f"Learner {i:03d}" for i in (10, 11)]
    by_email = await listing.list_participations(
        ctx, campaign.id, None, 100, search="LEARNER7@EXAMPLE"
    )
    assert [item.name for item in by_email.items] == ["Learner 007"]
    by_external = await listing.list_participations(ctx, campaign.id, None, 100, search="ext-004")
    assert [item.external_id for item in by_external.items] == ["EXT-004"]
    combined = await listing.list_participations(
        ctx, campaign.id, None, 100, status="shared", group="Support", search="Learner"
    )
    assert {item.name for item in combined.items} == {"Learner 005", "Learner 011"}
    # Wildcards typed in the search box are literal characters.
    for literal in ("%", "_", "\\"):
        found = await listing.list_participations(ctx, campaign.id, None, 100, search=literal)
        assert found.items == []
    nobody = await listing.list_participations(ctx, campaign.id, None, 100, group="Nobody")
    assert nobody == Page([], None, None)


async def test_bad_filters_are_explained(tenant_a: TenantFixture, tenant_b: TenantFixture) -> None:
    campaign = await make_campaign(tenant_a)
    ctx = tenant_a.owner_ctx
    with pytest.raises(Invalid) as caught:
        await listing.list_participations(ctx, campaign.id, status="finished")
    assert (caught.value.field, caught.value.message) == (
        "status",
        "Choose one of the offered statuses.",
    )
    with pytest.raises(Invalid) as caught:
        await listing.list_participations(ctx, campaign.id, search="a\x00b")
    assert caught.value.field == "search"
    with pytest.raises(Invalid) as caught:
        await listing.list_participations(ctx, campaign.id, search="x" * 201)
    assert caught.value.field == "search"
    with pytest.raises(Invalid):
        await listing.list_campaigns_page(ctx, status="deleted")


async def test_unshared_participations_never_carry_a_result(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 9)
    page = await listing.list_participations(tenant_a.owner_ctx, campaign.id, None, 100)
    for item in page.items:
        if item.status == "shared":
            assert item.level is not None
            assert item.score is not None
        else:
            assert (item.level, item.score) == (None, None)
    results = await listing.list_shared_results(tenant_a.owner_ctx, campaign.id, None, 100)
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
    page = await listing.list_shared_results(tenant_a.member_ctx, campaign.id, None, 100)
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
    found = await listing.list_shared_results(
        tenant_a.owner_ctx, campaign.id, None, 100, search="real"
    )
    assert [r.name for r in found.items] == ["Real Sharer"]


async def test_shared_results_page_through_completely(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    created = await seed(tenant_a, campaign.id, 30)
    pages = await every_page(
        lambda cursor, limit: listing.list_shared_results(
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
    pages = await every_page(lambda c, n: listing.list_campaigns_page(ctx, c, n), 2)
    seen = [item for p in pages for item in p.items]
    assert [item.id for item in seen] == [c.id for c in reversed(made)]
    first = seen[-1]
    assert (first.started, first.completed, first.shared) == (7, 4, 2)
    assert first.competences == list(made[0].profile.competences)
    assert first.code == made[0].code
    one = await listing.campaign_summary(ctx, made[0].id)
    assert one == first
    drafts = await listing.list_campaigns_page(ctx, status="draft")
    assert drafts.items == []


async def test_all_campaigns_lists_what_the_pages_list_in_their_order(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    newest = await make_campaign(tenant_a, name="Newest")
    await seed(tenant_a, newest.id, 4)
    await make_campaign(tenant_b, name="Theirs")
    await _copy_campaign(tenant_a, newest.id, listing.MAX_LIMIT + 5)
    ctx = tenant_a.member_ctx
    every = await listing.all_campaigns(ctx)
    pages = await every_page(lambda c, n: listing.list_campaigns_page(ctx, c, n), 50)
    assert len(every) == listing.MAX_LIMIT + 6
    assert every == [item for page in pages for item in page.items]
    assert every[0] == await listing.campaign_summary(ctx, newest.id)
    assert (every[0].started, every[0].completed, every[0].shared) == (4, 2, 1)
    assert [c.name for c in every[1:4]] == ["Copy 1", "Copy 2", "Copy 3"]


async def test_all_campaigns_cost_the_same_statements_whatever_their_number(
    tenant_a: TenantFixture, statements: list[str]
) -> None:
    first = await make_campaign(tenant_a, name="First")
    await seed(tenant_a, first.id, 3)
    counts = []
    for copies in (0, 2 * listing.MAX_LIMIT):
        await _copy_campaign(tenant_a, first.id, copies)
        statements.clear()
        listed = await listing.all_campaigns(tenant_a.owner_ctx)
        await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
        assert len(listed) == 1 + copies
        counts.append(len(statements))
    # BEGIN, two SET LOCAL, every campaign with its funnel, COMMIT
    assert counts == [5, 5]


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


# --- learners ----------------------------------------------------------------------------


async def test_learners_page_search_and_group(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    campaign = await make_campaign(tenant_a)
    await seed(tenant_a, campaign.id, 10, groups=("North", "South"))
    other = await make_campaign(tenant_b)
    await seed(tenant_b, other.id, 4, prefix="Stranger")
    ctx = tenant_a.owner_ctx
    pages = await every_page(lambda c, n: listing.list_learners(ctx, c, n), 3)
    names = [item.name for p in pages for item in p.items]
    assert names == [f"Learner {i:03d}" for i in reversed(range(10))]
    assert all(item.participations == 1 for p in pages for item in p.items)
    north = await listing.list_learners(ctx, None, 100, group="North")
    assert len(north.items) == 5
    found = await listing.list_learners(ctx, None, 100, search="ext-00")
    assert len(found.items) == 10
    found = await listing.list_learners(ctx, None, 100, search="Stranger")
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

    async def by_name(cursor: str | None, limit: int) -> Page[listing.LearnerRow]:
        return await listing.list_learners(ctx, cursor, limit, order="name")

    pages = await every_page(by_name, 5)
    assert [[item.name.lower() for item in p.items] for p in pages] == [
        [f"learner {i:02}" for i in range(0, 5)],
        [f"learner {i:02}" for i in range(5, 10)],
        ["learner 10", "learner 11"],
    ]
    assert all(p.previous_cursor is None for p in pages)
    assert all(item.user_id is None for p in pages for item in p.items)
    found = await listing.list_learners(ctx, search="L3@EXAMPLE", order="name")
    assert [item.email for item in found.items] == ["l3@example.org"]
    assert len((await listing.list_learners(ctx, search="ext-1", order="name")).items) == 3
    assert (await listing.list_learners(ctx, search="%", order="name")).items == []
    assert len((await listing.list_learners(ctx, group="North", order="name")).items) == 5


async def test_a_learners_cursor_from_the_other_order_or_forged_is_refused(
    tenant_a: TenantFixture,
) -> None:
    rows = "".join(f"P{i},p{i}@example.org\n" for i in range(3))
    await import_learners(tenant_a.owner_ctx, f"name,email\n{rows}".encode())
    ctx = tenant_a.owner_ctx
    newest = (await listing.list_learners(ctx, None, 1)).next_cursor
    by_name = (await listing.list_learners(ctx, None, 1, order="name")).next_cursor
    assert newest
    assert by_name
    forged = [
        "not-a-cursor",
        base64.urlsafe_b64encode(json.dumps(["a\x00", str(uuid4())]).encode()).decode(),
        base64.urlsafe_b64encode(f"{uuid4()}|{'x' * 201}".encode()).decode(),
    ]
    orders: tuple[listing.LearnerOrder, ...] = ("name", "newest")
    cases: list[tuple[listing.LearnerOrder, str]] = [("name", newest), ("newest", by_name)]
    cases += [(order, cursor) for order in orders for cursor in forged]
    for order, cursor in cases:
        with pytest.raises(Invalid) as caught:
            await listing.list_learners(ctx, cursor, order=order)
        assert (caught.value.field, caught.value.message) == (
            "cursor",
            "This page link is not valid.",
        )
    with pytest.raises(Invalid) as caught:
        await listing.list_learners(ctx, search="x" * 201, order="name")
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
    [row] = (await listing.list_learners(tenant_a.owner_ctx, None, 10, search="Two")).items
    assert (row.participations, row.user_id) == (2, person.user_id)
    learner = await listing.get_learner(tenant_a.owner_ctx, row.id)
    assert [(p.campaign_name, p.status) for p in learner.participations] == [
        ("Second", "completed"),
        ("First", "shared"),
    ]
    assert learner.participations[0].level is None
    assert learner.participations[1].level is not None
    assert learner.email == person.email
    with pytest.raises(NotFound):
        await listing.get_learner(tenant_b.owner_ctx, row.id)
    with pytest.raises(NotFound):
        await listing.get_learner(tenant_a.owner_ctx, "not-a-uuid")


# --- isolation and permissions -----------------------------------------------------------


async def test_another_tenants_campaign_is_unknown(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    theirs = await make_campaign(tenant_b)
    await seed(tenant_b, theirs.id, 3)
    ctx = tenant_a.owner_ctx
    for read in (
        listing.list_participations(ctx, theirs.id),
        listing.list_shared_results(ctx, theirs.id),
        listing.campaign_summary(ctx, theirs.id),
        listing.campaign_progress(ctx, theirs.id),
        listing.campaign_groups(ctx, theirs.id),
        listing.list_participations(ctx, uuid4()),
        listing.list_participations(ctx, "nope"),
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
    assert len((await listing.list_campaigns_page(campaigns_only)).items) == 1
    assert len((await listing.list_participations(learners, campaign.id)).items) == 3
    assert len((await listing.list_shared_results(results, campaign.id)).items) == 1
    assert len((await listing.list_learners(learners)).items) == 3
    refused = [
        listing.list_campaigns_page(participant.ctx),
        listing.list_participations(campaigns_only, campaign.id),
        listing.list_participations(results, campaign.id),
        listing.list_shared_results(learners, campaign.id),
        listing.list_learners(campaigns_only),
        listing.get_learner(results, uuid4()),
        listing.campaign_progress(participant.ctx, campaign.id),
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
    days = await listing.campaign_progress(tenant_a.owner_ctx, campaign.id)
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
        await listing.campaign_progress(tenant_a.owner_ctx, (await make_campaign(tenant_a)).id)
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
    days = await listing.campaign_progress(tenant_a.owner_ctx, campaign.id)
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
        "participations": lambda n: listing.list_participations(ctx, campaign.id, None, n),
        "results": lambda n: listing.list_shared_results(ctx, campaign.id, None, n),
        "learners": lambda n: listing.list_learners(ctx, None, n),
        "campaigns": lambda n: listing.list_campaigns_page(ctx, None, n),
        "filtered": lambda n: listing.list_participations(
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
        # BEGIN, two SET LOCAL, (the campaign), the page, COMMIT
        expected = 5 if name in ("learners", "campaigns") else 6
        assert counts == [expected] * 3, name
    statements.clear()
    await listing.campaign_progress(ctx, campaign.id)
    await asyncio.sleep(0)
    assert len(statements) == 6
