"""Large exports in the console: the buttons start a background task, its page shows the
progress and refreshes itself while it runs, then offers the file; who may see which task."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest

from campaigns.campaign_fields import CampaignFields
from campaigns.service import create_campaign
from core import database, jobs
from core.settings import get_settings
from core.tasks import INTERRUPTED, fail
from tenants import tasks
from tests.api.conftest import Browser, audit_actions
from tests.campaigns.test_exports import add_shared_results
from tests.conftest import HeldQueue, TenantFixture
from tests.db import as_tenant

pytestmark = pytest.mark.usefixtures("in_process")

REFRESH = '<meta http-equiv="refresh" content="2">'


@pytest.fixture
def low_threshold(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Campaigns with more than 2 shared results export in the background."""
    monkeypatch.setenv("JALON_EXPORT_BACKGROUND_THRESHOLD", "2")
    get_settings.cache_clear()
    assert get_settings().export_background_threshold == 2
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


async def _campaign_with_results(tenant: TenantFixture, count: int) -> Any:
    campaign = await create_campaign(
        tenant.owner_ctx, CampaignFields(name="Big one", profile_key="digcomp")
    )
    await add_shared_results(tenant.id, campaign.id, count)
    return campaign


@pytest.mark.usefixtures("low_threshold")
async def test_a_large_export_runs_in_the_background_and_is_downloaded(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    campaign = await _campaign_with_results(tenant_a, 3)
    base = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(tenant_a.member)  # every member reads and exports results
    page = await browser.get(base)
    assert f'action="{base}/exports"' in page.text
    assert f'href="{base}/results.csv"' not in page.text
    # The direct link of a small export sends a large one back to the buttons.
    direct = await browser.client.get(f"{base}/results.xlsx")
    assert (direct.status_code, direct.headers["location"]) == (303, base)
    assert "start its export with the buttons below" in (await browser.get(base)).text

    audit_before = await audit_actions(tenant_a.id)
    started = await browser.post(f"{base}/exports", {"format": "xlsx"}, page=base)
    assert started.status_code == 303
    location = started.headers["location"]
    assert location.startswith(f"/o/{tenant_a.slug}/tasks/")
    assert await audit_actions(tenant_a.id) == [*audit_before, "task.started"]

    waiting = await browser.get(location)
    assert waiting.status_code == 200
    assert REFRESH in waiting.text
    assert 'role="status" aria-live="polite"' in waiting.text
    assert '<progress id="task-progress" max="3" value="0"' in waiting.text
    assert "The task is waiting to start." in waiting.text
    assert "/download" not in waiting.text
    not_yet = await browser.client.get(f"{location}/download")
    assert not_yet.status_code == 404

    await held.run()
    ready = await browser.get(location)
    assert REFRESH not in ready.text
    assert "Your file is ready." in ready.text
    assert f'href="{location}/download"' in ready.text
    assert '<progress id="task-progress" max="3" value="3"' in ready.text
    listing = await browser.get(f"/o/{tenant_a.slug}/tasks")
    assert location in listing.text
    assert "Export of campaign results" in listing.text

    download = await browser.client.get(f"{location}/download")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert f"{campaign.code}-results.xlsx" in download.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(download.content)).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("Name", "Email address")
    assert len(rows) == 1 + 3
    assert {row[9] for row in rows[1:]} == {3}  # 1.1's level, a number


@pytest.mark.usefixtures("low_threshold")
async def test_a_small_export_still_streams_and_the_buttons_start_nothing_else(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await _campaign_with_results(tenant_a, 2)
    base = f"/o/{tenant_a.slug}/campaigns/{campaign.id}"
    await browser.login(tenant_a.owner)
    page = await browser.get(base)
    assert f'href="{base}/results.xlsx"' in page.text
    response = await browser.client.get(f"{base}/results.xlsx")
    assert response.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(response.content)).worksheets[0].iter_rows())
    assert len(rows) == 1 + 2
    refused = await browser.post(f"{base}/exports", {"format": "pdf"}, page=base)
    assert refused.status_code == 422
    assert "Choose CSV or XLSX." in refused.text


async def test_a_finished_task_stops_refreshing_and_an_expired_file_is_gone(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    campaign = await _campaign_with_results(tenant_a, 1)
    from campaigns.exports import start_export

    task_id = await start_export(tenant_a.owner_ctx, campaign.id, "csv", "en")
    queue = jobs.get_queue()
    assert isinstance(queue, jobs.InProcessQueue)
    await queue.drain()
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE task SET expires_at = now() - interval '1 minute' WHERE id = $1", task_id
        )
    await tasks.purge_expired_tasks({})
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/tasks/{task_id}")
    assert REFRESH not in page.text
    assert "This file has expired: start the task again." in page.text
    gone = await browser.client.get(f"/o/{tenant_a.slug}/tasks/{task_id}/download")
    assert gone.status_code == 410


async def test_a_failed_task_says_why(
    browser: Browser, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    from campaigns.exports import start_export

    campaign = await _campaign_with_results(tenant_a, 1)
    task_id = await start_export(tenant_a.owner_ctx, campaign.id, "csv", "en")
    await fail(tenant_a.id, task_id, INTERRUPTED)
    await browser.login(tenant_a.owner)
    page = await browser.get(f"/o/{tenant_a.slug}/tasks/{task_id}")
    assert "The task was interrupted. Start it again." in page.text
    assert REFRESH not in page.text
    assert (
        await browser.client.get(f"/o/{tenant_a.slug}/tasks/{task_id}/download")
    ).status_code == 404


async def test_members_see_their_own_tasks_and_admins_see_all(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    from campaigns.exports import start_export

    campaign = await _campaign_with_results(tenant_a, 1)
    owners = await start_export(tenant_a.owner_ctx, campaign.id, "csv", "en")
    members = await start_export(tenant_a.member_ctx, campaign.id, "csv", "en")
    queue = jobs.get_queue()
    assert isinstance(queue, jobs.InProcessQueue)
    await queue.drain()

    await browser.login(tenant_a.member)
    base = f"/o/{tenant_a.slug}/tasks"
    listing = await browser.get(base)
    assert f"{base}/{members}" in listing.text
    assert f"{base}/{owners}" not in listing.text
    for path in (f"{base}/{owners}", f"{base}/{owners}/download"):
        assert (await browser.client.get(path)).status_code == 404
    assert (await browser.client.get(f"{base}/{members}/download")).status_code == 200

    await browser.post("/logout", page="/")
    await browser.login(tenant_a.owner)
    listing = await browser.get(base)
    assert f"{base}/{members}" in listing.text
    assert f"{base}/{owners}" in listing.text
    assert (await browser.client.get(f"{base}/{members}/download")).status_code == 200


async def test_another_tenants_task_is_not_found(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    from campaigns.exports import start_export

    campaign = await _campaign_with_results(tenant_b, 1)
    theirs = await start_export(tenant_b.owner_ctx, campaign.id, "csv", "en")
    queue = jobs.get_queue()
    assert isinstance(queue, jobs.InProcessQueue)
    await queue.drain()
    await browser.login(tenant_a.owner)
    for path in (f"/o/{tenant_a.slug}/tasks/{theirs}", f"/o/{tenant_b.slug}/tasks/{theirs}"):
        assert (await browser.client.get(path)).status_code == 404
        assert (await browser.client.get(f"{path}/download")).status_code == 404
    assert str(theirs) not in (await browser.get(f"/o/{tenant_a.slug}/tasks")).text
