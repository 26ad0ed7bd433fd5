"""The jobs page of the back office (admin.jobs): failed tasks, failed webhook deliveries and
gateway dead letters across organizations, with their errors; retrying a delivery or an event
(confirmed, with a reason, audited with it), a task refused with the reason; another tenant's
row under a tenant's id is a 404; a gateway event (money) needs the billing permission;
support reads but retries nothing; a content editor and a tenant owner are kept out; a path
that names nothing (a NUL, an overlong id) is a 404, never a 500."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from core import tasks
from core.database import execute, fetch, transaction
from tests.admin.conftest import StaffFixture, staff_login
from tests.api.conftest import Browser, audit_actions
from tests.conftest import HeldQueue, TenantFixture
from tests.db import as_tenant

TASK_ERROR = "The task failed. Start it again; if it fails again, contact support."
REASON = "The receiver was down for maintenance"
CONFIRMED = {"confirm": "yes", "reason": REASON}


async def _failed_task(tenant: TenantFixture) -> UUID:
    task_id = uuid4()
    async with as_tenant(tenant.id):
        await execute(
            """INSERT INTO task (tenant_id, id, kind, status, message, created_by, expires_at,
                   finished_at)
               VALUES ($1, $2, 'results.export', 'failed', $3, $4, now() + interval '7 days',
                   now())""",
            tenant.id,
            task_id,
            TASK_ERROR,
            tenant.owner.id,
        )
    return task_id


async def _failed_delivery(tenant: TenantFixture, error: str) -> UUID:
    endpoint_id, delivery_id = uuid4(), uuid4()
    async with as_tenant(tenant.id):
        await execute(
            """INSERT INTO webhook_endpoint (tenant_id, id, url, events, secret)
               VALUES ($1, $2, $3, ARRAY['campaign.closed'], $4)""",
            tenant.id,
            endpoint_id,
            f"https://hooks.example.org/{endpoint_id}",
            "whsec_" + "x" * 40,
        )
        await execute(
            """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type, event_id,
                   payload, status, attempts, next_attempt_at, last_response_code, last_error)
               VALUES ($1, $2, $3, 'campaign.closed', $4, $5::jsonb, 'failed', 6, NULL, 502,
                   $6)""",
            tenant.id,
            delivery_id,
            endpoint_id,
            uuid4(),
            json.dumps({"type": "campaign.closed"}),
            error,
        )
    return delivery_id


async def _dead_letter(error: str) -> str:
    event_id = f"evt_{uuid4().hex}"
    async with transaction():
        await execute(
            """INSERT INTO gateway_event (gateway, event_id, type, created_at, payload,
                   processed_at, outcome, attempts)
               VALUES ('stripe', $1, 'customer.created', now(), $2::jsonb, now(), $3, 8)""",
            event_id,
            json.dumps(
                {
                    "id": event_id,
                    "type": "customer.created",
                    "created": 1,
                    "data": {"object": {}},
                }
            ),
            f"dead letter after 8 attempts: {error}",
        )
    return event_id


async def _deliveries(tenant: TenantFixture) -> list[dict[str, object]]:
    async with as_tenant(tenant.id):
        return await fetch(
            "SELECT id, status, redelivery_of FROM webhook_delivery WHERE tenant_id = $1",
            tenant.id,
        )


async def _trail(staff: StaffFixture) -> list[tuple[str, str, UUID | None]]:
    return [(action, target, tenant) for action, target, tenant, _ in await _reasons(staff)]


async def _reasons(staff: StaffFixture) -> list[tuple[str, str, UUID | None, str | None]]:
    async with transaction():
        rows = await fetch(
            "SELECT action, target_id, organization_id, reason FROM staff_audit"
            " WHERE staff_user_id = $1 ORDER BY occurred_at, id",
            staff.user.id,
        )
    return [
        (row["action"], row["target_id"], row["organization_id"], row["reason"]) for row in rows
    ]


async def _tenant_audit(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        rows = await fetch(
            "SELECT action, details FROM audit_event WHERE tenant_id = $1 ORDER BY occurred_at, id",
            tenant.id,
        )
    return [
        {
            "action": row["action"],
            "details": (
                json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
            ),
        }
        for row in rows
    ]


async def _event(event_id: str) -> dict[str, object]:
    async with transaction():
        [row] = await fetch(
            "SELECT processed_at, attempts, outcome FROM gateway_event WHERE event_id = $1",
            event_id,
        )
    return row


async def test_the_page_lists_what_failed_with_its_error(
    am_browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    task_id = await _failed_task(tenant_a)
    delivery_id = await _failed_delivery(tenant_b, "Connection refused by the receiver")
    event_id = await _dead_letter("RuntimeError: the gateway is unreachable")
    page = await am_browser.get("/admin/jobs")
    assert page.status_code == 200
    assert str(task_id) in page.text
    assert TASK_ERROR in page.text
    assert str(delivery_id) in page.text
    assert "Connection refused by the receiver" in page.text
    assert event_id in page.text
    assert "the gateway is unreachable" in page.text
    assert f"/admin/jobs/deliveries/{tenant_b.id}/{delivery_id}/retry" in page.text
    assert f"/admin/jobs/events/stripe/{event_id}/retry" in page.text


async def test_a_failed_delivery_is_sent_again_and_audited_in_its_tenant(
    am_browser: Browser,
    account_manager: StaffFixture,
    tenant_a: TenantFixture,
    tenant_b: TenantFixture,
    held: HeldQueue,
) -> None:
    delivery_a = await _failed_delivery(tenant_a, "timeout")
    delivery_b = await _failed_delivery(tenant_b, "timeout")
    before_a, before_b = await audit_actions(tenant_a.id), await audit_actions(tenant_b.id)

    # tenant B's delivery under tenant A's id: unknown
    for data in ({}, CONFIRMED):
        crossed = await am_browser.post(
            f"/admin/jobs/deliveries/{tenant_a.id}/{delivery_b}/retry", data, page="/admin/jobs"
        )
        assert crossed.status_code == 404
    assert len(await _deliveries(tenant_b)) == 1

    path = f"/admin/jobs/deliveries/{tenant_a.id}/{delivery_a}/retry"
    # the first post asks for confirmation and a reason; without a reason, nothing is sent
    confirm = await am_browser.post(path, {}, page="/admin/jobs")
    assert confirm.status_code == 200
    assert 'name="reason"' in confirm.text
    assert 'name="confirm" value="yes"' in confirm.text
    for reason in ("", "  x "):
        refused = await am_browser.post(
            path, {"confirm": "yes", "reason": reason}, page="/admin/jobs"
        )
        assert refused.status_code == 422
        assert "Give the reason for this action." in refused.text
    assert len(await _deliveries(tenant_a)) == 1
    assert held.held == []
    assert await audit_actions(tenant_a.id) == before_a

    retried = await am_browser.post(path, CONFIRMED, page="/admin/jobs")
    assert retried.status_code == 303, retried.text
    assert retried.headers["location"] == "/admin/jobs"
    rows = await _deliveries(tenant_a)
    [again] = [row for row in rows if row["redelivery_of"] == delivery_a]
    assert again["status"] == "pending"
    assert [name for name, _ in held.held] == ["deliver_webhook"]
    assert await audit_actions(tenant_a.id) == [*before_a, "webhook.redelivered"]
    assert await audit_actions(tenant_b.id) == before_b
    assert ("webhook.redelivered", str(again["id"]), tenant_a.id, REASON) in await _reasons(
        account_manager
    )
    [event] = [e for e in await _tenant_audit(tenant_a) if e["action"] == "webhook.redelivered"]
    assert event["details"]["reason"] == REASON


async def test_a_dead_letter_gets_a_new_round_of_attempts_audited(
    am_browser: Browser, account_manager: StaffFixture, held: HeldQueue
) -> None:
    event_id = await _dead_letter("KeyError: 'customer'")
    path = f"/admin/jobs/events/stripe/{event_id}/retry"
    confirm = await am_browser.post(path, {}, page="/admin/jobs")
    assert confirm.status_code == 200
    assert event_id in confirm.text
    assert 'name="reason"' in confirm.text
    refused = await am_browser.post(path, {"confirm": "yes", "reason": ""}, page="/admin/jobs")
    assert refused.status_code == 422
    assert "Give the reason for this action." in refused.text
    assert (await _event(event_id))["processed_at"] is not None
    assert held.held == []
    assert "gateway_event.retried" not in [action for action, _, _ in await _trail(account_manager)]

    retried = await am_browser.post(path, CONFIRMED, page="/admin/jobs")
    assert retried.status_code == 303, retried.text
    row = await _event(event_id)
    assert row["processed_at"] is None
    assert row["attempts"] == 0
    assert ("gateway_event.retried", f"stripe:{event_id}", None, REASON) in await _reasons(
        account_manager
    )
    # the inbox processes it again
    assert [name for name, _ in held.held] == ["process_gateway_event"]
    await held.run()
    row = await _event(event_id)
    assert row["processed_at"] is not None
    assert row["outcome"] == "not handled"
    # no longer a dead letter: a second retry finds nothing to retry
    again = await am_browser.post(path, CONFIRMED, page="/admin/jobs")
    assert again.status_code == 404
    unknown = await am_browser.post(
        "/admin/jobs/events/stripe/evt_unknown/retry", CONFIRMED, page="/admin/jobs"
    )
    assert unknown.status_code == 404


async def test_a_failed_task_is_not_retried_and_the_page_says_why(
    am_browser: Browser, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    task_a = await _failed_task(tenant_a)
    task_b = await _failed_task(tenant_b)
    refused = await am_browser.post(
        f"/admin/jobs/tasks/{tenant_a.id}/{task_a}/retry", {}, page="/admin/jobs"
    )
    assert refused.status_code == 409
    assert "cannot be retried from here" in refused.text
    crossed = await am_browser.post(
        f"/admin/jobs/tasks/{tenant_a.id}/{task_b}/retry", {}, page="/admin/jobs"
    )
    assert crossed.status_code == 404
    unknown_tenant = await am_browser.post(
        f"/admin/jobs/tasks/{uuid4()}/{task_a}/retry", {}, page="/admin/jobs"
    )
    assert unknown_tenant.status_code == 404
    task = await tasks.find_task(tenant_a.owner_ctx, task_a)
    assert task is not None
    assert task.status == "failed"


async def test_support_reads_the_page_but_retries_nothing(
    browser: Browser, support: StaffFixture, tenant_a: TenantFixture, held: HeldQueue
) -> None:
    delivery_id = await _failed_delivery(tenant_a, "Connection reset")
    event_id = await _dead_letter("boom")
    task_id = await _failed_task(tenant_a)
    await staff_login(browser, support)
    page = await browser.get("/admin/jobs")
    assert page.status_code == 200
    assert "Connection reset" in page.text
    assert "/retry" not in page.text
    for path in (
        f"/admin/jobs/deliveries/{tenant_a.id}/{delivery_id}/retry",
        f"/admin/jobs/events/stripe/{event_id}/retry",
        f"/admin/jobs/tasks/{tenant_a.id}/{task_id}/retry",
    ):
        for data in ({}, CONFIRMED):
            response = await browser.post(path, data, page="/admin/jobs")
            assert response.status_code == 403, path
    assert len(await _deliveries(tenant_a)) == 1
    assert (await _event(event_id))["processed_at"] is not None
    assert held.held == []


async def test_a_content_editor_is_refused(
    browser: Browser, content_editor: StaffFixture, tenant_a: TenantFixture
) -> None:
    delivery_id = await _failed_delivery(tenant_a, "Connection reset")
    event_id = await _dead_letter("boom")
    await staff_login(browser, content_editor)
    assert (await browser.get("/admin/jobs")).status_code == 403
    response = await browser.post(
        f"/admin/jobs/deliveries/{tenant_a.id}/{delivery_id}/retry", CONFIRMED, page="/admin"
    )
    assert response.status_code == 403
    response = await browser.post(
        f"/admin/jobs/events/stripe/{event_id}/retry", CONFIRMED, page="/admin"
    )
    assert response.status_code == 403
    assert len(await _deliveries(tenant_a)) == 1
    assert (await _event(event_id))["processed_at"] is not None


async def test_a_tenant_owner_is_told_there_is_no_such_page(
    browser: Browser, tenant_a: TenantFixture
) -> None:
    delivery_id = await _failed_delivery(tenant_a, "Connection reset")
    await browser.login(tenant_a.owner)
    assert (await browser.get("/admin/jobs")).status_code == 404
    response = await browser.post(
        f"/admin/jobs/deliveries/{tenant_a.id}/{delivery_id}/retry",
        {},
        page=f"/o/{tenant_a.slug}",
    )
    assert response.status_code == 404
    assert len(await _deliveries(tenant_a)) == 1


def test_a_gateway_event_is_retried_under_the_billing_permission() -> None:
    from admin.jobs import retry_event
    from tenants.permissions import StaffPermission

    assert retry_event.opt["permission"] == StaffPermission.BILLING_MANAGE


@pytest.mark.parametrize(
    "path",
    [
        "/admin/jobs/events/stripe/ab%00c/retry",
        "/admin/jobs/events/st%00ripe/evt_1/retry",
        "/admin/jobs/events/stripe/" + "e" * 300 + "/retry",
        "/admin/jobs/events/" + "s" * 300 + "/evt_1/retry",
        "/admin/jobs/events/stripe/evt%0A1/retry",
    ],
)
async def test_a_gateway_event_path_that_names_nothing_is_a_404(
    am_browser: Browser, path: str
) -> None:
    for data in ({}, CONFIRMED):
        response = await am_browser.post(path, data, page="/admin/jobs")
        assert response.status_code == 404, (path, response.text[:300])


async def test_the_page_lists_jobs_that_failed_for_good(
    am_browser: Browser, tenant_a: TenantFixture, owner_url: str
) -> None:
    import asyncpg

    job_id = f"mail:{uuid4()}"
    owner = await asyncpg.connect(owner_url)
    try:
        await owner.execute(
            """INSERT INTO job_outbox (id, organization_id, job_id, name, args, status, tries,
                                       last_error, last_error_at)
               VALUES ($1, $2, $3, 'deliver_mail', '[]', 'failed', 5,
                       'SMTPServerDisconnected: the relay hung up', now())""",
            uuid4(),
            tenant_a.id,
            job_id,
        )
    finally:
        await owner.close()
    page = await am_browser.get("/admin/jobs")
    assert page.status_code == 200
    assert job_id in page.text
    assert "the relay hung up" in page.text
    assert f"/admin/tenants/{tenant_a.id}" in page.text
