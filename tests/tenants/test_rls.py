"""Row-level security: the database itself refuses cross-tenant rows."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

from core import database
from tests.conftest import TenantFixture
from tests.db import as_tenant


async def test_every_tenant_table_forces_rls_with_a_policy(db: str) -> None:
    async with database.global_transaction():
        tables = await database.fetch(
            """SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                      (SELECT count(*) FROM pg_policies p
                       WHERE p.tablename = c.relname AND p.policyname = 'tenant_isolation'
                         AND p.qual LIKE '%jalon.tenant_id%'
                         AND p.with_check LIKE '%jalon.tenant_id%') AS policies
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                 AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                             AND a.attname = 'tenant_id' AND NOT a.attisdropped)"""
        )
    assert len(tables) >= 4, "expected the tenant-owned tables of the first migration"
    unprotected = [
        row["relname"]
        for row in tables
        if not (row["relrowsecurity"] and row["relforcerowsecurity"] and row["policies"] == 1)
    ]
    assert unprotected == []


async def test_tenant_tables_have_composite_keys_led_by_tenant_id(db: str) -> None:
    async with database.global_transaction():
        rows = await database.fetch(
            """SELECT c.conrelid::regclass::text AS table_name, c.contype,
                      (SELECT a.attname FROM pg_attribute a
                       WHERE a.attrelid = c.conrelid AND a.attnum = c.conkey[1]) AS first_column
               FROM pg_constraint c
               WHERE c.contype IN ('p', 'u') AND c.connamespace = 'public'::regnamespace
                 AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid
                             AND a.attname = 'tenant_id')"""
        )
    assert rows
    assert [row for row in rows if row["first_column"] != "tenant_id"] == []


async def test_runtime_role_is_neither_superuser_nor_owner(db: str) -> None:
    async with database.global_transaction():
        role = await database.fetch(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        owned = await database.fetch(
            "SELECT relname FROM pg_class WHERE relowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
    assert role == [{"rolsuper": False, "rolbypassrls": False}]
    assert owned == []


async def test_rows_of_another_tenant_are_invisible(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    async with as_tenant(tenant_a.id):
        rows = await database.fetch("SELECT tenant_id FROM membership")
    assert {row["tenant_id"] for row in rows} == {tenant_a.id}


async def test_no_tenant_set_sees_no_tenant_rows(tenant_a: TenantFixture) -> None:
    async with database.global_transaction():
        rows = await database.fetch("SELECT 1 FROM membership")
    assert rows == []


async def test_writing_a_row_for_another_tenant_is_refused(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with as_tenant(tenant_a.id):
            await database.execute(
                "INSERT INTO membership (tenant_id, id, user_id, role) "
                "VALUES ($1, $2, $3, 'admin')",
                tenant_b.id,
                uuid4(),
                tenant_a.owner.id,
            )


async def test_audit_log_refuses_updates_and_deletes(tenant_a: TenantFixture) -> None:
    with pytest.raises(asyncpg.PostgresError):
        async with as_tenant(tenant_a.id):
            await database.execute("DELETE FROM audit_event")


async def test_tenant_setting_is_transaction_local(tenant_a: TenantFixture) -> None:
    async with as_tenant(tenant_a.id):
        pass
    async with database.global_transaction():
        rows = await database.fetch("SELECT current_setting('jalon.tenant_id', true) AS t")
    assert rows[0]["t"] in ("", None)


async def test_tenant_indexes_lead_with_tenant_id(db: str) -> None:
    """Every index on a tenant-owned table starts with tenant_id (Citus co-location and RLS
    scans), except single-column lookups by a global id (e.g. a user's memberships)."""
    async with database.global_transaction():
        rows = await database.fetch(
            """SELECT t.relname AS table_name, i.relname AS index_name,
                      a.attname AS first_column, ix.indnatts AS columns
               FROM pg_index ix
               JOIN pg_class i ON i.oid = ix.indexrelid
               JOIN pg_class t ON t.oid = ix.indrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
               LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ix.indkey[0]
               WHERE EXISTS (SELECT 1 FROM pg_attribute c WHERE c.attrelid = t.oid
                             AND c.attname = 'tenant_id' AND NOT c.attisdropped)
                 AND t.relname <> 'organization'"""
        )
    wrong = [
        f"{row['table_name']}.{row['index_name']}"
        for row in rows
        if row["first_column"] != "tenant_id" and row["columns"] > 1
    ]
    assert rows
    assert wrong == []
