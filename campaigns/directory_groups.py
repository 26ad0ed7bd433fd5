"""Learner groups from the organization's directory: a person the directory provisioned (SCIM)
is filed under the learner groups their directory groups map to (`sso.scim`'s mappings).

`sso` comes before campaigns in the domain order and may not know learners, so campaigns
registers `file_learners` with it at import (`sso.scim.on_learner_groups_change`); the
participation start imports this module, so every process that serves participants or SCIM
has it registered. The rule, applied in the transaction of each change (ADR 0019, amendment
of 2026-12-04): a learner record's groups become its groups without any learner group a
mapping of the tenant targets (or targeted until this change), followed by the learner
groups mapped from the person's directory groups. Groups no mapping targets (a CSV import's)
are kept, in their order. A learner whose person the directory never provisioned is left
alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from core.database import execute
from sso.scim import (
    directory_learner_groups_sql,
    on_learner_groups_change,
    targeted_learner_groups_sql,
)
from tenants.context import TenantContext


def kept_groups_sql(groups: str, targeted: str) -> str:
    """SQL: the array `groups` without the learner groups in the array `targeted`, in order."""
    return (
        f"ARRAY(SELECT g FROM unnest({groups}) WITH ORDINALITY AS u(g, n) "  # noqa: S608
        f"WHERE g <> ALL({targeted}) ORDER BY n)"
    )


#: Every learner record of the tenant ($1) in scope filed again: `{scope}` picks the records
#: (by their `i.user_id`), $2 the learner groups withdrawn by this change, $3 the time. Only
#: records whose groups change are written.
_FILE_LEARNERS = """
UPDATE learner l SET groups = f.groups, updated_at = $3
FROM (
    SELECT i.id,
        {kept} || coalesce({mapped}, '{{}}'::text[]) AS groups
    FROM learner i
    WHERE i.tenant_id = $1 AND i.user_id IS NOT NULL AND {scope}
) f
WHERE l.tenant_id = $1 AND l.id = f.id AND l.groups IS DISTINCT FROM f.groups
"""


async def file_learners(
    ctx: TenantContext, account_ids: list[UUID] | None, withdrawn: tuple[str, ...]
) -> None:
    """File the learner records of `account_ids` (global accounts; None: every person the
    directory provisioned) under their mapped learner groups, as the module says. Runs in the
    caller's transaction, one statement."""
    if account_ids is None:
        scope = "i.user_id IN (SELECT du.user_id FROM directory_user du WHERE du.tenant_id = $1)"
        params: list[object] = []
    else:
        scope, params = "i.user_id = ANY($4)", [account_ids]
    targeted = f"({targeted_learner_groups_sql('$1')} || $2::text[])"
    await execute(
        _FILE_LEARNERS.format(
            kept=kept_groups_sql("i.groups", targeted),
            mapped=directory_learner_groups_sql("$1", "i.user_id"),
            scope=scope,
        ),
        ctx.tenant_id,
        list(withdrawn),
        datetime.now(UTC),
        *params,
    )


on_learner_groups_change(file_learners)
