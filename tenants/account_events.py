"""What a person does to their own (global) account, told to the organizations they belong
to: each one's audit log gets the event, so that its owners see, say, that a member's
password changed. A person who belongs to no organization (a participant) has no audit log
to write to: their account's change is told to them by mail (`tenants.accounts`).

The events are written in the transaction of the change itself: the change and its events
commit together, or neither does."""

from __future__ import annotations

from core.database import dangerously_switch_tenant, fetch
from tenants import audit
from tenants.accounts import UserAccount
from tenants.context import Actor, TenantContext
from tenants.organizations import summary, summary_columns

#: The organizations a person is an active member of (closed ones and suspended memberships
#: aside), read through `own_rows`, as `summary` wants them.
_MY_ORGANIZATIONS = f"""
SELECT {summary_columns("o")}
FROM membership m JOIN organization o ON o.id = m.tenant_id
WHERE m.user_id = $1 AND m.suspended_at IS NULL AND o.status <> 'closed'
ORDER BY o.id
"""  # noqa: S608 - constant columns


async def record_in_my_organizations(user: UserAccount, actor: Actor, action: str) -> int:
    """Append `action` about `user` to the audit log of each organization they are an active
    member of, in the open transaction: the global one, acting as `user`, in which their
    account changed. It switches that transaction's tenant to each organization in turn
    (row-level security checks each event's tenant), so it comes last in it. How many logs
    got it."""
    organizations = await fetch(_MY_ORGANIZATIONS, user.id)
    for row in organizations:
        await dangerously_switch_tenant(row["id"], user.id)
        ctx = TenantContext(tenant=summary(row), actor=actor)
        await audit.record(ctx, action, "user", user.id, email=user.email)
    return len(organizations)


async def record_password_change(user: UserAccount, actor: Actor) -> int:
    """`account.password_changed` in each of the person's organizations' audit logs, in the
    transaction that changed the password (`tenants.accounts.change_password`'s `record`)."""
    return await record_in_my_organizations(user, actor, "account.password_changed")
