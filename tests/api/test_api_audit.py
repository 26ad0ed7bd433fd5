"""`GET /api/v1/audit` (issue 14, defect 12): the `org:audit:read` scope reads the
organization's audit log, newest first, paged like the other listings and filtered like the
console's audit page; another organization's events never show; other scopes are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.database import tenant_transaction
from tenants import audit
from tenants.context import Actor, TenantContext
from tests.api.conftest import bearer, issue_token
from tests.conftest import TenantFixture


async def _record(ctx: TenantContext, action: str, **details: Any) -> None:
    async with tenant_transaction(ctx):
        await audit.record(ctx, action, "campaign", "c-1", **details)


async def _all(client: httpx.AsyncClient, token: str, **params: Any) -> list[dict[str, Any]]:
    """Every event, following `next_cursor` page after page."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/audit", params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        events.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return events


async def test_the_audit_log_pages_newest_first_and_stays_in_its_organization(
    client: httpx.AsyncClient, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    for n in range(5):
        await _record(tenant_a.owner_ctx, "campaign.closed", name=f"A{n}")
    await _record(tenant_b.owner_ctx, "campaign.closed", name="B's secret")
    token = await issue_token(tenant_a.owner_ctx, "org:audit:read")

    first = await client.get("/api/v1/audit", params={"limit": 2}, headers=bearer(token))
    assert first.status_code == 200
    body = first.json()
    assert len(body["items"]) == 2
    assert body["next_cursor"]
    events = await _all(client, token, limit=2)
    assert events[:2] == body["items"]
    stamps = [event["occurred_at"] for event in events]
    assert stamps == sorted(stamps, reverse=True)
    closed = [e for e in events if e["action"] == "campaign.closed"]
    assert [e["details"]["name"] for e in closed] == ["A4", "A3", "A2", "A1", "A0"]
    assert closed[0]["actor_label"] == tenant_a.owner.email
    assert closed[0]["actor_kind"] == "user"
    assert closed[0]["target_type"] == "campaign"
    assert "token.created" in {e["action"] for e in events}  # the token's own issue
    assert "B's secret" not in str(events)
    assert tenant_b.owner.email not in str(events)

    theirs = await _all(client, await issue_token(tenant_b.owner_ctx, "org:audit:read"))
    assert "A0" not in str(theirs)
    assert [e["details"].get("name") for e in theirs if e["action"] == "campaign.closed"] == [
        "B's secret"
    ]


async def test_the_filters_are_the_console_pages(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    robot = TenantContext(
        tenant=tenant_a.owner_ctx.tenant,
        actor=Actor(kind="api_token", user_id=None, label="Payroll sync"),
        permissions=tenant_a.owner_ctx.permissions,
    )
    await _record(robot, "member.invited", email="x@example.org")
    await _record(tenant_a.owner_ctx, "campaign.closed", name="Mine")
    token = await issue_token(tenant_a.owner_ctx, "org:audit:read")

    by_action = await _all(client, token, action="member.invited")
    assert [e["details"] for e in by_action] == [{"email": "x@example.org"}]
    by_actor = await _all(client, token, actor="payroll")
    assert {e["actor_label"] for e in by_actor} == {"Payroll sync"}
    today = datetime.now(UTC).astimezone(tenant_a.owner_ctx.tenant.zone).date()
    assert len(await _all(client, token, since=today.isoformat(), until=today.isoformat())) >= 2
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert await _all(client, token, since=tomorrow) == []


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"since": "03/12/2026"}, "since", "Enter a date as YYYY-MM-DD."),
        ({"until": ""}, "until", "Enter a date as YYYY-MM-DD."),
        ({"since": "2026-12-04", "until": "2026-12-01"}, "until", "The end date is before"),
        ({"limit": "0"}, None, None),
        ({"limit": "101"}, None, None),
        ({"cursor": "forged"}, "cursor", None),
        ({"actor": "x" * 201}, None, None),
    ],
)
async def test_bad_filters_are_refused_with_the_field(
    client: httpx.AsyncClient,
    tenant_a: TenantFixture,
    params: dict[str, str],
    field: str | None,
    message: str | None,
) -> None:
    token = await issue_token(tenant_a.owner_ctx, "org:audit:read")
    response = await client.get("/api/v1/audit", params=params, headers=bearer(token))
    assert response.status_code in (400, 422), response.text
    error = response.json()["error"]
    if field:
        assert error["field"] == field
    if message:
        assert message in error["message"]


async def test_other_scopes_and_no_token_are_refused(
    client: httpx.AsyncClient, tenant_a: TenantFixture
) -> None:
    token = await issue_token(tenant_a.owner_ctx, "org:members:read", "org:campaigns:read")
    assert (await client.get("/api/v1/audit", headers=bearer(token))).status_code == 403
    assert (await client.get("/api/v1/audit")).status_code == 401


async def test_the_endpoint_is_documented(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    operation = schema["paths"]["/api/v1/audit"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"cursor", "limit", "action", "actor", "since", "until"}
    assert "audit log" in operation["description"]
    assert {"200", "401", "403", "422"} <= set(operation["responses"])
