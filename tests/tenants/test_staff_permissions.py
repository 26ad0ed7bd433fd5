"""Staff roles and their permissions: one table, apart from tenant roles."""

from __future__ import annotations

import pytest

from core.errors import Invalid
from tenants.permissions import (
    STAFF_ROLE_PERMISSIONS,
    StaffPermission,
    StaffRole,
    permissions_of,
    staff_permissions_of,
    staff_roles_with,
)
from tenants.staff import staff_role


def test_every_staff_role_has_permissions_and_the_superadmin_all() -> None:
    assert set(STAFF_ROLE_PERMISSIONS) == set(StaffRole)
    assert staff_permissions_of("superadmin") == frozenset(StaffPermission)
    assert all(STAFF_ROLE_PERMISSIONS[role] for role in StaffRole)


def test_content_editors_triage_content_and_nothing_of_the_tenants() -> None:
    editor = staff_permissions_of("content_editor")
    assert StaffPermission.CONTENT_TRIAGE in editor
    assert StaffPermission.TENANTS_READ not in editor
    assert staff_roles_with(StaffPermission.CONTENT_TRIAGE) == {
        StaffRole.CONTENT_EDITOR,
        StaffRole.SUPERADMIN,
    }


def test_support_reads_tenants_but_changes_nothing() -> None:
    support = staff_permissions_of("support")
    assert support == {StaffPermission.TENANTS_READ}


def test_no_role_or_an_unknown_one_grants_nothing() -> None:
    assert staff_permissions_of(None) == frozenset()
    assert staff_permissions_of("owner") == frozenset()  # a tenant role is not a staff role
    assert permissions_of("superadmin") == frozenset()  # and the reverse


def test_only_a_staff_role_can_be_given() -> None:
    assert staff_role("support") is StaffRole.SUPPORT
    for wrong in ("owner", "Superadmin", "", "content-editor"):
        with pytest.raises(Invalid) as refused:
            staff_role(wrong)
        assert refused.value.field == "role"
