"""The SAML service provider's checks, against a pysaml2 IdP in the test process: what it
accepts, every attack it refuses (with its reason), and the replay cache in the database."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from saml2 import sigver as saml_sigver

from core.database import fetch
from core.errors import Forbidden, Invalid, NotFound
from core.settings import Settings
from sso import connections, saml
from sso.errors import SignInRefused
from sso.identity import ProvenIdentity
from tests.conftest import TenantFixture
from tests.db import as_tenant
from tests.sso import saml_idp
from tests.sso.saml_idp import Issue, Person, TestIdp

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def idp() -> TestIdp:
    return TestIdp()


async def _connect(
    tenant: TenantFixture, idp: TestIdp, **changes: Any
) -> tuple[saml.SamlConnection, saml.ServiceProviderUrls]:
    fields = saml.SamlConnectionFields(
        name="Company IdP", metadata=saml.parse_idp_metadata(idp.metadata)
    )
    connection = await saml.create_saml_connection(
        tenant.owner_ctx, replace(fields, **changes), datetime.now(UTC)
    )
    await connections.set_enabled(tenant.owner_ctx, connection.id, True)
    urls = saml.sp_urls(BASE, tenant.slug, connection.id)
    idp.trust(saml.sp_metadata(connection, urls))
    return connection, urls


def _request_id(connection: saml.SamlConnection, urls: saml.ServiceProviderUrls) -> str:
    return saml.authn_request(connection, urls, "relay").request_id


async def _consume(
    tenant: TenantFixture,
    connection: saml.SamlConnection,
    urls: saml.ServiceProviderUrls,
    response: str,
    expected: str | None,
) -> ProvenIdentity:
    signing_in = await connections.connection_for_sign_in(tenant.id, connection.id)
    return await saml.consume_response(
        tenant.owner_ctx, signing_in, urls, response, expected, datetime.now(UTC)
    )


async def _refused(
    tenant: TenantFixture,
    connection: saml.SamlConnection,
    urls: saml.ServiceProviderUrls,
    response: str,
    expected: str | None,
) -> str:
    with pytest.raises(SignInRefused) as refused:
        await _consume(tenant, connection, urls, response, expected)
    return refused.value.reason


ADA = Person(email="Ada@Alpha.example", groups=("staff", "hr"), employee_number="E-42")


async def test_a_signed_assertion_answering_our_request_proves_the_person(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp, role_mapping={"hr": "admin"})
    request_id = _request_id(connection, urls)
    response = idp.response(urls.entity_id, urls.acs_url, ADA, Issue(in_response_to=request_id))

    identity = await _consume(tenant_a, connection, urls, response, request_id)

    assert identity.tenant_id == tenant_a.id
    assert identity.connection_id == connection.id
    assert identity.email == "ada@alpha.example"
    assert identity.subject == ADA.name_id
    assert (identity.given_name, identity.family_name) == ("Ada", "Lovelace")
    assert identity.groups == ("staff", "hr")
    assert identity.claims["employeeNumber"] == "E-42"
    # SAML has no email_verified claim: only the admin's word counts, and it is off by default
    assert identity.email_verified is False


async def test_the_xmlsec1_version_is_asked_once_per_process(
    tenant_a: TenantFixture, idp: TestIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pysaml2 runs `xmlsec1 --version` twice per signature it checks; ours asks once."""
    started: list[list[str]] = []
    real_popen = saml_sigver.Popen

    def popen(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        started.append(list(args))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(saml_sigver, "Popen", popen)
    connection, urls = await _connect(tenant_a, idp)
    for _ in range(2):
        request_id = _request_id(connection, urls)
        response = idp.response(urls.entity_id, urls.acs_url, ADA, Issue(in_response_to=request_id))
        started.clear()  # what the test IdP ran to sign it is not ours
        await _consume(tenant_a, connection, urls, response, request_id)
    # the second sign-in: one process, the check itself
    assert [a[1] for a in started] == ["--verify"]


async def test_a_signed_response_alone_is_enough_by_default(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp, email_verified_trusted=True)
    request_id = _request_id(connection, urls)
    issue = Issue(in_response_to=request_id, sign_assertion=False, sign_response=True)
    response = idp.response(urls.entity_id, urls.acs_url, ADA, issue)

    identity = await _consume(tenant_a, connection, urls, response, request_id)

    assert identity.email_verified is True


async def test_entra_id_claim_uris_are_understood(tenant_a: TenantFixture, idp: TestIdp) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    issue = Issue(in_response_to=request_id, entra_claims=True)
    response = idp.response(urls.entity_id, urls.acs_url, ADA, issue)

    identity = await _consume(tenant_a, connection, urls, response, request_id)

    assert identity.email == "ada@alpha.example"
    assert identity.groups == ("staff", "hr")
    assert identity.given_name == "Ada"


async def test_an_assertion_encrypted_for_the_connection_is_opened_and_checked(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    response = idp.encrypted_response(
        urls.entity_id, urls.acs_url, connection.sp_certificate_pem, ADA, request_id
    )

    identity = await _consume(tenant_a, connection, urls, response, request_id)

    assert identity.email == "ada@alpha.example"
    again = _request_id(connection, urls)
    unsigned = idp.encrypted_response(
        urls.entity_id,
        urls.acs_url,
        connection.sp_certificate_pem,
        ADA,
        again,
        sign_assertion=False,
    )
    assert await _refused(tenant_a, connection, urls, unsigned, again) == "saml.unsigned"


async def test_an_unsigned_response_is_refused(tenant_a: TenantFixture, idp: TestIdp) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    issue = Issue(in_response_to=request_id, sign_assertion=False)
    response = idp.response(urls.entity_id, urls.acs_url, ADA, issue)

    assert await _refused(tenant_a, connection, urls, response, request_id) == "saml.unsigned"


async def test_a_connection_wanting_a_signed_assertion_refuses_a_signed_response_only(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp, want_signed="assertion")
    request_id = _request_id(connection, urls)
    issue = Issue(in_response_to=request_id, sign_assertion=False, sign_response=True)
    response = idp.response(urls.entity_id, urls.acs_url, ADA, issue)

    assert await _refused(tenant_a, connection, urls, response, request_id) == "saml.unsigned"


async def test_an_assertion_changed_after_signing_is_refused(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    signed = idp.response_xml(urls.entity_id, urls.acs_url, ADA, Issue(in_response_to=request_id))
    forged = saml_idp.encode(saml_idp.tamper(signed, "eve@alpha.example"))

    assert await _refused(tenant_a, connection, urls, forged, request_id) == "saml.signature"


async def test_an_assertion_signed_by_another_key_is_refused(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    impostor = TestIdp(entity_id=idp.entity_id)  # same name, its own key
    impostor.trust(saml.sp_metadata(connection, urls))
    request_id = _request_id(connection, urls)
    response = impostor.response(
        urls.entity_id, urls.acs_url, ADA, Issue(in_response_to=request_id)
    )

    assert await _refused(tenant_a, connection, urls, response, request_id) == "saml.signature"


@pytest.mark.parametrize(
    ("wrap", "issue"),
    [
        (saml_idp.xsw_sibling, Issue()),
        (saml_idp.xsw_wrap, Issue()),
        (saml_idp.xsw_response, Issue(sign_assertion=False, sign_response=True)),
    ],
    ids=["evil-beside-signed", "evil-wrapping-signed", "evil-response-around-signed"],
)
async def test_signature_wrapping_is_refused(
    tenant_a: TenantFixture, idp: TestIdp, wrap: object, issue: Issue
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    signed = idp.response_xml(
        urls.entity_id, urls.acs_url, ADA, replace(issue, in_response_to=request_id)
    )
    assert callable(wrap)
    forged = saml_idp.encode(wrap(signed, "eve@alpha.example"))

    assert await _refused(tenant_a, connection, urls, forged, request_id) == "saml.signature"


async def test_an_expired_assertion_is_refused(tenant_a: TenantFixture, idp: TestIdp) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    issue = Issue(in_response_to=request_id, shift=timedelta(minutes=-10))
    response = idp.response(urls.entity_id, urls.acs_url, ADA, issue)

    assert await _refused(tenant_a, connection, urls, response, request_id) == "saml.expired"


async def test_an_assertion_from_the_future_is_refused(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    issue = Issue(in_response_to=request_id, shift=timedelta(minutes=10))
    response = idp.response(urls.entity_id, urls.acs_url, ADA, issue)

    assert await _refused(tenant_a, connection, urls, response, request_id) == "saml.expired"


async def test_a_replayed_assertion_is_refused(tenant_a: TenantFixture, idp: TestIdp) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    response = idp.response(urls.entity_id, urls.acs_url, ADA, Issue(in_response_to=request_id))
    await _consume(tenant_a, connection, urls, response, request_id)

    assert await _refused(tenant_a, connection, urls, response, request_id) == "saml.replay"


async def test_the_replay_cache_forgets_expired_assertions_only(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp, allow_idp_initiated=True)
    response = idp.response(urls.entity_id, urls.acs_url, ADA, Issue())
    await _consume(tenant_a, connection, urls, response, None)
    later = datetime.now(UTC) + timedelta(hours=1)
    old = saml.VerifiedAssertion("_old", idp.entity_id, "x", "", "", later - timedelta(hours=2))
    fresh = saml.VerifiedAssertion("_fresh", idp.entity_id, "x", "", "", later + timedelta(hours=1))
    await saml.remember_assertion(tenant_a.owner_ctx, connection.id, fresh, later)

    await saml.remember_assertion(tenant_a.owner_ctx, connection.id, old, later)

    async with as_tenant(tenant_a.id):
        rows = await fetch(
            "SELECT assertion_id FROM saml_assertion_seen WHERE tenant_id = $1 ORDER BY 1",
            tenant_a.id,
        )
    # the first assertion expired by `later` and was purged; `_old` went in (it is "seen"
    # until its own expiry passes the next purge), `_fresh` stays
    assert [row["assertion_id"] for row in rows] == ["_fresh", "_old"]


async def test_an_assertion_for_another_tenants_connection_is_refused(
    tenant_a: TenantFixture, tenant_b: TenantFixture, idp: TestIdp
) -> None:
    connection_a, urls_a = await _connect(tenant_a, idp)
    connection_b, urls_b = await _connect(tenant_b, idp)
    request_id = _request_id(connection_a, urls_a)
    # addressed to B's connection (audience, recipient, destination), posted to A's ACS
    for_b = idp.response(urls_b.entity_id, urls_b.acs_url, ADA, Issue(in_response_to=request_id))

    reason = await _refused(tenant_a, connection_a, urls_a, for_b, request_id)

    assert reason in ("saml.audience", "saml.recipient")
    # B's response still works at B
    response = idp.response(urls_b.entity_id, urls_b.acs_url, ADA, Issue())
    await saml.update_saml_connection(
        tenant_b.owner_ctx,
        connection_b.id,
        saml.SamlConnectionFields(name="B", metadata=None, allow_idp_initiated=True),
    )
    assert (await _consume(tenant_b, connection_b, urls_b, response, None)).tenant_id == tenant_b.id


@pytest.mark.parametrize(
    ("issue", "reason"),
    [
        (Issue(audience="https://sp.elsewhere.example/metadata"), "saml.audience"),
        (Issue(recipient="https://sp.elsewhere.example/acs"), "saml.recipient"),
        (Issue(destination="https://sp.elsewhere.example/acs"), "saml.recipient"),
    ],
    ids=["audience", "recipient", "destination"],
)
async def test_an_assertion_addressed_elsewhere_is_refused(
    tenant_a: TenantFixture, idp: TestIdp, issue: Issue, reason: str
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    response = idp.response(
        urls.entity_id, urls.acs_url, ADA, replace(issue, in_response_to=request_id)
    )

    assert await _refused(tenant_a, connection, urls, response, request_id) == reason


async def test_a_response_to_another_request_is_refused(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    request_id = _request_id(connection, urls)
    other = _request_id(connection, urls)
    response = idp.response(urls.entity_id, urls.acs_url, ADA, Issue(in_response_to=other))

    assert await _refused(tenant_a, connection, urls, response, request_id) == "saml.in_response_to"
    # nor does a response to a request be accepted when this browser sent none
    again = idp.response(urls.entity_id, urls.acs_url, ADA, Issue(in_response_to=other))
    assert await _refused(tenant_a, connection, urls, again, None) == "saml.in_response_to"


async def test_idp_initiated_sign_in_is_refused_unless_the_connection_allows_it(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    unsolicited = idp.response(urls.entity_id, urls.acs_url, ADA, Issue())

    assert await _refused(tenant_a, connection, urls, unsolicited, None) == "saml.unsolicited"

    allowed = await saml.update_saml_connection(
        tenant_a.owner_ctx,
        connection.id,
        saml.SamlConnectionFields(name=connection.name, metadata=None, allow_idp_initiated=True),
    )
    fresh = idp.response(urls.entity_id, urls.acs_url, ADA, Issue())
    identity = await _consume(tenant_a, allowed, urls, fresh, None)
    assert identity.email == "ada@alpha.example"


async def test_a_response_that_is_not_saml_is_refused(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)

    assert await _refused(tenant_a, connection, urls, "not base64!", None) == "saml.invalid"
    doctype = saml_idp.encode('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    assert await _refused(tenant_a, connection, urls, doctype, None) == "saml.invalid"


# --- metadata and the console's service -------------------------------------------------


def test_the_idp_is_read_from_its_metadata(idp: TestIdp) -> None:
    metadata = saml.parse_idp_metadata(idp.metadata)

    assert metadata.entity_id == idp.entity_id
    assert metadata.sso_url == idp.sso_url
    assert metadata.certificates == (idp.cert_pem,)


def test_a_federation_aggregate_needs_the_entity_id_of_the_idp(idp: TestIdp) -> None:
    other = TestIdp(entity_id="https://idp.other-university.example/metadata")
    strip = '<?xml version="1.0" encoding="utf-8"?>'

    def body(xml: str) -> str:
        return xml.replace(strip, "").replace("<?xml version='1.0' encoding='UTF-8'?>", "")

    aggregate = (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        f"{body(idp.metadata)}{body(other.metadata)}</md:EntitiesDescriptor>"
    )

    with pytest.raises(Invalid) as several:
        saml.parse_idp_metadata(aggregate)
    assert several.value.field == "idp_entity_id"
    chosen = saml.parse_idp_metadata(aggregate, other.entity_id)
    assert chosen.entity_id == other.entity_id
    assert chosen.certificates == (other.cert_pem,)


def test_metadata_without_an_idp_is_refused() -> None:
    with pytest.raises(Invalid):
        saml.parse_idp_metadata("<x/>")
    with pytest.raises(Invalid):
        saml.parse_idp_metadata(
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            'entityID="https://sp.example"/>'
        )


async def test_the_sp_metadata_names_the_connections_own_urls_and_certificate(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)

    metadata = saml.sp_metadata(connection, urls)

    assert f'entityID="{urls.entity_id}"' in metadata
    assert urls.acs_url in metadata
    body = "".join(connection.sp_certificate_pem.splitlines()[1:-1])
    assert body in metadata


async def test_a_connection_keeps_its_private_key_encrypted(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, _ = await _connect(tenant_a, idp)

    async with as_tenant(tenant_a.id):
        rows = await fetch(
            "SELECT secret, settings::text AS settings FROM sso_connection WHERE id = $1",
            connection.id,
        )
    assert b"PRIVATE KEY" not in bytes(rows[0]["secret"])
    assert "PRIVATE KEY" not in rows[0]["settings"]


async def test_connection_changes_are_audited_and_members_cannot_make_them(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, _ = await _connect(tenant_a, idp)
    with pytest.raises(Forbidden):
        await saml.update_saml_connection(
            tenant_a.member_ctx,
            connection.id,
            saml.SamlConnectionFields(name="Mine", metadata=None),
        )
    await saml.update_saml_connection(
        tenant_a.owner_ctx,
        connection.id,
        saml.SamlConnectionFields(name="Renamed", metadata=None, want_signed="both"),
    )

    async with as_tenant(tenant_a.id):
        rows = await fetch(
            "SELECT action, details FROM audit_event WHERE tenant_id = $1 AND target_id = $2 "
            "ORDER BY occurred_at",
            tenant_a.id,
            str(connection.id),
        )
    actions = [row["action"] for row in rows]
    assert actions == ["sso.connection.created", "sso.connection.enabled", "sso.connection.updated"]
    assert '"want_signed": "both"' in rows[2]["details"]
    assert "PRIVATE KEY" not in "".join(row["details"] for row in rows)


async def test_another_tenants_connection_is_not_found(
    tenant_a: TenantFixture, tenant_b: TenantFixture, idp: TestIdp
) -> None:
    connection, _ = await _connect(tenant_a, idp)

    with pytest.raises(NotFound):
        await saml.access_saml_connection(tenant_b.owner_ctx, connection.id)
    with pytest.raises(NotFound):
        await saml.access_saml_connection(tenant_a.owner_ctx, UUID(int=1))


async def test_a_received_response_is_taken_once(tenant_a: TenantFixture, idp: TestIdp) -> None:
    connection, _ = await _connect(tenant_a, idp)
    now = datetime.now(UTC)
    handle = await saml.keep_received_response(tenant_a.owner_ctx, connection.id, "abc", "r", now)

    taken = await saml.take_received_response(tenant_a.owner_ctx, connection.id, handle, now)

    assert (taken.saml_response, taken.relay_state) == ("abc", "r")
    with pytest.raises(SignInRefused):
        await saml.take_received_response(tenant_a.owner_ctx, connection.id, handle, now)


async def test_a_stale_received_response_is_refused(
    tenant_a: TenantFixture, tenant_b: TenantFixture, idp: TestIdp, settings: Settings
) -> None:
    connection, _ = await _connect(tenant_a, idp)
    now = datetime.now(UTC)
    handle = await saml.keep_received_response(tenant_a.owner_ctx, connection.id, "abc", "", now)

    with pytest.raises(SignInRefused):
        await saml.take_received_response(tenant_b.owner_ctx, connection.id, handle, now)
    with pytest.raises(SignInRefused):
        await saml.take_received_response(
            tenant_a.owner_ctx, connection.id, handle, now + timedelta(minutes=6)
        )


def _valid_until(metadata: str, when: str) -> str:
    return metadata.replace(
        "<ns0:EntityDescriptor ", f'<ns0:EntityDescriptor validUntil="{when}" ', 1
    )


def test_metadata_past_its_valid_until_is_refused_on_upload(idp: TestIdp) -> None:
    with pytest.raises(Invalid) as error:
        saml.parse_idp_metadata(_valid_until(idp.metadata, "2020-01-01T00:00:00Z"))
    assert error.value.field == "idp_metadata"
    assert error.value.params["date"] == "2020-01-01T00:00:00Z"
    with pytest.raises(Invalid):
        saml.parse_idp_metadata(_valid_until(idp.metadata, "not a date"))
    fresh = saml.parse_idp_metadata(_valid_until(idp.metadata, "2999-01-01T00:00:00Z"))
    assert fresh.entity_id == idp.entity_id


async def test_metadata_that_expired_after_its_upload_refuses_the_start_not_the_sp_metadata(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    past = _valid_until(connection.idp_metadata_xml, "2020-01-01T00:00:00Z")
    expired = replace(connection, idp_metadata_xml=past)
    with pytest.raises(SignInRefused) as refused:
        saml.authn_request(expired, urls, "relay")
    assert refused.value.reason == "saml.metadata"
    assert "EntityDescriptor" in saml.sp_metadata(expired, urls)


async def test_in_production_the_metadata_url_must_be_https(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.settings import get_settings

    monkeypatch.setenv("JALON_ENV", "production")
    monkeypatch.setenv("JALON_SECRET_KEY", "p" * 64)
    monkeypatch.setenv("JALON_SMTP_URL", "smtp://127.0.0.1:25")
    # production needs one; nothing connects to it here (the embedded default has none)
    monkeypatch.setenv(
        "DATABASE_URL", os.environ.get("DATABASE_URL") or "postgresql://127.0.0.1/unused"
    )
    monkeypatch.setenv("JALON_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true")  # not the point here
    get_settings.cache_clear()
    try:
        with pytest.raises(Invalid) as error:
            await saml.HttpMetadataSource().fetch("http://idp.example.org/metadata")
        assert error.value.field == "idp_metadata_url"
        assert "https://" in error.value.message
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def _until_a_lock_is_awaited(tenant: TenantFixture) -> None:
    """Return once another transaction of this database is running the locking read of a
    connection (waiting for the row: on a Citus coordinator the wait itself is on a worker,
    so the running statement is what is looked for)."""
    for _ in range(500):
        async with as_tenant(tenant.id):
            rows = await fetch(
                "SELECT count(*) AS n FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state = 'active' AND query LIKE '%FROM sso_connection%FOR UPDATE%'"
            )
        if rows[0]["n"]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the edit never waited for the connection's row")


async def test_an_edit_keeps_a_change_saved_while_it_waited(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    """The edit reads the connection it changes under the same lock it writes it with: a
    change committed meanwhile (another admin's new metadata) is not written over."""
    connection, _ = await _connect(tenant_a, idp)
    locked, release = asyncio.Event(), asyncio.Event()

    async def another_admin() -> None:
        async with as_tenant(tenant_a.id):
            await fetch(
                "SELECT id FROM sso_connection WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                tenant_a.id,
                connection.id,
            )
            locked.set()
            await release.wait()
            await fetch(
                "UPDATE sso_connection SET settings = jsonb_set(settings, '{idp_entity_id}', "
                "to_jsonb($3::text)) WHERE tenant_id = $1 AND id = $2",
                tenant_a.id,
                connection.id,
                "https://changed-meanwhile.example.test",
            )

    meanwhile = asyncio.create_task(another_admin())
    await locked.wait()
    rename = saml.SamlConnectionFields(name="Renamed", metadata=None)
    edit = asyncio.create_task(
        saml.update_saml_connection(tenant_a.owner_ctx, connection.id, rename)
    )
    try:
        await _until_a_lock_is_awaited(tenant_a)
    finally:
        release.set()
    await meanwhile
    edited = await edit
    assert edited.name == "Renamed"
    assert edited.idp_entity_id == "https://changed-meanwhile.example.test"


async def test_the_sp_metadata_is_made_once_per_version_of_the_connection(
    tenant_a: TenantFixture, idp: TestIdp
) -> None:
    connection, urls = await _connect(tenant_a, idp)
    first = saml.sp_metadata(connection, urls)
    assert saml.sp_metadata(connection, urls) is first  # kept, not made again
    edited = await saml.update_saml_connection(
        tenant_a.owner_ctx,
        connection.id,
        saml.SamlConnectionFields(name="Renamed", metadata=None, want_signed="both"),
    )
    again = saml.sp_metadata(edited, urls)
    assert again is not first
    assert 'WantAssertionsSigned="true"' in again
