"""An organization's endpoints: the rules of their fields, who may manage them, their
isolation between tenants, the audit, the delivery log, the test event and redelivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from core import database
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.jobs import InProcessQueue
from tenants.webhooks.delivery import deliver_webhook
from tenants.webhooks.endpoints import (
    Delivery,
    Endpoint,
    EndpointFields,
    EndpointSummary,
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_deliveries,
    list_endpoints,
    redeliver,
    reveal_secret,
    rotate_secret,
    send_test_event,
    set_enabled,
    update_endpoint,
)
from tests.api.conftest import audit_actions
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.tenants.receiver import Receiver, verify
from tests.tenants.webhooks.support import deliveries, endpoint_with_secret, make_due


async def test_an_endpoint_reads_back_as_saved(tenant_a: TenantFixture) -> None:
    ctx = tenant_a.owner_ctx
    endpoint_id = await create_endpoint(
        ctx,
        EndpointFields(
            " https://example.org/h ", "HR system", ("campaign.closed", "participation.shared")
        ),
    )
    endpoint = await get_endpoint(ctx, endpoint_id)
    assert isinstance(endpoint, Endpoint)
    assert (endpoint.id, endpoint.url, endpoint.description, endpoint.enabled) == (
        endpoint_id,
        "https://example.org/h",
        "HR system",
        True,
    )
    assert endpoint.events == ("campaign.closed", "participation.shared")  # sorted
    assert endpoint.created_at.tzinfo is not None
    # a new endpoint subscribes to every registered event unless told
    assert EndpointFields("https://example.org").events == (
        "participation.shared",
        "campaign.closed",
    )


async def test_the_list_says_how_each_endpoints_deliveries_stand(
    tenant_a: TenantFixture, queue: InProcessQueue
) -> None:
    ctx = tenant_a.owner_ctx
    older = await create_endpoint(ctx, EndpointFields("https://example.org/old"))
    newer = await create_endpoint(ctx, EndpointFields("https://example.org/new", "x"))
    async with as_tenant(tenant_a.id):
        for status, delivered_at in (
            ("pending", None),
            ("failed", None),
            ("failed", None),
            ("delivered", datetime(2026, 1, 2, tzinfo=UTC)),
            ("delivered", datetime(2026, 1, 1, tzinfo=UTC)),
        ):
            await database.execute(
                """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type,
                       event_id, payload, status, next_attempt_at, delivered_at)
                   VALUES ($1, $2, $3, 'ping', $4, '{}', $5,
                       CASE WHEN $5 = 'pending' THEN now() END, $6)""",
                tenant_a.id,
                uuid4(),
                older,
                uuid4(),
                status,
                delivered_at,
            )
    listed = await list_endpoints(ctx)
    assert all(isinstance(e, EndpointSummary) for e in listed)
    assert [e.id for e in listed] == [newer, older]  # newest first
    fresh, busy = listed
    assert (fresh.pending, fresh.failed, fresh.last_delivered_at, fresh.description) == (
        0,
        0,
        None,
        "x",
    )
    assert (busy.pending, busy.failed) == (1, 2)
    assert busy.last_delivered_at == datetime(2026, 1, 2, tzinfo=UTC)
    assert busy.events == ("campaign.closed", "participation.shared")


async def test_endpoint_fields_are_checked(tenant_a: TenantFixture) -> None:
    ctx = tenant_a.owner_ctx
    with pytest.raises(Invalid) as error:
        await create_endpoint(ctx, EndpointFields("https://example.org", "", ()))
    assert error.value.field == "events"
    for unknown in ("ping", "participation.deleted"):  # the test event, an unregistered one
        with pytest.raises(Invalid) as error:
            await create_endpoint(ctx, EndpointFields("https://example.org", "", (unknown,)))
        assert (error.value.field, error.value.params) == ("events", {"event": unknown})
    with pytest.raises(Invalid):
        await create_endpoint(ctx, EndpointFields("https://example.org", "x" * 501))
    with pytest.raises(Invalid) as error:
        await create_endpoint(ctx, EndpointFields("ftp://example.org/x"))
    assert error.value.field == "url"
    endpoint_id = await create_endpoint(ctx, EndpointFields("https://example.org/ok"))
    with pytest.raises(Invalid):
        await update_endpoint(
            ctx, endpoint_id, EndpointFields("https://example.org/ok", "", ("campaign.opened",))
        )
    assert (await list_endpoints(ctx))[0].url == "https://example.org/ok"


async def test_members_cannot_manage_webhooks(tenant_a: TenantFixture) -> None:
    endpoint_id, _ = await endpoint_with_secret(tenant_a, "https://example.org/hook")
    member = tenant_a.member_ctx
    with pytest.raises(Forbidden):
        await create_endpoint(member, EndpointFields("https://example.org/x"))
    with pytest.raises(Forbidden):
        await list_endpoints(member)
    with pytest.raises(Forbidden):
        await reveal_secret(member, endpoint_id)
    with pytest.raises(Forbidden):
        await delete_endpoint(member, endpoint_id)


async def test_another_tenants_endpoints_and_deliveries_are_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture, queue: InProcessQueue
) -> None:
    endpoint_id, _ = await endpoint_with_secret(tenant_b, "https://example.org/b")
    async with as_tenant(tenant_b.id):
        await database.execute(
            """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type, event_id,
                   payload, status, next_attempt_at, delivered_at)
               VALUES ($1, $2, $3, 'ping', $4, '{}', 'delivered', NULL, now())""",
            tenant_b.id,
            delivery_id := uuid4(),
            endpoint_id,
            uuid4(),
        )
    ctx = tenant_a.owner_ctx
    attempts = [
        get_endpoint(ctx, endpoint_id),
        update_endpoint(ctx, endpoint_id, EndpointFields("https://example.org/a")),
        set_enabled(ctx, endpoint_id, False),
        delete_endpoint(ctx, endpoint_id),
        reveal_secret(ctx, endpoint_id),
        rotate_secret(ctx, endpoint_id),
        send_test_event(ctx, endpoint_id),
        list_deliveries(ctx, endpoint_id),
        redeliver(ctx, endpoint_id, delivery_id),
        get_endpoint(ctx, "not-a-uuid"),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            await attempt
    own, _ = await endpoint_with_secret(tenant_a, "https://example.org/a")
    with pytest.raises(NotFound):  # B's delivery under A's endpoint
        await redeliver(ctx, own, delivery_id)
    assert (await get_endpoint(tenant_b.owner_ctx, endpoint_id)).enabled is True


async def test_every_change_is_audited(tenant_a: TenantFixture, queue: InProcessQueue) -> None:
    ctx = tenant_a.owner_ctx
    before = await audit_actions(tenant_a.id)
    endpoint_id = await create_endpoint(ctx, EndpointFields("https://example.org/h"))
    await update_endpoint(ctx, endpoint_id, EndpointFields("https://example.org/i"))
    await update_endpoint(ctx, endpoint_id, EndpointFields("https://example.org/i"))
    await reveal_secret(ctx, endpoint_id)
    await rotate_secret(ctx, endpoint_id)
    await set_enabled(ctx, endpoint_id, False)
    await set_enabled(ctx, endpoint_id, False)
    await set_enabled(ctx, endpoint_id, True)
    await delete_endpoint(ctx, endpoint_id)
    after = await audit_actions(tenant_a.id)
    assert after[len(before) :] == [
        "webhook.created",
        "webhook.updated",
        "webhook.secret_revealed",
        "webhook.secret_rotated",
        "webhook.disabled",
        "webhook.enabled",
        "webhook.deleted",
    ]


async def test_the_delivery_log_pages_newest_first(
    tenant_a: TenantFixture, queue: InProcessQueue
) -> None:
    endpoint_id, _ = await endpoint_with_secret(tenant_a, "https://example.org/log")
    async with as_tenant(tenant_a.id):
        for n in range(5):
            await database.execute(
                """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type,
                       event_id, payload, status, next_attempt_at, delivered_at, created_at)
                   VALUES ($1, $2, $3, 'ping', $4, '{}', 'delivered', NULL, now(), $5)""",
                tenant_a.id,
                uuid4(),
                endpoint_id,
                uuid4(),
                datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
            )
    first = await list_deliveries(tenant_a.owner_ctx, endpoint_id, limit=3)
    second = await list_deliveries(tenant_a.owner_ctx, endpoint_id, first.next_cursor, limit=3)
    assert all(isinstance(d, Delivery) for d in first.deliveries + second.deliveries)
    stamps = [d.created_at.minute for d in first.deliveries + second.deliveries]
    assert stamps == [4, 3, 2, 1, 0]
    assert second.next_cursor is None
    assert first.deliveries[0].status == "delivered"
    assert first.deliveries[0].redelivery_of is None
    with pytest.raises(Invalid):
        await list_deliveries(tenant_a.owner_ctx, endpoint_id, "forged!")


async def test_a_disabled_endpoint_gets_no_test_event_nor_redelivery(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    endpoint_id, _ = await endpoint_with_secret(tenant_a, receiver.url())
    delivery_id = await send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    await set_enabled(tenant_a.owner_ctx, endpoint_id, False)
    await make_due(tenant_a, delivery_id)
    await deliver_webhook({}, str(tenant_a.id), str(delivery_id))  # fails: disabled
    with pytest.raises(Conflict):
        await send_test_event(tenant_a.owner_ctx, endpoint_id)
    with pytest.raises(Conflict):
        await redeliver(tenant_a.owner_ctx, endpoint_id, delivery_id)


async def test_redelivering_sends_the_same_event_as_a_new_delivery(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    endpoint_id, _ = await endpoint_with_secret(tenant_a, receiver.url())
    first = await send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    with pytest.raises(Conflict):  # still being attempted
        await redeliver(tenant_a.owner_ctx, endpoint_id, first)
    await make_due(tenant_a, first)
    await deliver_webhook({}, str(tenant_a.id), str(first))
    again = await redeliver(tenant_a.owner_ctx, endpoint_id, first)
    await queue.drain()
    rows = {row["id"]: row for row in await deliveries(tenant_a)}
    assert rows[again]["status"] == "delivered"
    assert rows[again]["redelivery_of"] == first
    assert rows[again]["event_id"] == rows[first]["event_id"]
    assert [r.headers["jalon-delivery"] for r in receiver.requests] == [str(first)] * 2 + [
        str(again)
    ]
    assert receiver.requests[-1].json()["id"] == receiver.requests[0].json()["id"]


async def test_a_rotated_secret_signs_from_then_on(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    endpoint_id, old = await endpoint_with_secret(tenant_a, receiver.url())
    new = await rotate_secret(tenant_a.owner_ctx, endpoint_id)
    assert new != old
    assert new.startswith("whsec_")
    assert await reveal_secret(tenant_a.owner_ctx, endpoint_id) == new
    await send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    [request] = receiver.requests
    assert verify(new, request.headers["jalon-signature"], request.body)
    assert not verify(old, request.headers["jalon-signature"], request.body)
