"""How tests open transactions: as one tenant (the system acting there, or a person), or with
no tenant at all, like the application's own `tenant_transaction` and `global_transaction`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from uuid import UUID

from piccolo.engine.postgres import PostgresTransaction

from core.database import SystemScope, tenant_transaction


def as_tenant(
    tenant_id: UUID | str, user_id: UUID | str | None = None
) -> AbstractAsyncContextManager[PostgresTransaction]:
    """A transaction inside `tenant_id`, acting as `user_id` when given (their own rows)."""
    person = None if user_id is None else UUID(str(user_id))
    return tenant_transaction(SystemScope(UUID(str(tenant_id)), person))
