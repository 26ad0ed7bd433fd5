"""The tests' bulk seeding builds multi-row VALUES lists numbered row after row, and never
more parameters than PostgreSQL binds to one statement."""

from __future__ import annotations

import pytest

from tests.seeding import MAX_PARAMETERS, insert_sql


def test_the_parameters_are_numbered_row_after_row() -> None:
    assert insert_sql("learner", ("tenant_id", "id", "name"), 2) == (
        "INSERT INTO learner (tenant_id, id, name) VALUES ($1, $2, $3), ($4, $5, $6)"
    )


def test_a_statement_never_binds_more_than_postgresql_allows() -> None:
    columns = ("a", "b", "c", "d")
    most = MAX_PARAMETERS // len(columns)
    assert insert_sql("t", columns, most).endswith(f"${most * len(columns)})")
    for rows in (0, most + 1):
        with pytest.raises(ValueError, match="cannot insert"):
            insert_sql("t", columns, rows)
    with pytest.raises(ValueError, match="cannot insert"):
        insert_sql("t", (), 1)
