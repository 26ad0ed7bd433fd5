"""Helpers of the listing tests (here and in tests/api): learners with one participation each,
written directly (`seed`), and a walk through every page of a listing (`every_page`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from campaigns.paging import Page
from core import database
from tests.conftest import TenantFixture
from tests.db import as_tenant

#: Seeded rows start here, long before anything the tests create through the service.
T0 = datetime(2021, 3, 2, 9, 0, tzinfo=UTC)
STATUSES = ("started", "completed", "shared")


async def seed(
    tenant: TenantFixture,
    campaign_id: UUID,
    count: int,
    *,
    prefix: str = "Learner",
    groups: tuple[str, ...] = (),
    same_time: bool = False,
) -> list[UUID]:
    """`count` learners, each with one participation: statuses cycle started, completed,
    shared; shared and completed ones have a result (levels by index). Rows are written
    directly (the test-taking path is tested elsewhere) an hour apart, or all at once."""
    ids = []
    async with as_tenant(tenant.id):
        for i in range(count):
            learner, participation = uuid4(), uuid4()
            status = STATUSES[i % 3]
            at = T0 if same_time else T0 + timedelta(hours=i)
            await database.execute(
                """INSERT INTO learner (tenant_id, id, name, email, external_id, groups,
                       created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                tenant.id,
                learner,
                f"{prefix} {i:03d}",
                f"{prefix.lower()}{i}@example.org",
                f"EXT-{i:03d}",
                [groups[i % len(groups)]] if groups else [],
                at,
            )
            await database.execute(
                """INSERT INTO participation (tenant_id, id, campaign_id, learner_id, attempt,
                       status, created_at, completed_at, shared_at)
                   VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8)""",
                tenant.id,
                participation,
                campaign_id,
                learner,
                status,
                at,
                None if status == "started" else at + timedelta(minutes=30),
                at + timedelta(days=1) if status == "shared" else None,
            )
            if status != "started":
                await database.execute(
                    """INSERT INTO result (tenant_id, id, participation_id, level, score,
                           competences) VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
                    tenant.id,
                    uuid4(),
                    participation,
                    i % 9,
                    10 * i,
                    json.dumps({"1.1": {"level": i % 9}, "1.2": {"level": (i + 1) % 9}}),
                )
            ids.append(participation)
    return ids


async def every_page(fetch_page: Any, limit: int) -> list[Page[Any]]:
    """Follow `next_cursor` from the first page to the last."""
    pages = [await fetch_page(None, limit)]
    while pages[-1].next_cursor:
        pages.append(await fetch_page(pages[-1].next_cursor, limit))
        assert len(pages) < 100
    return pages
