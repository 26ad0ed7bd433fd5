"""The campaign dashboard over HTTP: the participants table (search, filters, pages as plain
links), levels only once shared, the progress and level charts with their figures, bad
filters explained, another tenant's campaign unknown, and a fixed number of statements
whatever the number of participants."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from campaigns.campaign_fields import Campaign, CampaignFields
from campaigns.service import create_campaign
from tests.api.conftest import Browser, browser_on
from tests.campaigns.listing_helpers import seed
from tests.conftest import TenantFixture, make_tenant

_ROW = re.compile(
    r'<tr>\s*<th scope="row">'
    r'<a href="/o/[^/"]+/campaigns/[0-9a-f-]+/participants/[0-9a-f-]+">([^<]+)</a>'
    r"\s*(?:<span[^>]*>[^<]*</span>)?</th>(.*?)</tr>",
    re.S,
)


def participant_rows(page: str) -> list[tuple[str, list[str]]]:
    """(name, [cells…]) of the participants table, cells as text; each name links to the
    participant's page."""
    table = page.split('<table class="data participants">', 1)[1].split("</table>", 1)[0]
    rows = []
    for name, cells in _ROW.findall(table):
        texts = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td>(.*?)</td>", cells, re.S)
        ]
        rows.append((html.unescape(name.strip()), [html.unescape(t) for t in texts]))
    return rows


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return html.unescape(found.group(1)) if found else None


@pytest.fixture(scope="module")
async def board(db: str) -> dict[str, Any]:
    """Tenant A's campaign with 30 participants in two groups; tenant B's with 3."""
    a, b = await make_tenant("Board"), await make_tenant("OtherBoard")
    campaign = await create_campaign(
        a.owner_ctx,
        CampaignFields(name="Dashboard", profile_key="digcomp", external_id_label="Staff number"),
    )
    await seed(a, campaign.id, 30, groups=("Nantes", "Brest"))
    theirs = await create_campaign(b.owner_ctx, CampaignFields(name="B", profile_key="digcomp"))
    await seed(b, theirs.id, 3, prefix="Stranger")
    return {"a": a, "b": b, "campaign": campaign, "theirs": theirs}


@pytest.fixture(scope="module")
async def member(app: Litestar, board: dict[str, Any]) -> AsyncIterator[Browser]:
    """A plain member of tenant A: every member reads the dashboard."""
    async with browser_on(app) as browser:
        await browser.login(board["a"].member)
        yield browser


def _page(board: dict[str, Any]) -> str:
    return f"/o/{board['a'].slug}/campaigns/{board['campaign'].id}"


async def test_the_table_pages_through_every_participant_with_plain_links(
    member: Browser, board: dict[str, Any]
) -> None:
    first = await member.client.get(_page(board))
    assert first.status_code == 200
    rows = participant_rows(first.text)
    assert len(rows) == 25
    assert rows[0][0] == "Learner 029"  # newest first
    assert link(first.text, "prev") is None
    following = link(first.text, "next")
    assert following is not None
    assert following.startswith(_page(board) + "?cursor=")
    second = await member.client.get(following)
    rest = participant_rows(second.text)
    assert [name for name, _ in rest] == [f"Learner {i:03d}" for i in reversed(range(5))]
    assert link(second.text, "next") is None
    back = link(second.text, "prev")
    assert back is not None
    again = await member.client.get(back)
    assert participant_rows(again.text) == rows
    assert "Staff number" in first.text  # the campaign's own label for the external id


async def test_levels_show_only_for_shared_results(member: Browser, board: dict[str, Any]) -> None:
    page = await member.client.get(_page(board), params={"search": "Learner 00"})
    rows = dict(participant_rows(page.text))
    # Seeded statuses cycle started, completed, shared; levels are the index modulo 9.
    assert rows["Learner 002"][1] == "Shared"
    assert rows["Learner 002"][-1] == "2"
    assert rows["Learner 001"][1] == "Completed, not shared"
    assert rows["Learner 001"][-1] == "not shared"
    assert rows["Learner 000"][1] == "In progress"
    assert rows["Learner 000"][-1] == "not shared"
    assert rows["Learner 000"][3] == "—"  # not completed


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"status": "shared", "group": "Brest"}, ["Learner 029", "Learner 023", "Learner 017"]),
        ({"search": "ext-012"}, ["Learner 012"]),
        ({"search": "LEARNER2@"}, ["Learner 002"]),
        ({"status": "started", "search": "Learner 00"}, ["Learner 009", "Learner 006"]),
    ],
)
async def test_filters_narrow_the_table_and_stay_in_the_page_links(
    member: Browser, board: dict[str, Any], params: dict[str, str], names: list[str]
) -> None:
    page = await member.client.get(_page(board), params=params)
    assert page.status_code == 200
    found = [name for name, _ in participant_rows(page.text)]
    assert found[: len(names)] == names
    for value in params.values():
        assert f'value="{value}"' in page.text  # the form keeps what was chosen
    assert "Clear the filters" in page.text


async def test_filtered_pages_keep_their_filters(member: Browser, board: dict[str, Any]) -> None:
    page = await member.client.get(_page(board), params={"group": "Nantes"})
    assert len(participant_rows(page.text)) == 15
    shared = await member.client.get(_page(board), params={"status": "completed"})
    assert len(participant_rows(shared.text)) == 10
    assert link(shared.text, "next") is None
    everyone = await member.client.get(_page(board), params={"search": "Learner"})
    following = link(everyone.text, "next")
    assert following is not None
    assert "search=Learner" in following
    assert len(participant_rows((await member.client.get(following)).text)) == 5
    nobody = await member.client.get(_page(board), params={"search": "Nobody at all"})
    assert "No participant matches these filters." in nobody.text
    options = re.findall(r'<option value="([^"]*)"', page.text)
    assert {"Nantes", "Brest"} <= set(options)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "finished"}, "Choose one of the offered statuses."),
        ({"cursor": "forged"}, "This page link is not valid."),
        ({"search": "x" * 201}, "This field is too long (200 characters at most)."),
    ],
)
async def test_bad_filters_are_explained_with_a_422(
    member: Browser, board: dict[str, Any], params: dict[str, str], message: str
) -> None:
    page = await member.client.get(_page(board), params=params)
    assert page.status_code == 422
    assert message in page.text
    assert participant_rows(page.text) == []
    assert "Progress over time" in page.text  # the rest of the page is still there


async def test_the_charts_carry_titles_descriptions_and_figures(
    member: Browser, board: dict[str, Any]
) -> None:
    page = (await member.client.get(_page(board))).text
    assert "Progress over time" in page
    assert 'aria-labelledby="progress-chart-title progress-chart-desc"' in page
    desc = re.search(r'<desc id="progress-chart-desc">([^<]+)</desc>', page)
    assert desc is not None
    assert "30 started, 20 completed, 10 shared" in html.unescape(desc.group(1))
    # drawn twice: the wide chart and the phone's narrow one, three lines each
    assert page.count('class="line ') == 6
    assert page.count('<svg class="narrow"') == 3
    assert "Figures per day" in page
    assert 'aria-labelledby="dist-chart-title dist-chart-desc"' in page
    assert 'class="lvl lvl-' in page
    assert "Learners per level, over shared results" in page  # the table of the same figures


async def test_a_single_day_of_progress_draws_its_figures_not_bare_axes(
    member: Browser, board: dict[str, Any]
) -> None:
    """Two learners on one day (one started, one completed): a polyline of one point draws
    nothing, so each series is a dot with its figure written beside it, and the page says
    why there are no lines yet; the table of figures is there, open."""
    fresh = await create_campaign(
        board["a"].owner_ctx, CampaignFields(name="One day", profile_key="digcomp")
    )
    await seed(board["a"], fresh.id, 2, prefix="Early", same_time=True)
    page = (await member.client.get(f"/o/{board['a'].slug}/campaigns/{fresh.id}")).text
    figure = page.split('<figure class="chart progress-chart">', 1)[1].split("</figure>", 1)[0]
    chart = figure.split('<svg class="narrow"', 1)[0]  # the wide drawing
    dots = re.findall(
        r'<circle cx="([\d.]+)" cy="([\d.]+)" r="[\d.]+" class="line (\w+) dot"/>', chart
    )
    assert [series for _, _, series in dots] == ["started", "completed", "shared"]
    heights = {series: float(cy) for _, cy, series in dots}
    assert heights["started"] < heights["completed"] < heights["shared"]  # 2, 1 and 0
    assert re.findall(r'class="value">(\d+)</text>', chart) == ["2", "1", "0"]
    assert "One day of activity so far" in page
    figures = page.split('<details class="figures" open>', 1)[1].split("</details>", 1)[0]
    assert "<td>2 (+2)</td><td>1 (+1)</td><td>0 (+0)</td>" in figures
    # English is British English (core.l10n.BABEL_LOCALES): 2 March 2021, day first
    assert '<th scope="row">02/03/2021</th>' in figures
    assert "From 2 March 2021 to 2 March 2021" in html.unescape(chart)


async def test_a_campaign_nobody_took_says_so(member: Browser, board: dict[str, Any]) -> None:
    empty = await create_campaign(
        board["a"].owner_ctx, CampaignFields(name="Empty", profile_key="digcomp")
    )
    page = await member.client.get(f"/o/{board['a'].slug}/campaigns/{empty.id}")
    assert page.status_code == 200
    assert "Nobody has started this campaign yet." in page.text
    assert "Progress over time" not in page.text


async def test_another_tenants_campaign_and_participants_stay_hidden(
    member: Browser, board: dict[str, Any]
) -> None:
    theirs: Campaign = board["theirs"]
    response = await member.client.get(f"/o/{board['a'].slug}/campaigns/{theirs.id}")
    assert response.status_code == 404
    mine = await member.client.get(_page(board), params={"search": "Stranger"})
    assert participant_rows(mine.text) == []


async def test_the_dashboard_costs_the_same_statements_whatever_the_participants(
    app: Litestar,
    board: dict[str, Any],
    statements: list[str],
) -> None:
    tenant: TenantFixture = board["a"]
    few = await create_campaign(tenant.owner_ctx, CampaignFields(name="Few", profile_key="digcomp"))
    await seed(tenant, few.id, 3, prefix="Few")
    counts = []
    async with browser_on(app) as browser:
        await browser.login(tenant.owner)
        for campaign_id in (few.id, board["campaign"].id):
            statements.clear()
            response: httpx.Response = await browser.client.get(
                f"/o/{tenant.slug}/campaigns/{campaign_id}"
            )
            await asyncio.sleep(0)  # asyncpg calls query loggers on the next loop iteration
            assert response.status_code == 200
            counts.append(len(statements))
    assert counts[0] == counts[1]
    assert counts[0] > 10  # the page's reads were counted (session, tenant, campaign…)
