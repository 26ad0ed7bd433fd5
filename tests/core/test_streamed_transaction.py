"""`streamed_tenant_transaction`: one transaction for a response streamed after its handler
returned. Its work runs a bounded number of items ahead of the reader; a reader that stops
early ends it with a commit (what was sent is recorded); a failure while producing rolls it
back and reaches the reader."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from uuid import UUID, uuid4

import pytest

from core import database
from core.database import STREAM_BUFFER, SystemScope, execute, streamed_tenant_transaction
from tests.conftest import TenantFixture
from tests.db import as_tenant


async def _record(tenant_id: UUID, action: str) -> None:
    await execute(
        "INSERT INTO audit_event (tenant_id, id, actor_kind, action) VALUES ($1, $2, 'system', $3)",
        tenant_id,
        uuid4(),
        action,
    )


async def _recorded(tenant_id: UUID, action: str) -> int:
    async with as_tenant(tenant_id):
        rows = await database.fetch(
            "SELECT count(*) AS n FROM audit_event WHERE tenant_id = $1 AND action = $2",
            tenant_id,
            action,
        )
    count: int = rows[0]["n"]
    return count


async def test_a_reader_that_stops_early_stops_the_work_and_commits(
    tenant_a: TenantFixture,
) -> None:
    produced: list[int] = []

    async def prepare() -> str:
        await _record(tenant_a.id, "test.stream_stopped")
        return "head"

    async def produce(head: str) -> AsyncGenerator[int, None]:
        for number in range(10 * STREAM_BUFFER):
            produced.append(number)
            yield number

    head, items = await streamed_tenant_transaction(SystemScope(tenant_a.id), prepare, produce)
    assert head == "head"
    assert await anext(items) == 0
    await items.aclose()
    # The work ran a buffer ahead of the reader at most, then stopped, and committed.
    assert len(produced) <= STREAM_BUFFER + 2
    assert await _recorded(tenant_a.id, "test.stream_stopped") == 1


async def test_a_failure_while_producing_rolls_back_and_reaches_the_reader(
    tenant_a: TenantFixture,
) -> None:
    async def prepare() -> None:
        await _record(tenant_a.id, "test.stream_failed")

    async def produce(head: None) -> AsyncGenerator[int, None]:
        yield 1
        raise ValueError("the rows could not be read")

    _, items = await streamed_tenant_transaction(SystemScope(tenant_a.id), prepare, produce)
    with pytest.raises(ValueError, match="could not be read"):
        assert [item async for item in items] == [1]
    assert await _recorded(tenant_a.id, "test.stream_failed") == 0


async def test_a_failure_while_preparing_is_raised_before_any_item(
    tenant_a: TenantFixture,
) -> None:
    async def prepare() -> None:
        await _record(tenant_a.id, "test.stream_refused")
        raise LookupError("no such thing here")

    async def produce(head: None) -> AsyncGenerator[int, None]:
        yield 1

    with pytest.raises(LookupError):
        await streamed_tenant_transaction(SystemScope(tenant_a.id), prepare, produce)
    assert await _recorded(tenant_a.id, "test.stream_refused") == 0
