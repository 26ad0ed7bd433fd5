"""Just-in-time provisioning: who a proven identity signs in as, and what it may create."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import pytest

from core.database import execute, fetch, global_transaction
from sso.errors import SignInRefused
from sso.identity import ProvenIdentity
from sso.provisioning import admit, record_refusal
from tenants.accounts import create_user, find_user_by_email
from tenants.invitations import invite
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso.seeding import add_connection, add_verified_domain, unique_domain


def _identity(
    tenant_id: UUID,
    connection_id: UUID,
    email: str,
    *,
    verified: bool = True,
    groups: tuple[str, ...] = (),
    claims: dict[str, object] | None = None,
) -> ProvenIdentity:
    return ProvenIdentity(
        tenant_id=tenant_id,
        connection_id=connection_id,
        subject=f"sub-{uuid4().hex[:8]}",
        email=email,
        email_verified=verified,
        given_name="Ada",
        family_name="Lovelace",
        groups=groups,
        claims=claims or {},
    )


async def _role_of(tenant_id: UUID, user_id: UUID) -> str | None:
    async with as_tenant(tenant_id):
        rows = await fetch(
            "SELECT role FROM membership WHERE tenant_id = $1 AND user_id = $2",
            tenant_id,
            user_id,
        )
    return rows[0]["role"] if rows else None


async def _actions(tenant_id: UUID, action: str) -> list[dict[str, object]]:
    async with as_tenant(tenant_id):
        rows = await fetch(
            "SELECT details FROM audit_event WHERE tenant_id = $1 AND action = $2 "
            "ORDER BY occurred_at",
            tenant_id,
            action,
        )
    return [json.loads(row["details"]) for row in rows]


async def test_first_sign_in_from_a_verified_domain_creates_the_account_and_membership(
    tenant_a: TenantFixture,
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection = await add_connection(tenant_a.id)
    email = f"ada@{domain}"

    admission = await admit(_identity(tenant_a.id, connection, email))

    assert admission.account_created
    assert admission.membership_created
    assert admission.role == "member"
    account = await find_user_by_email(email)
    assert account is not None
    assert account.id == admission.user.id
    assert account.email_verified
    assert account.name == "Ada Lovelace"
    assert await _role_of(tenant_a.id, account.id) == "member"
    async with global_transaction():
        rows = await fetch("SELECT password_hash FROM user_account WHERE id = $1", account.id)
    assert rows[0]["password_hash"] is None
    signed_in = await _actions(tenant_a.id, "sso.sign_in")
    assert signed_in[-1]["email"] == email
    assert (await _actions(tenant_a.id, "sso.account_created"))[-1]["email"] == email


async def test_a_second_sign_in_finds_the_same_account_and_creates_nothing(
    tenant_a: TenantFixture,
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection = await add_connection(tenant_a.id)
    first = await admit(_identity(tenant_a.id, connection, f"bob@{domain}"))
    again = await admit(_identity(tenant_a.id, connection, f"BOB@{domain}"))
    assert again.user.id == first.user.id
    assert not again.account_created
    assert not again.membership_created
    assert again.membership_id == first.membership_id


async def test_groups_map_to_a_role_and_the_default_role_applies_otherwise(
    tenant_a: TenantFixture,
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection = await add_connection(
        tenant_a.id, role_mapping={"jalon-admins": "admin"}, default_role="member"
    )
    admin = await admit(
        _identity(tenant_a.id, connection, f"boss@{domain}", groups=("staff", "jalon-admins"))
    )
    plain = await admit(_identity(tenant_a.id, connection, f"crew@{domain}", groups=("staff",)))
    assert admin.role == "admin"
    assert plain.role == "member"


async def test_a_group_mapping_updates_a_members_role_but_never_an_owners(
    tenant_a: TenantFixture,
) -> None:
    connection = await add_connection(tenant_a.id, role_mapping={"jalon-admins": "admin"})
    promoted = await admit(
        _identity(tenant_a.id, connection, tenant_a.member.email, groups=("jalon-admins",))
    )
    assert promoted.role == "admin"
    assert await _role_of(tenant_a.id, tenant_a.member.id) == "admin"
    owner = await admit(
        _identity(tenant_a.id, connection, tenant_a.owner.email, groups=("jalon-admins",))
    )
    assert owner.role == "owner"


async def test_an_email_outside_the_verified_domains_gets_no_account(
    tenant_a: TenantFixture,
) -> None:
    connection = await add_connection(tenant_a.id)
    email = f"stranger@{unique_domain('elsewhere')}"
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, connection, email))
    assert refused.value.reason == "provisioning.domain"
    assert await find_user_by_email(email) is None


async def test_a_domain_verified_by_another_organization_does_not_count(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_b.id, domain)
    connection = await add_connection(tenant_a.id)
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, connection, f"eve@{domain}"))
    assert refused.value.reason == "provisioning.domain"


async def test_an_existing_member_outside_the_verified_domains_may_sign_in(
    tenant_a: TenantFixture,
) -> None:
    connection = await add_connection(tenant_a.id)
    admission = await admit(_identity(tenant_a.id, connection, tenant_a.member.email))
    assert admission.user.id == tenant_a.member.id
    assert admission.role == "member"
    assert not admission.account_created
    assert not admission.membership_created


async def test_an_existing_account_that_is_no_member_of_the_tenant_is_refused(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    connection = await add_connection(tenant_a.id)
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, connection, tenant_b.member.email))
    assert refused.value.reason == "provisioning.domain"
    assert await _role_of(tenant_a.id, tenant_b.member.id) is None


async def test_an_unverified_email_never_links_to_an_existing_account(
    tenant_a: TenantFixture,
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection = await add_connection(tenant_a.id)
    existing = await create_user(f"carol@{domain}", "Carol", "correct horse battery", "en")
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, connection, existing.email, verified=False))
    assert refused.value.reason == "provisioning.unverified_email"
    assert await _role_of(tenant_a.id, existing.id) is None
    # The member's own account too: the provider must vouch for the address.
    with pytest.raises(SignInRefused):
        await admit(_identity(tenant_a.id, connection, tenant_a.member.email, verified=False))


async def test_an_unverified_email_in_a_verified_domain_gets_an_unverified_account(
    tenant_a: TenantFixture,
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection = await add_connection(tenant_a.id)
    admission = await admit(_identity(tenant_a.id, connection, f"dan@{domain}", verified=False))
    assert admission.account_created
    assert not admission.user.email_verified


async def test_an_invited_person_joins_with_the_invited_role(
    tenant_a: TenantFixture, settings: object
) -> None:
    connection = await add_connection(tenant_a.id)
    email = f"guest-{uuid4().hex[:6]}@{unique_domain('partner')}"
    await invite(tenant_a.owner_ctx, email, "admin", settings)  # type: ignore[arg-type]
    admission = await admit(_identity(tenant_a.id, connection, email))
    assert admission.account_created
    assert admission.membership_created
    assert admission.role == "admin"
    async with as_tenant(tenant_a.id):
        rows = await fetch(
            "SELECT accepted_by FROM invitation WHERE tenant_id = $1 AND lower(email) = $2",
            tenant_a.id,
            email.lower(),
        )
    assert rows[0]["accepted_by"] == admission.user.id


async def test_an_invited_person_whose_email_the_provider_did_not_verify_is_refused(
    tenant_a: TenantFixture, settings: object
) -> None:
    connection = await add_connection(tenant_a.id)
    email = f"guest-{uuid4().hex[:6]}@{unique_domain('partner')}"
    await invite(tenant_a.owner_ctx, email, "member", settings)  # type: ignore[arg-type]
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, connection, email, verified=False))
    assert refused.value.reason == "provisioning.unverified_email"
    assert await find_user_by_email(email) is None


async def test_a_campaign_sign_in_creates_the_account_but_no_membership(
    tenant_a: TenantFixture,
) -> None:
    domain = unique_domain()
    await add_verified_domain(tenant_a.id, domain)
    connection = await add_connection(tenant_a.id, external_id_claim="employee_number")
    admission = await admit(
        _identity(tenant_a.id, connection, f"eli@{domain}", claims={"employee_number": 4711}),
        campaign=True,
    )
    assert admission.account_created
    assert not admission.membership_created
    assert admission.membership_id is None
    assert admission.external_id == "4711"
    assert await _role_of(tenant_a.id, admission.user.id) is None


async def test_a_disabled_connection_or_a_suspended_organization_admits_nobody(
    tenant_a: TenantFixture,
) -> None:
    disabled = await add_connection(tenant_a.id, enabled=False)
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, disabled, tenant_a.member.email))
    assert refused.value.reason == "provisioning.connection"
    enabled = await add_connection(tenant_a.id)
    async with global_transaction():
        await execute("UPDATE organization SET status = 'suspended' WHERE id = $1", tenant_a.id)
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, enabled, tenant_a.member.email))
    assert refused.value.reason == "provisioning.organization"


async def test_a_connection_of_another_tenant_admits_nobody(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    theirs = await add_connection(tenant_b.id)
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, theirs, tenant_a.member.email))
    assert refused.value.reason == "provisioning.connection"


async def test_a_refusal_is_recorded_with_its_reason_in_the_tenants_log(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    connection = await add_connection(tenant_a.id)
    await record_refusal(
        tenant_a.id, connection, "oidc.nonce", "nonce mismatch", email="x@corp.example"
    )
    refused = await _actions(tenant_a.id, "sso.refused")
    assert refused[-1]["reason"] == "oidc.nonce"
    assert refused[-1]["detail"] == "nonce mismatch"
    assert await _actions(tenant_b.id, "sso.refused") == []


async def test_a_suspended_member_is_refused(tenant_a: TenantFixture) -> None:
    connection = await add_connection(tenant_a.id)
    async with as_tenant(tenant_a.id):
        await execute(
            "UPDATE membership SET suspended_at = now() WHERE tenant_id = $1 AND user_id = $2",
            tenant_a.id,
            tenant_a.member.id,
        )
    with pytest.raises(SignInRefused) as refused:
        await admit(_identity(tenant_a.id, connection, tenant_a.member.email))
    assert refused.value.reason == "provisioning.suspended"
