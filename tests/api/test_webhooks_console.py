"""Webhooks in the console: owners and admins add, edit, test and delete endpoints and read
the delivery log; members are refused; another organization's ids are unknown ones."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID, uuid4

from core import database, jobs
from core.jobs import InProcessQueue
from tenants.webhooks.delivery import MAX_ATTEMPTS, deliver_webhook
from tenants.webhooks.endpoints import (
    EndpointFields,
    create_endpoint,
    get_endpoint,
    send_test_event,
)
from tests.api.conftest import Browser, audit_actions
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.tenants.receiver import receiving, verify


async def _deliver_pending(tenant: TenantFixture) -> None:
    """Run the delivery jobs the console queued (the app's queue may be Redis, no worker). An
    in-process queue may be running one already: let it finish first, or the two attempts race
    for the same delivery."""
    queue = jobs.get_queue()
    if isinstance(queue, InProcessQueue):
        await queue.drain()
    async with as_tenant(tenant.id):
        rows = await database.fetch(
            "SELECT id FROM webhook_delivery WHERE tenant_id = $1 AND status = 'pending'",
            tenant.id,
        )
    for row in rows:
        await deliver_webhook({}, str(tenant.id), str(row["id"]))


async def _endpoints(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await database.fetch(
            "SELECT id, url, events, enabled FROM webhook_endpoint WHERE tenant_id = $1",
            tenant.id,
        )


async def test_an_owner_adds_an_endpoint_tests_it_and_reads_the_log(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/webhooks"
    page = await browser.get(base)
    assert page.status_code == 200
    assert "No endpoint yet." in page.text
    async with receiving() as receiver:
        added = await browser.post(
            base, {"url": receiver.url(), "events": "campaign.closed"}, page=base
        )
        assert added.status_code == 303
        [endpoint] = await _endpoints(tenant_a)
        assert endpoint["events"] == ["campaign.closed"]
        assert added.headers["location"] == f"{base}/{endpoint['id']}"
        detail = await browser.get(added.headers["location"])
        assert "Reveal its signing secret" in detail.text
        assert "whsec_" not in detail.text  # shown on demand only

        revealed = await browser.post(
            f"{base}/{endpoint['id']}/secret", page=added.headers["location"]
        )
        secret_match = re.search(r'value="(whsec_[^"]+)"', revealed.text)
        assert secret_match

        tested = await browser.post(f"{base}/{endpoint['id']}/test", page=detail.url.path)
        assert tested.status_code == 303
        await _deliver_pending(tenant_a)
        [request] = receiver.requests
        assert verify(secret_match.group(1), request.headers["jalon-signature"], request.body)

    log = await browser.get(f"{base}/{endpoint['id']}")
    assert "HTTP 200" in log.text
    assert "delivered" in log.text
    listing = await browser.get(base)
    assert receiver.url() in listing.text
    assert (await audit_actions(tenant_a.id))[-3:] == [
        "webhook.created",
        "webhook.secret_revealed",
        "webhook.tested",
    ]


async def test_a_failed_delivery_can_be_sent_again(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    async with receiving() as receiver:
        receiver.statuses = [500] * MAX_ATTEMPTS
        endpoint_id = await create_endpoint(tenant_a.owner_ctx, EndpointFields(receiver.url()))
        delivery_id = await send_test_event(tenant_a.owner_ctx, endpoint_id)
        await _deliver_pending(tenant_a)
        async with as_tenant(tenant_a.id):
            await database.execute(
                """UPDATE webhook_delivery SET status = 'failed', next_attempt_at = NULL
                   WHERE tenant_id = $1 AND id = $2""",
                tenant_a.id,
                delivery_id,
            )
        page = f"/o/{tenant_a.slug}/webhooks/{endpoint_id}"
        log = await browser.get(page)
        assert "HTTP 500" in log.text
        assert "Send again" in log.text
        again = await browser.post(f"{page}/deliveries/{delivery_id}/redeliver", page=page)
        assert again.status_code == 303
        await _deliver_pending(tenant_a)
        assert len(receiver.requests) == 2
    assert (await audit_actions(tenant_a.id))[-1] == "webhook.redelivered"


async def test_the_forms_offer_every_registered_event(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/webhooks"
    boxes = re.compile(r'name="events" value="([^"]+)" ?(checked)?')
    new = await browser.get(base)
    # a new endpoint: every event ticked, in the order campaigns registers them; never ping
    assert boxes.findall(new.text) == [
        ("participation.shared", "checked"),
        ("campaign.closed", "checked"),
    ]
    endpoint_id = await create_endpoint(
        tenant_a.owner_ctx, EndpointFields("https://example.org/a", "", ("campaign.closed",))
    )
    edit = await browser.get(f"{base}/{endpoint_id}")
    assert boxes.findall(edit.text) == [
        ("participation.shared", ""),
        ("campaign.closed", "checked"),
    ]
    unknown = await browser.post(
        base, {"url": "https://example.org/b", "events": "campaign.deleted"}, page=base
    )
    assert unknown.status_code == 422
    assert "Unknown event: campaign.deleted." in unknown.text


async def test_a_bad_address_is_shown_next_to_its_field(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/webhooks"
    response = await browser.post(
        base, {"url": "ftp://example.org/x", "events": "campaign.closed"}, page=base
    )
    assert response.status_code == 422
    assert "Enter an address starting with https:// or http://." in response.text
    assert 'value="ftp://example.org/x"' in response.text
    none = await browser.post(base, {"url": "https://example.org/x"}, page=base)
    assert none.status_code == 422
    assert "Choose at least one event." in none.text
    assert await _endpoints(tenant_a) == []


async def test_endpoints_are_edited_disabled_and_deleted(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    await browser.login(tenant_a.owner)
    endpoint_id = await create_endpoint(tenant_a.owner_ctx, EndpointFields("https://example.org/a"))
    page = f"/o/{tenant_a.slug}/webhooks/{endpoint_id}"
    saved = await browser.post(
        page, {"url": "https://example.org/b", "events": "participation.shared"}, page=page
    )
    assert saved.status_code == 303
    disabled = await browser.post(f"{page}/disable", page=page)
    assert disabled.status_code == 303
    [endpoint] = await _endpoints(tenant_a)
    assert (endpoint["url"], endpoint["events"], endpoint["enabled"]) == (
        "https://example.org/b",
        ["participation.shared"],
        False,
    )
    refused = await browser.post(f"{page}/test", page=page)
    assert refused.status_code == 409
    assert "Enable the endpoint before sending it a test event." in refused.text
    deleted = await browser.post(f"{page}/delete", page=page)
    assert deleted.status_code == 303
    assert await _endpoints(tenant_a) == []
    assert (await browser.get(page)).status_code == 404


async def test_members_are_refused_the_webhooks_pages(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    endpoint_id = await create_endpoint(tenant_a.owner_ctx, EndpointFields("https://example.org/a"))
    await browser.login(tenant_a.member)
    for path in ("/webhooks", f"/webhooks/{endpoint_id}"):
        assert (await browser.get(f"/o/{tenant_a.slug}{path}")).status_code == 403
    dashboard = await browser.get(f"/o/{tenant_a.slug}/")
    assert f"/o/{tenant_a.slug}/webhooks" not in dashboard.text


async def test_another_organizations_endpoint_is_not_found(
    browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    theirs = await create_endpoint(tenant_b.owner_ctx, EndpointFields("https://example.org/b"))
    await browser.login(tenant_a.owner)
    base = f"/o/{tenant_a.slug}/webhooks"
    foreign = await browser.get(f"{base}/{theirs}")
    unknown = await browser.get(f"{base}/{uuid4()}")
    assert foreign.status_code == unknown.status_code == 404
    for action in ("disable", "delete", "secret", "rotate", "test"):
        response = await browser.post(f"{base}/{theirs}/{action}", page=base)
        assert response.status_code == 404, action
    assert (await get_endpoint(tenant_b.owner_ctx, theirs)).enabled is True
    assert isinstance(theirs, UUID)
