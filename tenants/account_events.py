"""What a person does to their own (global) account, told to the organizations they belong
to: each one's audit log gets the event, so that its owners see, say, that a member's
password changed. A person who belongs to no organization (a participant) has no audit log
to write to: their account's change is told to them by mail (`tenants.accounts`)."""

from __future__ import annotations

from core.database import tenant_transaction
from core.errors import NotFound
from tenants import audit
from tenants.accounts import UserAccount
from tenants.context import Actor
from tenants.organizations import member_context, my_organizations


async def record_in_my_organizations(user: UserAccount, actor: Actor, action: str) -> int:
    """Append `action` about `user` to the audit log of each organization they are an active
    member of (one transaction each); how many logs got it."""
    recorded = 0
    for organization in await my_organizations(user.id):
        try:
            ctx = await member_context(organization.slug, user, actor)
        except NotFound:  # closed or left meanwhile
            continue
        async with tenant_transaction(ctx):
            await audit.record(ctx, action, "user", user.id, email=user.email)
        recorded += 1
    return recorded


async def record_password_change(user: UserAccount, actor: Actor) -> int:
    """`account.password_changed` in each of the person's organizations' audit logs."""
    return await record_in_my_organizations(user, actor, "account.password_changed")
