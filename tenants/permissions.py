"""Permissions (`scope:resource:action`) and the one table mapping roles to them: a tenant's
roles (owner, admin, member) and, apart, our own staff's (back office)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Permission(StrEnum):
    ORGANIZATION_READ = "org:organization:read"
    ORGANIZATION_UPDATE = "org:organization:update"
    MEMBERS_READ = "org:members:read"
    MEMBERS_INVITE = "org:members:invite"
    MEMBERS_UPDATE = "org:members:update"
    MEMBERS_REMOVE = "org:members:remove"
    OWNERS_MANAGE = "org:owners:manage"
    AUDIT_READ = "org:audit:read"
    TOKENS_MANAGE = "org:tokens:manage"
    CAMPAIGNS_READ = "org:campaigns:read"
    CAMPAIGNS_MANAGE = "org:campaigns:manage"
    LEARNERS_IMPORT = "org:learners:import"
    #: Every background task of the organization (each person sees their own without it).
    TASKS_READ = "org:tasks:read"
    WEBHOOKS_MANAGE = "org:webhooks:manage"
    LEARNERS_READ = "org:learners:read"
    RESULTS_READ = "org:results:read"
    #: Identity-provider connections, verified domains, the sign-in policy and SCIM tokens.
    SSO_MANAGE = "org:sso:manage"
    #: The subscription, seats, invoices and billing details (admins and owners only).
    BILLING_READ = "org:billing:read"
    BILLING_MANAGE = "org:billing:manage"


_MEMBER = frozenset(
    {
        Permission.ORGANIZATION_READ,
        Permission.MEMBERS_READ,
        Permission.CAMPAIGNS_READ,
        # The campaign dashboard shows every member who took part and the results they shared.
        Permission.LEARNERS_READ,
        Permission.RESULTS_READ,
    }
)
_ADMIN = _MEMBER | {
    Permission.CAMPAIGNS_MANAGE,
    Permission.LEARNERS_IMPORT,
    Permission.ORGANIZATION_UPDATE,
    Permission.MEMBERS_INVITE,
    Permission.MEMBERS_UPDATE,
    Permission.MEMBERS_REMOVE,
    Permission.AUDIT_READ,
    Permission.TOKENS_MANAGE,
    Permission.WEBHOOKS_MANAGE,
    Permission.TASKS_READ,
    Permission.SSO_MANAGE,
    Permission.BILLING_READ,
    Permission.BILLING_MANAGE,
}
_OWNER = _ADMIN | {Permission.OWNERS_MANAGE}

#: The one place roles meet permissions.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(_OWNER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.MEMBER: _MEMBER,
}

#: Scopes an API token may carry (a token never manages tokens or owners).
TOKEN_SCOPES: frozenset[Permission] = frozenset(
    {
        Permission.ORGANIZATION_READ,
        Permission.MEMBERS_READ,
        Permission.MEMBERS_INVITE,
        Permission.MEMBERS_UPDATE,
        Permission.MEMBERS_REMOVE,
        Permission.AUDIT_READ,
        Permission.CAMPAIGNS_READ,
        Permission.LEARNERS_READ,
        Permission.RESULTS_READ,
    }
)


def permissions_of(role: str) -> frozenset[Permission]:
    """The permissions granted by `role` (none for an unknown role)."""
    try:
        return ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return frozenset()


class StaffRole(StrEnum):
    """Our own staff's roles: separate from any tenant role, held in `staff_member`."""

    SUPERADMIN = "superadmin"
    ACCOUNT_MANAGER = "account_manager"
    SUPPORT = "support"
    CONTENT_EDITOR = "content_editor"


class StaffPermission(StrEnum):
    TENANTS_READ = "staff:tenants:read"
    TENANTS_MANAGE = "staff:tenants:manage"
    BILLING_MANAGE = "staff:billing:manage"
    CONTENT_TRIAGE = "staff:content:triage"
    STAFF_MANAGE = "staff:staff:manage"


_SUPPORT = frozenset({StaffPermission.TENANTS_READ})
_ACCOUNT_MANAGER = _SUPPORT | {StaffPermission.TENANTS_MANAGE, StaffPermission.BILLING_MANAGE}
_CONTENT_EDITOR = frozenset({StaffPermission.CONTENT_TRIAGE})

#: The one place staff roles meet staff permissions.
STAFF_ROLE_PERMISSIONS: dict[StaffRole, frozenset[StaffPermission]] = {
    StaffRole.SUPERADMIN: frozenset(StaffPermission),
    StaffRole.ACCOUNT_MANAGER: frozenset(_ACCOUNT_MANAGER),
    StaffRole.SUPPORT: _SUPPORT,
    StaffRole.CONTENT_EDITOR: _CONTENT_EDITOR,
}


def staff_permissions_of(role: str | None) -> frozenset[StaffPermission]:
    """The permissions of staff `role` (none for no role or an unknown one)."""
    try:
        return STAFF_ROLE_PERMISSIONS[StaffRole(role or "")]
    except ValueError:
        return frozenset()


def staff_roles_with(permission: StaffPermission) -> frozenset[StaffRole]:
    """The staff roles that hold `permission`."""
    return frozenset(role for role, held in STAFF_ROLE_PERMISSIONS.items() if permission in held)
