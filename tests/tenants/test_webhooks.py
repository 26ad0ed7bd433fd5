"""Outgoing webhooks: the outbox is written with the change, delivered after commit to a real
HTTP receiver on 127.0.0.1, signed, retried with back-off, and never crosses tenants."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from campaigns.participation.answering import answer, current_challenge
from campaigns.participation.landing import participant_context
from campaigns.participation.results import share
from campaigns.participation.start import start_or_resume
from campaigns.service import CampaignFields, close_campaign, create_campaign
from core import database, jobs
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.jobs import InProcessQueue
from tenants import webhooks
from tenants.context import Actor
from tenants.webhooks import EndpointFields
from tests.api.conftest import audit_actions
from tests.conftest import TenantFixture, make_user
from tests.db import as_tenant
from tests.tenants.receiver import Receiver, receiving, verify


@pytest.fixture
def queue(db: str) -> Iterator[InProcessQueue]:
    """Jobs in this process (the HTTP tests' app may have left a Redis queue in place)."""
    previous = jobs.get_queue()
    in_process = jobs.configure_queue(None)
    assert isinstance(in_process, InProcessQueue)
    yield in_process
    jobs.use_queue(previous)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as listening:
        yield listening


async def _endpoint(
    tenant: TenantFixture, url: str, events: tuple[str, ...] = webhooks.EVENT_TYPES
) -> tuple[UUID, str]:
    endpoint_id = await webhooks.create_endpoint(tenant.owner_ctx, EndpointFields(url, "", events))
    return endpoint_id, await webhooks.reveal_secret(tenant.owner_ctx, endpoint_id)


async def _deliveries(tenant: TenantFixture) -> list[dict[str, Any]]:
    async with as_tenant(tenant.id):
        return await database.fetch(
            "SELECT * FROM webhook_delivery WHERE tenant_id = $1 ORDER BY created_at, id",
            tenant.id,
        )


async def _make_due(tenant: TenantFixture, delivery_id: UUID) -> None:
    """Let the back-off pass (test set-up the service cannot do)."""
    async with as_tenant(tenant.id):
        await database.execute(
            """UPDATE webhook_delivery SET next_attempt_at = now() - interval '1 second'
               WHERE tenant_id = $1 AND id = $2""",
            tenant.id,
            delivery_id,
        )


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


# --- delivery ----------------------------------------------------------------------------


async def test_a_shared_participation_is_posted_signed_to_subscribed_endpoints(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    endpoint_id, secret = await _endpoint(tenant_a, receiver.url(), ("participation.shared",))
    campaign, email = await _shared_participation(tenant_a)
    await queue.drain()

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["jalon-event"] == "participation.shared"
    assert verify(secret, request.headers["jalon-signature"], request.body)
    assert not verify(webhooks.new_secret(), request.headers["jalon-signature"], request.body)
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

    [delivery] = await _deliveries(tenant_a)
    assert request.headers["jalon-delivery"] == str(delivery["id"])
    assert delivery["endpoint_id"] == endpoint_id
    assert str(delivery["event_id"]) == event["id"]
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["last_response_code"] == 200
    assert delivery["last_duration_ms"] >= 0
    assert delivery["next_attempt_at"] is None


async def test_closing_a_campaign_is_announced_to_its_subscribers_only(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    await _endpoint(tenant_a, receiver.url("/closed"), ("campaign.closed",))
    await _endpoint(tenant_a, receiver.url("/shared"), ("participation.shared",))
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
    endpoint_id, _ = await _endpoint(tenant_a, receiver.url())
    delivery_id = await webhooks.send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()

    [first] = await _deliveries(tenant_a)
    assert first["status"] == "pending"
    assert first["attempts"] == 1
    assert first["last_response_code"] == 500
    assert first["last_error"] == webhooks.NOT_2XX_ERROR
    wait = first["next_attempt_at"] - first["last_attempt_at"]
    assert timedelta(seconds=59) < wait < timedelta(seconds=70)

    # Not due yet: the sweep leaves it, and a stray job changes nothing.
    await webhooks.sweep_webhooks({"job_id": "early"})
    assert await webhooks.deliver_webhook({}, str(tenant_a.id), str(delivery_id)) == "skipped"
    await queue.drain()
    assert len(receiver.requests) == 1

    await _make_due(tenant_a, delivery_id)
    assert await webhooks.sweep_webhooks({"job_id": "due"}) >= 1
    await queue.drain()
    [second] = await _deliveries(tenant_a)
    assert second["status"] == "delivered"
    assert second["attempts"] == 2
    assert second["last_response_code"] == 200
    assert second["last_error"] is None
    assert [r.headers["jalon-delivery"] for r in receiver.requests] == [str(delivery_id)] * 2
    assert receiver.requests[0].json()["type"] == "ping"
    assert receiver.requests[0].body == receiver.requests[1].body


async def test_a_delivery_fails_for_good_after_the_last_attempt(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    receiver.statuses = [503] * webhooks.MAX_ATTEMPTS
    endpoint_id, _ = await _endpoint(tenant_a, receiver.url())
    delivery_id = await webhooks.send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    waits = []
    for _ in range(webhooks.MAX_ATTEMPTS - 1):
        [row] = await _deliveries(tenant_a)
        waits.append(row["next_attempt_at"] - row["last_attempt_at"])
        await _make_due(tenant_a, delivery_id)
        await webhooks.deliver_webhook({}, str(tenant_a.id), str(delivery_id))
    [row] = await _deliveries(tenant_a)
    assert row["status"] == "failed"
    assert row["attempts"] == webhooks.MAX_ATTEMPTS == 6
    assert row["next_attempt_at"] is None
    assert row["last_response_code"] == 503
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS
    for wait, expected in zip(waits, webhooks.BACKOFF, strict=True):
        assert expected <= wait < expected + timedelta(seconds=10)
    # Failed is final: a stray job tries nothing.
    assert await webhooks.deliver_webhook({}, str(tenant_a.id), str(delivery_id)) == "skipped"


async def test_an_unreachable_receiver_is_a_failed_attempt_not_a_crash(
    tenant_a: TenantFixture, queue: InProcessQueue
) -> None:
    async with receiving() as gone:
        url = gone.url()
    endpoint_id, _ = await _endpoint(tenant_a, url)
    await webhooks.send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    [row] = await _deliveries(tenant_a)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert row["last_response_code"] is None
    assert row["last_error"]


async def test_an_event_rolled_back_with_its_change_is_never_sent(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    await _endpoint(tenant_a, receiver.url())

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):  # noqa: PT012 -- the failure is inside the transaction
        async with as_tenant(tenant_a.id, tenant_a.owner.id):
            event_id = await webhooks.emit(
                tenant_a.owner_ctx, "campaign.closed", {"campaign": {"id": "x"}}
            )
            assert event_id is not None
            raise Abandoned()
    await queue.drain()
    assert await _deliveries(tenant_a) == []
    assert receiver.requests == []


async def test_tenant_b_never_receives_tenant_a_events(
    tenant_a: TenantFixture, tenant_b: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    await _endpoint(tenant_a, receiver.url("/a"))
    await _endpoint(tenant_b, receiver.url("/b"))
    async with as_tenant(tenant_a.id, tenant_a.owner.id):
        await webhooks.emit(tenant_a.owner_ctx, "campaign.closed", {"campaign": {"id": "a"}})
    await queue.drain()
    assert [r.path for r in receiver.requests] == ["/a"]
    assert await _deliveries(tenant_b) == []
    # Under A's tenant, B's endpoints and deliveries do not exist.
    async with as_tenant(tenant_a.id):
        seen = await database.fetch("SELECT DISTINCT tenant_id FROM webhook_endpoint")
    assert [row["tenant_id"] for row in seen] == [tenant_a.id]


async def test_disabled_endpoints_get_no_new_event_and_their_pending_ones_fail(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    endpoint_id, _ = await _endpoint(tenant_a, receiver.url())
    delivery_id = await webhooks.send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    await webhooks.set_enabled(tenant_a.owner_ctx, endpoint_id, False)
    async with as_tenant(tenant_a.id):
        assert await webhooks.emit(tenant_a.owner_ctx, "campaign.closed", {}) is None
    await _make_due(tenant_a, delivery_id)
    assert await webhooks.deliver_webhook({}, str(tenant_a.id), str(delivery_id)) == "failed"
    [row] = await _deliveries(tenant_a)
    assert row["last_error"] == webhooks.DISABLED_ERROR
    assert len(receiver.requests) == 1
    with pytest.raises(Conflict):
        await webhooks.send_test_event(tenant_a.owner_ctx, endpoint_id)
    with pytest.raises(Conflict):
        await webhooks.redeliver(tenant_a.owner_ctx, endpoint_id, delivery_id)


async def test_redelivering_sends_the_same_event_as_a_new_delivery(
    tenant_a: TenantFixture, queue: InProcessQueue, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    endpoint_id, _ = await _endpoint(tenant_a, receiver.url())
    first = await webhooks.send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    with pytest.raises(Conflict):  # still being attempted
        await webhooks.redeliver(tenant_a.owner_ctx, endpoint_id, first)
    await _make_due(tenant_a, first)
    await webhooks.deliver_webhook({}, str(tenant_a.id), str(first))
    again = await webhooks.redeliver(tenant_a.owner_ctx, endpoint_id, first)
    await queue.drain()
    rows = {row["id"]: row for row in await _deliveries(tenant_a)}
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
    endpoint_id, old = await _endpoint(tenant_a, receiver.url())
    new = await webhooks.rotate_secret(tenant_a.owner_ctx, endpoint_id)
    assert new != old
    assert new.startswith("whsec_")
    assert await webhooks.reveal_secret(tenant_a.owner_ctx, endpoint_id) == new
    await webhooks.send_test_event(tenant_a.owner_ctx, endpoint_id)
    await queue.drain()
    [request] = receiver.requests
    assert verify(new, request.headers["jalon-signature"], request.body)
    assert not verify(old, request.headers["jalon-signature"], request.body)


# --- the endpoints: rules, permissions, isolation ----------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_x
    assert webhooks.signature_header("whsec_x", b'{"a":1}', 1700000000) == (
        "t=1700000000,v1=b3438763ab46d9634b9844c8722818eaf523f803db1327484c6067462a5fd6d1"
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "https://user:pass@example.org/hook",
        "https://example.org:99999/hook",
        "https://exa mple.org/hook",
        "",
        "http://a/",  # shorter than any real receiver (and than the table allows)
        "http://xn--a.example/hook",  # IDNA the sender would refuse
        "http://☃☃.example/hook",
    ],
)
def test_only_plain_http_and_https_addresses_are_accepted(url: str) -> None:
    with pytest.raises(Invalid):
        webhooks.clean_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(Invalid):
        webhooks.clean_url(url, allow_private=False)
    assert webhooks.clean_url(url, allow_private=True) == url


def test_public_addresses_are_accepted() -> None:
    url = "https://hooks.example.org/jalon?team=hr"
    assert webhooks.clean_url(url, allow_private=False) == url
    assert webhooks.clean_url("http://93.184.216.34/x", allow_private=False)


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery() -> None:
    with pytest.raises(webhooks.RefusedDestination):
        await webhooks.check_destination("http://localhost:9/hook")


async def test_endpoint_fields_are_checked(tenant_a: TenantFixture) -> None:
    ctx = tenant_a.owner_ctx
    with pytest.raises(Invalid) as error:
        await webhooks.create_endpoint(ctx, EndpointFields("https://example.org", "", ()))
    assert error.value.field == "events"
    with pytest.raises(Invalid):
        await webhooks.create_endpoint(ctx, EndpointFields("https://example.org", "", ("ping",)))
    with pytest.raises(Invalid):
        await webhooks.create_endpoint(ctx, EndpointFields("https://example.org", "x" * 501))


async def test_members_cannot_manage_webhooks(tenant_a: TenantFixture) -> None:
    endpoint_id, _ = await _endpoint(tenant_a, "https://example.org/hook")
    member = tenant_a.member_ctx
    with pytest.raises(Forbidden):
        await webhooks.create_endpoint(member, EndpointFields("https://example.org/x"))
    with pytest.raises(Forbidden):
        await webhooks.list_endpoints(member)
    with pytest.raises(Forbidden):
        await webhooks.reveal_secret(member, endpoint_id)
    with pytest.raises(Forbidden):
        await webhooks.delete_endpoint(member, endpoint_id)


async def test_another_tenants_endpoints_and_deliveries_are_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture, queue: InProcessQueue
) -> None:
    endpoint_id, _ = await _endpoint(tenant_b, "https://example.org/b")
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
        webhooks.get_endpoint(ctx, endpoint_id),
        webhooks.update_endpoint(ctx, endpoint_id, EndpointFields("https://example.org/a")),
        webhooks.set_enabled(ctx, endpoint_id, False),
        webhooks.delete_endpoint(ctx, endpoint_id),
        webhooks.reveal_secret(ctx, endpoint_id),
        webhooks.rotate_secret(ctx, endpoint_id),
        webhooks.send_test_event(ctx, endpoint_id),
        webhooks.list_deliveries(ctx, endpoint_id),
        webhooks.redeliver(ctx, endpoint_id, delivery_id),
        webhooks.get_endpoint(ctx, "not-a-uuid"),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            await attempt
    own, _ = await _endpoint(tenant_a, "https://example.org/a")
    with pytest.raises(NotFound):  # B's delivery under A's endpoint
        await webhooks.redeliver(ctx, own, delivery_id)
    assert (await webhooks.get_endpoint(tenant_b.owner_ctx, endpoint_id))["enabled"] is True


async def test_every_change_is_audited(tenant_a: TenantFixture, queue: InProcessQueue) -> None:
    ctx = tenant_a.owner_ctx
    before = await audit_actions(tenant_a.id)
    endpoint_id = await webhooks.create_endpoint(ctx, EndpointFields("https://example.org/h"))
    await webhooks.update_endpoint(ctx, endpoint_id, EndpointFields("https://example.org/i"))
    await webhooks.update_endpoint(ctx, endpoint_id, EndpointFields("https://example.org/i"))
    await webhooks.reveal_secret(ctx, endpoint_id)
    await webhooks.rotate_secret(ctx, endpoint_id)
    await webhooks.set_enabled(ctx, endpoint_id, False)
    await webhooks.set_enabled(ctx, endpoint_id, False)
    await webhooks.set_enabled(ctx, endpoint_id, True)
    await webhooks.delete_endpoint(ctx, endpoint_id)
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
    endpoint_id, _ = await _endpoint(tenant_a, "https://example.org/log")
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
    first = await webhooks.list_deliveries(tenant_a.owner_ctx, endpoint_id, limit=3)
    second = await webhooks.list_deliveries(
        tenant_a.owner_ctx, endpoint_id, first.next_cursor, limit=3
    )
    stamps = [d["created_at"].minute for d in first.deliveries + second.deliveries]
    assert stamps == [4, 3, 2, 1, 0]
    assert second.next_cursor is None
    with pytest.raises(Invalid):
        await webhooks.list_deliveries(tenant_a.owner_ctx, endpoint_id, "forged!")


def test_the_sweep_runs_every_minute() -> None:
    assert jobs.PERIODIC["sweep_webhooks"] == set(range(60))
    assert "deliver_webhook" in jobs.REGISTRY


async def test_an_attempt_has_one_deadline_for_the_whole_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

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
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 1)
    try:
        started = time.monotonic()
        attempt = await webhooks.post(
            f"http://127.0.0.1:{port}/hook", "secret", uuid4(), "ping", b"{}"
        )
    finally:
        server.close()
    assert (attempt.response_code, attempt.error) == (None, webhooks.TIMEOUT_ERROR)
    assert not attempt.delivered
    assert time.monotonic() - started < 5  # cut at the deadline, not when the receiver stops


async def test_an_address_the_http_client_refuses_is_a_failed_attempt() -> None:
    attempt = await webhooks.post("http://☃☃.example/hook", "secret", uuid4(), "ping", b"{}")
    assert attempt.response_code is None
    assert attempt.error


async def test_finished_deliveries_leave_the_log_after_90_days(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    async def delivery(tenant: TenantFixture, endpoint: UUID, status: str, days: int) -> UUID:
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

    a = await webhooks.create_endpoint(tenant_a.owner_ctx, EndpointFields("https://a.example/h"))
    b = await webhooks.create_endpoint(tenant_b.owner_ctx, EndpointFields("https://b.example/h"))
    old_delivered = await delivery(tenant_a, a, "delivered", 91)
    old_failed = await delivery(tenant_a, a, "failed", 100)
    recent = await delivery(tenant_a, a, "delivered", 89)
    pending = await delivery(tenant_a, a, "pending", 120)
    theirs = await delivery(tenant_b, b, "failed", 95)
    assert await webhooks.purge_webhook_deliveries({}) >= 3
    remaining = await left(tenant_a)
    assert {recent, pending} <= remaining
    assert not {old_delivered, old_failed} & remaining
    assert theirs not in await left(tenant_b)  # every tenant is purged
