"""Identity-provider connections: managed by admins, audited without secrets, isolated per
organization, secrets encrypted at rest and re-encrypted by `jalon sso rotate-keys`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys

import pytest

from core import database
from core.errors import Forbidden, Invalid, NotFound
from core.secrets import Keyring
from core.settings import get_settings
from sso.connections import (
    ConnectionFields,
    connection_for_sign_in,
    create_connection,
    delete_connection,
    format_role_mapping,
    get_connection,
    list_connections,
    parse_role_mapping,
    secret_context,
    set_enabled,
    update_connection,
)
from sso.errors import SignInRefused
from tests.api.conftest import audit_actions
from tests.conftest import TenantFixture
from tests.db import as_tenant


def _fields(**changes: object) -> ConnectionFields:
    base: dict[str, object] = {
        "protocol": "oidc",
        "name": "Entra ID",
        "settings": {"issuer": "https://login.example.org", "client_id": "jalon"},
        "secret": "s3cret-client-value",
        "role_mapping": {"Jalon admins": "admin"},
    }
    base.update(changes)
    return ConnectionFields(**base)  # type: ignore[arg-type]


async def _stored_secret(tenant_id: object, connection_id: object) -> bytes:
    async with as_tenant(str(tenant_id)):
        rows = await database.fetch(
            "SELECT secret FROM sso_connection WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            connection_id,
        )
    secret: bytes = rows[0]["secret"]
    return secret


async def test_a_new_connection_is_disabled_and_its_secret_is_stored_encrypted(
    tenant_a: TenantFixture,
) -> None:
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    connection = await get_connection(tenant_a.owner_ctx, connection_id)
    assert not connection.enabled
    assert connection.has_secret
    assert connection.settings["issuer"] == "https://login.example.org"
    assert b"s3cret-client-value" not in await _stored_secret(tenant_a.id, connection_id)
    with pytest.raises(NotFound):  # disabled: it signs nobody in
        await connection_for_sign_in(tenant_a.id, connection_id)
    tested = await connection_for_sign_in(tenant_a.id, connection_id, allow_disabled=True)
    assert tested.secret == "s3cret-client-value"
    assert "s3cret" not in repr(tested)


async def test_every_change_is_audited_without_the_secret(tenant_a: TenantFixture) -> None:
    before = await audit_actions(tenant_a.id)
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    await update_connection(tenant_a.owner_ctx, connection_id, _fields(name="Entra", secret=None))
    await set_enabled(tenant_a.owner_ctx, connection_id, True)
    await set_enabled(tenant_a.owner_ctx, connection_id, False)
    await delete_connection(tenant_a.owner_ctx, connection_id)
    assert (await audit_actions(tenant_a.id))[len(before) :] == [
        "sso.connection.created",
        "sso.connection.updated",
        "sso.connection.enabled",
        "sso.connection.disabled",
        "sso.connection.deleted",
    ]
    async with as_tenant(tenant_a.id):
        rows = await database.fetch(
            "SELECT details::text AS details FROM audit_event WHERE tenant_id = $1 "
            "AND target_id = $2 ORDER BY occurred_at, id",
            tenant_a.id,
            str(connection_id),
        )
    assert rows
    assert all("s3cret" not in row["details"] for row in rows)
    assert json.loads(rows[0]["details"])["secret_changed"] in (True, False)


async def test_an_update_without_a_secret_keeps_the_stored_one(tenant_a: TenantFixture) -> None:
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    await update_connection(tenant_a.owner_ctx, connection_id, _fields(secret=""))
    await set_enabled(tenant_a.owner_ctx, connection_id, True)
    assert (await connection_for_sign_in(tenant_a.id, connection_id)).secret == (
        "s3cret-client-value"
    )
    await update_connection(tenant_a.owner_ctx, connection_id, _fields(secret="new-secret"))
    assert (await connection_for_sign_in(tenant_a.id, connection_id)).secret == "new-secret"


async def test_a_new_issuer_without_a_new_secret_is_refused_on_the_secret_field(
    tenant_a: TenantFixture,
) -> None:
    """The stored client secret is sent to the issuer's token endpoint: pointing the
    connection at another server must not hand that server the secret."""
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    elsewhere = {"issuer": "https://attacker.example.net", "client_id": "jalon"}
    with pytest.raises(Invalid) as error:
        await update_connection(
            tenant_a.owner_ctx, connection_id, _fields(settings=elsewhere, secret=None)
        )
    assert error.value.field == "client_secret"
    moved_endpoint = {
        "issuer": "https://login.example.org",
        "client_id": "jalon",
        "provider": {"token_endpoint": "https://attacker.example.net/token"},
    }
    with pytest.raises(Invalid) as error:
        await update_connection(
            tenant_a.owner_ctx, connection_id, _fields(settings=moved_endpoint, secret=None)
        )
    assert error.value.field == "client_secret"
    signing_in = await connection_for_sign_in(tenant_a.id, connection_id, allow_disabled=True)
    assert signing_in.connection.settings["issuer"] == "https://login.example.org"
    # with the new provider's own secret, the change is taken
    await update_connection(
        tenant_a.owner_ctx, connection_id, _fields(settings=elsewhere, secret="their-secret")
    )
    signing_in = await connection_for_sign_in(tenant_a.id, connection_id, allow_disabled=True)
    assert signing_in.secret == "their-secret"


async def test_a_secret_no_key_opens_is_refused_only_where_it_is_used(
    tenant_a: TenantFixture,
) -> None:
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    await set_enabled(tenant_a.owner_ctx, connection_id, True)
    lost_key = base64.b64encode(os.urandom(32)).decode("ascii")
    unreadable = Keyring.from_base64([lost_key]).encrypt(
        "s3cret-client-value", secret_context(tenant_a.id, connection_id)
    )
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE sso_connection SET secret = $3 WHERE tenant_id = $1 AND id = $2",
            tenant_a.id,
            connection_id,
            unreadable,
        )
    # the connection still loads (its SP metadata, the ACS POST need no secret)…
    signing_in = await connection_for_sign_in(tenant_a.id, connection_id)
    assert signing_in.connection.id == connection_id
    # …and the step that needs the secret is a sign-in refusal, not a server error
    with pytest.raises(SignInRefused) as refused:
        signing_in.secret  # noqa: B018
    assert refused.value.reason == "connection.secret"
    await delete_connection(tenant_a.owner_ctx, connection_id)  # (rotate-keys would stop on it)


async def test_the_protocol_of_a_connection_cannot_change(tenant_a: TenantFixture) -> None:
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    with pytest.raises(Invalid) as error:
        await update_connection(tenant_a.owner_ctx, connection_id, _fields(protocol="saml"))
    assert error.value.field == "protocol"


async def test_another_organizations_connection_is_unknown(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    await set_enabled(tenant_a.owner_ctx, connection_id, True)
    for attempt in (
        get_connection(tenant_b.owner_ctx, connection_id),
        set_enabled(tenant_b.owner_ctx, connection_id, False),
        delete_connection(tenant_b.owner_ctx, connection_id),
        update_connection(tenant_b.owner_ctx, connection_id, _fields()),
        connection_for_sign_in(tenant_b.id, connection_id),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert [c.id for c in await list_connections(tenant_b.owner_ctx)] == []
    assert [c.id for c in await list_connections(tenant_a.owner_ctx)] == [connection_id]


async def test_a_ciphertext_copied_to_another_organization_does_not_open(
    tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    stolen = await _stored_secret(
        tenant_a.id, await create_connection(tenant_a.owner_ctx, _fields())
    )
    target = await create_connection(tenant_b.owner_ctx, _fields(secret=None))
    ring = Keyring.from_base64(get_settings().sso_keys)
    with pytest.raises(Exception, match="altered"):
        ring.decrypt(stolen, secret_context(tenant_b.id, target))


async def test_members_without_sso_manage_cannot_touch_connections(
    tenant_a: TenantFixture,
) -> None:
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    with pytest.raises(Forbidden):
        await create_connection(tenant_a.member_ctx, _fields())
    with pytest.raises(Forbidden):
        await list_connections(tenant_a.member_ctx)
    with pytest.raises(Forbidden):
        await get_connection(tenant_a.member_ctx, connection_id)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"protocol": "ldap"}, "protocol"),
        ({"default_role": "owner"}, "default_role"),
        ({"role_mapping": {"Everyone": "owner"}}, "role_mapping"),
    ],
)
async def test_wrong_fields_are_refused_with_their_field(
    tenant_a: TenantFixture, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(Invalid) as error:
        await create_connection(tenant_a.owner_ctx, _fields(**changes))
    assert error.value.field == field


def test_the_role_mapping_box_reads_one_group_per_line() -> None:
    text = "# comment\nJalon admins = admin\n\n  Staff, Paris = member  \n"
    mapping = parse_role_mapping(text)
    assert mapping == {"Jalon admins": "admin", "Staff, Paris": "member"}
    assert parse_role_mapping(format_role_mapping(mapping)) == mapping
    with pytest.raises(Invalid) as error:
        parse_role_mapping("Jalon admins = admin\nEveryone = owner")
    assert error.value.params["line"] == 2


async def test_groups_give_the_highest_mapped_role_or_the_default(
    tenant_a: TenantFixture,
) -> None:
    connection_id = await create_connection(
        tenant_a.owner_ctx,
        _fields(role_mapping={"Admins": "admin", "Staff": "member"}, default_role="member"),
    )
    connection = await get_connection(tenant_a.owner_ctx, connection_id)
    assert connection.role_for(("Staff", "Admins")) == "admin"
    assert connection.role_for(("Staff",)) == "member"
    assert connection.role_for(()) == "member"


async def test_rotate_keys_reencrypts_secrets_under_the_current_key(
    tenant_a: TenantFixture, owner_url: str
) -> None:
    """A secret sealed under an older key is re-encrypted under the first key of
    JALON_SSO_KEYS by the operator's command; the old key is no longer needed after it."""
    current = get_settings().sso_keys[0]
    old = base64.b64encode(os.urandom(32)).decode("ascii")
    connection_id = await create_connection(tenant_a.owner_ctx, _fields())
    await set_enabled(tenant_a.owner_ctx, connection_id, True)
    # As if it had been saved before the key changed: sealed under the old key.
    under_old = Keyring.from_base64([old]).encrypt(
        "s3cret-client-value", secret_context(tenant_a.id, connection_id)
    )
    async with as_tenant(tenant_a.id):
        await database.execute(
            "UPDATE sso_connection SET secret = $3 WHERE tenant_id = $1 AND id = $2",
            tenant_a.id,
            connection_id,
            under_old,
        )
    with pytest.raises(Exception, match="not in JALON_SSO_KEYS"):
        (await connection_for_sign_in(tenant_a.id, connection_id)).secret  # noqa: B018

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=owner_url, JALON_SSO_KEYS=f"{current},{old}")
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", "sso", "rotate-keys"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reencrypted"] >= 1
    signing_in = await connection_for_sign_in(tenant_a.id, connection_id)
    assert signing_in.secret == "s3cret-client-value"
