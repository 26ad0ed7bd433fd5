"""Who acts, for which tenant, with which permissions: what every service takes first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import Forbidden
from tenants.permissions import Permission, StaffPermission

ActorKind = Literal["user", "api_token", "staff", "system"]


@dataclass(frozen=True)
class Actor:
    """The person or program behind a request, as the audit log records it."""

    kind: ActorKind
    user_id: UUID | None = None
    label: str = ""
    ip: str | None = None
    user_agent: str = ""
    #: why a staff member acts (asked for every sensitive back-office action), recorded with
    #: what they do
    reason: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind="system", label=label)


@dataclass(frozen=True)
class TenantSummary:
    """What requests need to know of an organization, loaded once per request."""

    id: UUID
    slug: str
    name: str
    status: str
    default_locale: str
    timezone: str
    brand_colour: str | None
    has_logo: bool

    @property
    def zone(self) -> ZoneInfo:
        """The organization's time zone; UTC when this machine does not know its name."""
        try:
            return ZoneInfo(self.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


@dataclass(frozen=True)
class TenantContext:
    """An actor acting inside one tenant, with the permissions they hold there."""

    tenant: TenantSummary
    actor: Actor
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    role: str | None = None
    #: a staff member viewing the tenant read-only (impersonation): its transactions are
    #: `READ ONLY`, so the database itself refuses any write made on its behalf
    read_only: bool = False

    @property
    def tenant_id(self) -> UUID:
        return self.tenant.id

    @property
    def user_id(self) -> UUID | None:
        """The acting person (None for an API token or the system): their own rows are
        readable in the tenant's transactions."""
        return self.actor.user_id

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        """Raise `Forbidden` unless the actor holds `permission` here."""
        if permission not in self.permissions:
            raise Forbidden()


@dataclass(frozen=True)
class StaffContext:
    """One of our staff acting in the back office, with the permissions of their staff role.

    It opens no tenant: reading across tenants goes through `dangerously_*` functions that
    take it, and work inside a tenant through that tenant's own context.
    """

    actor: Actor
    role: str
    permissions: frozenset[StaffPermission] = field(default_factory=frozenset)

    @property
    def user_id(self) -> UUID | None:
        return self.actor.user_id

    def can(self, permission: StaffPermission) -> bool:
        return permission in self.permissions

    def require(self, permission: StaffPermission) -> None:
        """Raise `Forbidden` unless the staff member holds `permission`."""
        if permission not in self.permissions:
            raise Forbidden()
