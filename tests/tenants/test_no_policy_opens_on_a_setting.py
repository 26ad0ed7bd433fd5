"""No policy opens every tenant's rows on a setting the runtime role can set (issue 13 §2.3,
ADR 0024): the webhook sweep reads due deliveries through a `SECURITY DEFINER` function owned
by the owner role, and a runtime connection that sets `jalon.sweep` sees nothing more."""

from __future__ import annotations

from uuid import UUID

from core import database
from core.jobs import InProcessQueue
from tenants.webhooks.delivery import dangerously_due_deliveries
from tenants.webhooks.endpoints import send_test_event
from tests.conftest import TenantFixture
from tests.tenants.webhooks.support import deliveries, endpoint_with_secret, make_due


async def _due_delivery(tenant: TenantFixture) -> UUID:
    endpoint_id, _ = await endpoint_with_secret(tenant, "http://127.0.0.1:9/hook")
    delivery_id = await send_test_event(tenant.owner_ctx, endpoint_id)
    await make_due(tenant, delivery_id)
    return delivery_id


async def test_the_sweep_reads_every_tenants_due_deliveries_ids_only(
    tenant_a: TenantFixture, tenant_b: TenantFixture, in_process: InProcessQueue
) -> None:
    a = await _due_delivery(tenant_a)
    b = await _due_delivery(tenant_b)
    async with database.global_transaction():
        due = await dangerously_due_deliveries()
    found = {(d.tenant_id, d.id) for d in due}
    assert (tenant_a.id, a) in found
    assert (tenant_b.id, b) in found
    assert [d["id"] for d in await deliveries(tenant_a)] == [a]


async def test_a_runtime_connection_setting_jalon_sweep_sees_no_tenant(
    tenant_a: TenantFixture, tenant_b: TenantFixture, in_process: InProcessQueue
) -> None:
    await _due_delivery(tenant_a)
    await _due_delivery(tenant_b)
    async with database.global_transaction():
        assert await database.fetch("SELECT current_setting('jalon.tenant_id', true) AS t") in (
            [{"t": None}],
            [{"t": ""}],
        )
        await database.execute("SET LOCAL jalon.sweep = 'webhook_delivery'")
        seen = await database.fetch("SELECT tenant_id FROM webhook_delivery")
    assert seen == []


async def test_the_function_is_the_owners_and_returns_ids_only(
    tenant_a: TenantFixture, in_process: InProcessQueue
) -> None:
    await _due_delivery(tenant_a)
    async with database.global_transaction():
        rows = await database.fetch("SELECT * FROM webhook_due_deliveries(5)")
        me = await database.fetch(
            """SELECT current_user AS runtime, pg_get_userbyid(proowner) AS owner,
                      prosecdef, proconfig FROM pg_proc WHERE proname = 'webhook_due_deliveries'"""
        )
    assert rows
    assert all(set(row.keys()) == {"tenant_id", "id", "attempts"} for row in rows)
    [function] = me
    assert function["owner"] != function["runtime"]
    assert function["prosecdef"]  # SECURITY DEFINER
    assert function["proconfig"] == ["search_path=pg_catalog, public"]
