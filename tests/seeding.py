"""Bulk seeding for tests: many rows written in few statements, the way Citus accepts under
row-level security (ADR 0002): multi-row `VALUES` lists of parameters, in batches under
PostgreSQL's parameter limit. `INSERT … SELECT FROM generate_series(…)` or `unnest(…)` would
be one statement, but Citus runs it as a COPY, which row-level security refuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core import database

#: The most parameters PostgreSQL binds to one statement.
MAX_PARAMETERS = 32_767


def insert_sql(table: str, columns: Sequence[str], rows: int) -> str:
    """`INSERT INTO table (columns) VALUES (…), (…)` for `rows` rows, their parameters
    numbered row after row from $1."""
    width = len(columns)
    if not columns or not 1 <= rows <= MAX_PARAMETERS // width:
        raise ValueError(f"cannot insert {rows} rows of {width} columns in one statement")
    values = ", ".join(
        "(" + ", ".join(f"${i * width + k + 1}" for k in range(width)) + ")" for i in range(rows)
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}"  # noqa: S608 - names from the tests


async def insert_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert `rows` (values in the order of `columns`) into `table` in the current
    transaction: as few statements as the parameter limit allows."""
    per_statement = MAX_PARAMETERS // max(len(columns), 1)
    for start in range(0, len(rows), per_statement):
        batch = rows[start : start + per_statement]
        await database.execute(
            insert_sql(table, columns, len(batch)), *(value for row in batch for value in row)
        )
