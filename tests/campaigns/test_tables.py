"""The Piccolo mirrors say what the migration's SQL created, column for column."""

from __future__ import annotations

import pytest
from piccolo.table import Table

from campaigns.piccolo_app import APP_CONFIG
from core import database


@pytest.mark.parametrize("table", APP_CONFIG.table_classes, ids=lambda t: t._meta.tablename)
async def test_the_mirror_matches_the_schema(table: type[Table], db: str) -> None:
    async with database.global_transaction():
        rows = await database.fetch(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = $1""",
            table._meta.tablename,
        )
    assert {row["column_name"] for row in rows} == {
        column._meta.db_column_name for column in table._meta.columns
    }
