"""Delivering webhooks: the outbox is written with the change, delivered after commit to a
real HTTP receiver on 127.0.0.1, signed, retried with back-off, purged after 90 days, and never
crosses tenants."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from campaigns.campaign_fields import CampaignFields
from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.landing import participant_context
from campaigns.participation.results import share
from campaigns.participation.start import start_or_resume
from campaigns.service import close_campaign, create_campaign
from core import database, jobs
from core.jobs import InProcessQueue
from tenants.context import Actor
from tenants.webhooks import delivery
from tenants.webhooks.delivery import (
    BACKOFF,
    DISABLED_ERROR,
    MAX_ATTEMPTS,
    NOT_2XX_ERROR,
    TIMEOUT_ERROR,
    Attempt,
    HttpSender,
    InProcessSender,
    WebhookSender,
    answered,
    deliver_webhook,
    emit,
    new_secret,
    next_attempt,
    purge_webhook_deliveries,
    signature_header,
    signed_request,
    sweep_webhooks,
)
from tenants.webhooks.endpoints import (
    EndpointFields,
    create_endpoint,
    send_test_event,
    set_enabled,
)
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant
from tests.tenants.receiver import Receiver, receiving, verify
from tests.tenants.webhooks.support import deliveries, endpoint_with_secret, make_due


async def _shared_participation(tenant: TenantFixture) -> tuple[Any, str]:
    """A participant who took a campaign of `tenant` (skipping every question) and shared."""
    campaign = await create_campaign(
        tenant.owner_ctx, CampaignFields(name="Skills check", profile_key="digcomp")
    )
    user = await make_user("Paula Participant")
    ctx = participant_context(
        tenant.owner_ctx.tenant, Actor(kind="user", user_id=user.id, label=user.email)
    )
    started = await start_or_resume(ctx, campaign.id)
    view = await current_challenge(ctx, started.id)
    while view is not None:
        view = (await answer(ctx, started.id, view.challenge_id, skipped=True)).next_challenge
    await share(ctx, started.id, consent=True)
    return campaign, user.email


# --- the outbox, delivered to a real receiver --------------------------------------------


async def test_a_shared_participation_is_posted_signed_to_subscribed_endpoints(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    endpoint_id, secret = await endpoint_with_secret(
        tenant_a, receiver.url(), ("participation.shared",)
    )
    campaign, email = await _shared_participation(tenant_a)
    await queue.drain()

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["jalon-event"] == "participation.shared"
    assert verify(secret, request.headers["jalon-signature"], request.body)
    assert not verify(new_secret(), request.headers["jalon-signature"], request.body)
    stamp = int(request.headers["jalon-signature"].split(",")[0].removeprefix("t="))
    assert abs(stamp - time.time()) < 60
    event = request.json()
    assert event["type"] == "participation.shared"
    assert event["organization"] == {"id": str(tenant_a.id), "slug": tenant_a.slug}
    data = event["data"]
    assert data["campaign"] == {
        "id": str(campaign.id),
        "code": campaign.code,
        "name": "Skills check",
    }
    assert data["learner"]["email"] == email
    assert data["result"]["level"] == 0
    assert set(data["result"]["competences"]) == set(campaign.profile.competences)
    assert all(c == {"level": 0} for c in data["result"]["competences"].values())

    [row] = await deliveries(tenant_a)
    assert request.headers["jalon-delivery"] == str(row["id"])
    assert row["endpoint_id"] == endpoint_id
    assert str(row["event_id"]) == event["id"]
    assert row["status"] == "delivered"
    assert row["attempts"] == 1
    assert row["last_response_code"] == 200
    assert row["last_duration_ms"] >= 0
    assert row["next_attempt_at"] is None


async def test_closing_a_campaign_is_announced_to_its_subscribers_only(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    await endpoint_with_secret(tenant_a, receiver.url("/closed"), ("campaign.closed",))
    await endpoint_with_secret(tenant_a, receiver.url("/shared"), ("participation.shared",))
    campaign = await create_campaign(
        tenant_a.owner_ctx, CampaignFields(name="Closing", profile_key="digcomp")
    )
    await close_campaign(tenant_a.owner_ctx, campaign.id)
    await close_campaign(tenant_a.owner_ctx, campaign.id)  # already closed: no second event
    await queue.drain()

    [request] = receiver.requests
    assert request.path == "/closed"
    event = request.json()
    assert event["type"] == "campaign.closed"
    assert event["data"]["campaign"]["id"] == str(campaign.id)
    assert event["data"]["campaign"]["closed_at"]
    assert event["data"]["participations"] == 0


async def test_a_failed_attempt_is_retried_after_its_back_off_then_delivered(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    endpoint_id, _ = await endpoint_with_secret(tenant_a, receiver.url())
    delivery_id = await send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()

    [first] = await deliveries(tenant_a)
    assert first["status"] == "pending"
    assert first["attempts"] == 1
    assert first["last_response_code"] == 500
    assert first["last_error"] == NOT_2XX_ERROR
    assert first["delivered_at"] is None
    wait = first["next_attempt_at"] - first["last_attempt_at"]
    assert timedelta(seconds=59) < wait < timedelta(seconds=70)

    # Not due yet: the sweep leaves it, and a stray job changes nothing.
    await sweep_webhooks({"job_id": "early"})
    assert await deliver_webhook({}, str(tenant_a.id), str(delivery_id)) == "skipped"
    await queue.drain()
    assert len(receiver.requests) == 1

    await make_due(tenant_a, delivery_id)
    assert await sweep_webhooks({"job_id": "due"}) >= 1
    await queue.drain()
    [second] = await deliveries(tenant_a)
    assert second["status"] == "delivered"
    assert second["attempts"] == 2
    assert second["last_response_code"] == 200
    assert second["last_error"] is None
    # delivered when the answer came: after the attempt began, before the test read it
    assert second["last_attempt_at"] <= second["delivered_at"] <= datetime.now(UTC)
    assert [r.headers["jalon-delivery"] for r in receiver.requests] == [str(delivery_id)] * 2
    assert receiver.requests[0].json()["type"] == "ping"
    assert receiver.requests[0].body == receiver.requests[1].body


async def test_a_delivery_fails_for_good_after_the_last_attempt(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    receiver.statuses = [503] * MAX_ATTEMPTS
    endpoint_id, _ = await endpoint_with_secret(tenant_a, receiver.url())
    delivery_id = await send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    waits = []
    for _ in range(MAX_ATTEMPTS - 1):
        [row] = await deliveries(tenant_a)
        waits.append(row["next_attempt_at"] - row["last_attempt_at"])
        await make_due(tenant_a, delivery_id)
        await deliver_webhook({}, str(tenant_a.id), str(delivery_id))
    [row] = await deliveries(tenant_a)
    assert row["status"] == "failed"
    assert row["attempts"] == MAX_ATTEMPTS == 6
    assert row["next_attempt_at"] is None
    assert row["last_response_code"] == 503
    assert len(receiver.requests) == MAX_ATTEMPTS
    for wait, expected in zip(waits, BACKOFF, strict=True):
        assert expected <= wait < expected + timedelta(seconds=10)
    # Failed is final: a stray job tries nothing.
    assert await deliver_webhook({}, str(tenant_a.id), str(delivery_id)) == "skipped"


async def test_an_unreachable_receiver_is_a_failed_attempt_not_a_crash(
    tenant_a: TenantFixture, queue: InProcessQueue
) -> None:
    async with receiving() as gone:
        url = gone.url()
    endpoint_id, _ = await endpoint_with_secret(tenant_a, url)
    await send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    [row] = await deliveries(tenant_a)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert row["last_response_code"] is None
    assert row["last_error"]


async def test_an_event_rolled_back_with_its_change_is_never_sent(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    await endpoint_with_secret(tenant_a, receiver.url())

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):  # noqa: PT012 -- the failure is inside the transaction
        async with as_tenant(tenant_a.id, tenant_a.owner.id):
            event_id = await emit(tenant_a.owner_ctx, "campaign.closed", {"campaign": {"id": "x"}})
            assert event_id is not None
            raise Abandoned()
    await queue.drain()
    assert await deliveries(tenant_a) == []
    assert receiver.requests == []


async def test_an_event_nobody_registered_is_a_programming_error(
    tenant_a: TenantFixture, queue: InProcessQueue
) -> None:
    await endpoint_with_secret(tenant_a, "https://example.org/hook")
    async with as_tenant(tenant_a.id, tenant_a.owner.id):
        for unknown in ("campaign.deleted", "ping"):  # the test event is sent on demand only
            with pytest.raises(ValueError, match="unknown webhook event"):
                await emit(tenant_a.owner_ctx, unknown, {})
    assert await deliveries(tenant_a) == []


async def test_tenant_b_never_receives_tenant_a_events(
    tenant_a: TenantFixture, tenant_b: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    await endpoint_with_secret(tenant_a, receiver.url("/a"))
    await endpoint_with_secret(tenant_b, receiver.url("/b"))
    async with as_tenant(tenant_a.id, tenant_a.owner.id):
        await emit(tenant_a.owner_ctx, "campaign.closed", {"campaign": {"id": "a"}})
    await queue.drain()
    assert [r.path for r in receiver.requests] == ["/a"]
    assert await deliveries(tenant_b) == []
    # Under A's tenant, B's endpoints and deliveries do not exist.
    async with as_tenant(tenant_a.id):
        seen = await database.fetch("SELECT DISTINCT tenant_id FROM webhook_endpoint")
    assert [row["tenant_id"] for row in seen] == [tenant_a.id]


async def test_disabled_endpoints_get_no_new_event_and_their_pending_ones_fail(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    endpoint_id, _ = await endpoint_with_secret(tenant_a, receiver.url())
    delivery_id = await send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    await set_enabled(tenant_a.owner_ctx, endpoint_id, False)
    async with as_tenant(tenant_a.id):
        assert await emit(tenant_a.owner_ctx, "campaign.closed", {}) is None
    await make_due(tenant_a, delivery_id)
    assert await deliver_webhook({}, str(tenant_a.id), str(delivery_id)) == "failed"
    [row] = await deliveries(tenant_a)
    assert row["last_error"] == DISABLED_ERROR
    assert len(receiver.requests) == 1


# --- the senders -------------------------------------------------------------------------


def test_each_sender_is_a_webhook_sender() -> None:
    senders: list[WebhookSender] = [HttpSender(), InProcessSender()]
    assert all(callable(sender.send) for sender in senders)
    assert isinstance(delivery.get_sender(), HttpSender)  # the network, unless a test says


async def test_a_delivery_goes_through_the_sender_in_use(
    tenant_a: TenantFixture, queue: InProcessQueue, sender: InProcessSender
) -> None:
    sender.statuses = [410]
    endpoint_id, secret = await endpoint_with_secret(tenant_a, "https://example.org/hook")
    delivery_id = await send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    [request] = sender.sent
    assert request.url == "https://example.org/hook"
    assert request.headers["jalon-delivery"] == str(delivery_id)
    assert verify(secret, request.headers["jalon-signature"], request.body)
    [row] = await deliveries(tenant_a)
    assert (row["status"], row["last_response_code"], row["last_error"]) == (
        "pending",
        410,
        NOT_2XX_ERROR,
    )
    await make_due(tenant_a, delivery_id)
    assert await deliver_webhook({}, str(tenant_a.id), str(delivery_id)) == "delivered"
    assert [r.body for r in sender.sent] == [request.body] * 2


async def test_an_attempt_has_one_deadline_for_the_whole_request() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(40):  # one header byte at a time: each read is quick, the whole is not
            await writer.drain()
            writer.write(b"X")
            await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = signed_request(
        f"http://127.0.0.1:{port}/hook", "secret", uuid4(), "ping", b"{}", int(time.time())
    )
    try:
        started = time.monotonic()
        attempt = await HttpSender(timeout_seconds=1).send(request)
    finally:
        server.close()
    assert (attempt.response_code, attempt.error) == (None, TIMEOUT_ERROR)
    assert not attempt.delivered
    assert time.monotonic() - started < 5  # cut at the deadline, not when the receiver stops


async def test_an_address_the_http_client_refuses_is_a_failed_attempt() -> None:
    request = signed_request("http://☃☃.example/hook", "secret", uuid4(), "ping", b"{}", 0)
    attempt = await HttpSender().send(request)
    assert attempt.response_code is None
    assert attempt.error


async def test_the_in_process_sender_keeps_requests_and_answers_its_script() -> None:
    sender = InProcessSender([500, 302])
    request = signed_request("https://example.org/h", "s", uuid4(), "ping", b"{}", 0)
    outcomes = [await sender.send(request) for _ in range(3)]
    assert [(a.response_code, a.error) for a in outcomes] == [
        (500, NOT_2XX_ERROR),
        (302, NOT_2XX_ERROR),
        (200, None),
    ]
    assert sender.sent == [request] * 3


# --- signing, back-off: pure rules --------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_x
    assert signature_header("whsec_x", b'{"a":1}', 1700000000) == (
        "t=1700000000,v1=b3438763ab46d9634b9844c8722818eaf523f803db1327484c6067462a5fd6d1"
    )


def test_a_signed_request_carries_the_documented_headers() -> None:
    delivery_id = uuid4()
    request = signed_request(
        "https://example.org/h", "whsec_x", delivery_id, "campaign.closed", b'{"a":1}', 1700000000
    )
    assert request.url == "https://example.org/h"
    assert request.body == b'{"a":1}'
    assert dict(request.headers) == {
        "content-type": "application/json",
        "user-agent": "Jalon-Webhooks/1",
        "jalon-event": "campaign.closed",
        "jalon-delivery": str(delivery_id),
        "jalon-signature": signature_header("whsec_x", b'{"a":1}', 1700000000),
    }


def test_the_body_is_compact_sorted_utf8_json() -> None:
    assert delivery.encode_body({"b": "é", "a": [1, 2]}) == '{"a":[1,2],"b":"é"}'.encode()


def test_secrets_are_prefixed_and_fresh() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(first) > 40
    assert first != second


@pytest.mark.parametrize(
    ("code", "delivered", "error"),
    [
        (200, True, None),
        (204, True, None),
        (301, False, NOT_2XX_ERROR),
        (500, False, NOT_2XX_ERROR),
    ],
)
def test_only_a_2xx_answer_delivers(code: int, delivered: bool, error: str | None) -> None:
    attempt = answered(code, 12)
    assert (attempt.delivered, attempt.error, attempt.duration_ms) == (delivered, error, 12)
    assert not Attempt(None, "refused", 3).delivered


def test_the_back_off_grows_then_gives_up() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    waits = [next_attempt(n, now) for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits == [now + wait for wait in BACKOFF] + [None]
    minutes = [wait.total_seconds() / 60 for wait in BACKOFF]
    assert minutes == [1, 5, 30, 120, 720]


# --- the periodic jobs -------------------------------------------------------------------


def test_the_sweep_runs_every_minute() -> None:
    assert jobs.PERIODIC["sweep_webhooks"] == set(range(60))
    assert jobs.PERIODIC["purge_webhook_deliveries"] == {0}
    assert "deliver_webhook" in jobs.REGISTRY


async def test_finished_deliveries_leave_the_log_after_90_days(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    async def add(tenant: TenantFixture, endpoint: UUID, status: str, days: int) -> UUID:
        ident = uuid4()
        async with as_tenant(tenant.id):
            await database.execute(
                """INSERT INTO webhook_delivery (tenant_id, id, endpoint_id, event_type,
                       event_id, payload, status, next_attempt_at, delivered_at, created_at)
                   VALUES ($1, $2, $3, 'ping', $4, '{}', $5,
                       CASE WHEN $5 = 'pending' THEN now() + interval '1 hour' END,
                       CASE WHEN $5 = 'delivered' THEN now() END,
                       now() - make_interval(days => $6))""",
                tenant.id,
                ident,
                endpoint,
                uuid4(),
                status,
                days,
            )
        return ident

    async def left(tenant: TenantFixture) -> set[UUID]:
        async with as_tenant(tenant.id):
            rows = await database.fetch(
                "SELECT id FROM webhook_delivery WHERE tenant_id = $1", tenant.id
            )
        return {row["id"] for row in rows}

    a = await create_endpoint(tenant_a.owner_ctx, EndpointFields("https://a.example/h"))
    b = await create_endpoint(tenant_b.owner_ctx, EndpointFields("https://b.example/h"))
    old_delivered = await add(tenant_a, a, "delivered", 91)
    old_failed = await add(tenant_a, a, "failed", 100)
    recent = await add(tenant_a, a, "delivered", 89)
    pending = await add(tenant_a, a, "pending", 120)
    theirs = await add(tenant_b, b, "failed", 95)
    assert await purge_webhook_deliveries({}) >= 3
    remaining = await left(tenant_a)
    assert {recent, pending} <= remaining
    assert not {old_delivered, old_failed} & remaining
    assert theirs not in await left(tenant_b)  # every tenant is purged
