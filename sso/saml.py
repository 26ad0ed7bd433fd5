"""SAML 2.0 service provider, one per connection: SP metadata, AuthnRequests (redirect
binding), and the assertion consumer service's checks (POST binding), with pysaml2 over
Debian's xmlsec1.

Each SAML connection is its own service provider: its entity id is its metadata URL
(`{base}/sso/{slug}/saml/{connection_id}/metadata`), its key pair is generated when it is
created (the private key encrypted in `sso_connection.secret` by `core.secrets`, the
certificate in its settings), and its IdP is the one `EntityDescriptor` kept from the metadata
uploaded or fetched. A response is accepted only when every check passed: a signature (of the
assertion or of the whole response, never neither) by the IdP's key from that metadata and
covering the very assertion read, the issuer, the audience (this connection's entity id), the
recipient and destination (this connection's ACS), the validity window with a bounded clock
skew, InResponseTo (the request this browser's session sent; unsolicited responses only when
the connection allows IdP-initiated sign-in), and an assertion id never seen before (the
replay cache is a table, so it holds across processes). Every refusal is a
`SignInRefused(reason, detail)` whose reason names the check.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import functools
import os
import shutil
import tempfile
import traceback
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring as _defused_fromstring  # type: ignore[import-untyped]
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.response import AuthnResponse, StatusError
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_TRANSIENT, SCM_BEARER
from saml2.sigver import CryptoBackendXmlSec1
from saml2.time_util import str_to_time
from saml2.validate import ResponseLifetimeExceed, ToEarly

from core.database import execute, fetch, tenant_transaction
from core.errors import Invalid, NotFound
from core.settings import get_settings
from core.validation import clean_choice
from sso import connections
from sso.connections import ConnectionFields, IdentityConnection, SignInConnection
from sso.errors import SignInRefused
from sso.identity import ProvenIdentity
from tenants.context import TenantContext
from tenants.permissions import Permission
from tenants.webhooks.destinations import (
    RefusedDestination,
    check_destination,
    clean_url,
    private_networks_allowed,
)

#: Debian's xmlsec1 (`make system` installs it).
XMLSEC = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
#: How far the IdP's clock may be from ours, either way.
CLOCK_SKEW = timedelta(seconds=120)
#: An IdP's metadata, fetched or uploaded, is refused beyond this size. A federation's
#: aggregate is larger: give the IdP's own metadata URL (the MDQ URL) or its file.
METADATA_MAX_BYTES = 2_000_000
#: A SAMLResponse (base64) larger than this is not read.
RESPONSE_MAX_CHARS = 500_000
#: How long a response POSTed to the ACS waits for the browser's redirected GET.
RECEIVED_LIFETIME = timedelta(minutes=5)
#: How long a replay-cache row lives when the assertion names no end (it is then refused,
#: but a bound keeps the table small all the same).
RSA_KEY_BITS = 3072
CERTIFICATE_YEARS = 10

#: Which signatures a connection requires: at least one always.
WANT_SIGNED = ("either", "assertion", "response", "both")

_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
_DS = "http://www.w3.org/2000/09/xmldsig#"
_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"

#: Attribute names (the `Name` or the `FriendlyName`, compared without case) that carry an
#: email address, names and groups, from eduPerson/X.500 OIDs, common friendly names, Entra
#: ID's and ADFS's claim URIs.
EMAIL_ATTRIBUTES = (
    "urn:oid:0.9.2342.19200300.100.1.3",
    "mail",
    "email",
    "emailaddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:1.2.840.113549.1.9.1",
)
GIVEN_NAME_ATTRIBUTES = (
    "urn:oid:2.5.4.42",
    "givenname",
    "given_name",
    "firstname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
)
FAMILY_NAME_ATTRIBUTES = (
    "urn:oid:2.5.4.4",
    "sn",
    "surname",
    "family_name",
    "lastname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
)
GROUP_ATTRIBUTES = (
    "groups",
    "memberof",
    "ismemberof",
    "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    "role",
    "roles",
)
#: Stable, non-reassigned identifiers that federations send with transient NameIDs.
SUBJECT_ATTRIBUTES = (
    "urn:oasis:names:tc:SAML:attribute:subject-id",
    "urn:oasis:names:tc:SAML:attribute:pairwise-id",
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.13",  # eduPersonUniqueId
    "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",  # eduPersonPrincipalName
)


# --- the connection -------------------------------------------------------------------------


@dataclass(frozen=True)
class IdpMetadata:
    """The one identity provider a connection trusts, as its metadata describes it."""

    entity_id: str
    #: where AuthnRequests go (HTTP-Redirect binding)
    sso_url: str
    #: the IdP's signing certificates, PEM
    certificates: tuple[str, ...]
    #: its `EntityDescriptor` alone, as stored and given to pysaml2
    xml: str


@dataclass(frozen=True)
class SamlConnection:
    """A SAML connection, as the sign-in and the console read it (without its private key)."""

    tenant_id: UUID
    id: UUID
    name: str
    enabled: bool
    idp_entity_id: str
    idp_sso_url: str
    idp_metadata_xml: str
    idp_metadata_url: str
    sp_certificate_pem: str
    want_signed: str
    email_verified_trusted: bool
    allow_idp_initiated: bool
    role_mapping: dict[str, str]
    default_role: str
    external_id_claim: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ServiceProviderUrls:
    """What the IdP is given: the SP's entity id (its metadata URL) and its ACS."""

    entity_id: str
    acs_url: str
    start_url: str

    @property
    def metadata_url(self) -> str:
        return self.entity_id


def sp_urls(base_url: str, slug: str, connection_id: UUID) -> ServiceProviderUrls:
    """The stable URLs of connection `connection_id` of organization `slug`."""
    root = f"{base_url.rstrip('/')}/sso/{slug}/saml/{connection_id}"
    return ServiceProviderUrls(f"{root}/metadata", f"{root}/acs", f"{root}/start")


def saml_connection(connection: IdentityConnection) -> SamlConnection:
    """The SAML view of a connection (its settings read); `NotFound` for an OIDC one."""
    if connection.protocol != "saml":
        raise NotFound()
    settings = connection.settings
    return SamlConnection(
        tenant_id=connection.tenant_id,
        id=connection.id,
        name=connection.name,
        enabled=connection.enabled,
        idp_entity_id=str(settings.get("idp_entity_id", "")),
        idp_sso_url=str(settings.get("idp_sso_url", "")),
        idp_metadata_xml=str(settings.get("idp_metadata_xml", "")),
        idp_metadata_url=str(settings.get("idp_metadata_url", "")),
        sp_certificate_pem=str(settings.get("sp_certificate_pem", "")),
        want_signed=str(settings.get("want_signed", "either")),
        email_verified_trusted=bool(settings.get("email_verified_trusted", False)),
        allow_idp_initiated=connection.allow_idp_initiated,
        role_mapping=dict(connection.role_mapping),
        default_role=connection.default_role,
        external_id_claim=connection.external_id_claim,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )


async def access_saml_connection(ctx: TenantContext, connection_id: UUID | str) -> SamlConnection:
    """The organization's SAML connection `connection_id` (for its admins); `NotFound` alike
    when it is missing, another organization's, or not SAML."""
    return saml_connection(await connections.get_connection(ctx, connection_id))


# --- key pair and metadata ------------------------------------------------------------------


def new_sp_credentials(common_name: str, now: datetime) -> tuple[str, str]:
    """A fresh RSA private key and a self-signed certificate for it, both PEM: the SP's
    signing and encryption key (IdPs check the certificate's key, not its issuer)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * CERTIFICATE_YEARS))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _parse_xml(data: bytes) -> ET.Element:
    """`data` parsed with defusedxml: no DTD, no entity, no external reference; `ValueError`
    when it is not well-formed XML or tries any of those."""
    try:
        root: ET.Element = _defused_fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException) as error:
        raise ValueError(str(error)) from error
    return root


def _check_valid_until(elements: list[ET.Element], now: datetime) -> None:
    """`Invalid` when one of `elements` says the metadata is no longer valid (`validUntil`
    past, or unreadable): pysaml2 would refuse to load it at every sign-in."""
    for element in elements:
        value = element.get("validUntil")
        if not value:
            continue
        try:
            until = _time(value)
        except (ValueError, TypeError, OverflowError, AttributeError):  # pysaml2's parser
            until = None
        if until is None or until <= now:
            raise Invalid(
                "The IdP metadata is valid until {date} only: download fresh metadata from "
                "your identity provider.",
                field="idp_metadata",
                date=value[:40],
            )


def parse_idp_metadata(
    xml: str | bytes, entity_id: str = "", now: datetime | None = None
) -> IdpMetadata:
    """The identity provider described by `xml` (an `EntityDescriptor`, or a federation's
    `EntitiesDescriptor` and the `entity_id` to take from it). `Invalid` unless it has an
    IdP role with a redirect-binding SSO service and a signing certificate, and is still
    valid (its `validUntil`, if any, after `now`)."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    if len(data) > METADATA_MAX_BYTES:
        raise Invalid("The IdP metadata is too large.", field="idp_metadata")
    try:
        root = _parse_xml(data)
    except ValueError as error:
        raise Invalid(
            "The IdP metadata is not valid SAML metadata.", field="idp_metadata"
        ) from error
    if root.tag == f"{{{_MD}}}EntityDescriptor":
        candidates = [root]
    elif root.tag == f"{{{_MD}}}EntitiesDescriptor":
        candidates = list(root.iter(f"{{{_MD}}}EntityDescriptor"))
    else:
        raise Invalid("The IdP metadata is not valid SAML metadata.", field="idp_metadata")
    idps = [e for e in candidates if e.find(f"{{{_MD}}}IDPSSODescriptor") is not None]
    if entity_id:
        idps = [e for e in idps if e.get("entityID") == entity_id]
        if not idps:
            raise Invalid(
                "No identity provider with this entity id is in the metadata.",
                field="idp_entity_id",
            )
    if not idps:
        raise Invalid("The metadata describes no identity provider.", field="idp_metadata")
    if len(idps) > 1:
        raise Invalid(
            "The metadata describes several identity providers: give the entity id of yours.",
            field="idp_entity_id",
        )
    descriptor = idps[0]
    role = descriptor.find(f"{{{_MD}}}IDPSSODescriptor")
    assert role is not None
    _check_valid_until([root, descriptor, role], now or datetime.now(UTC))
    sso_url = ""
    for service in role.findall(f"{{{_MD}}}SingleSignOnService"):
        if service.get("Binding") == BINDING_HTTP_REDIRECT and service.get("Location"):
            sso_url = service.get("Location") or ""
            break
    if not sso_url.startswith(("https://", "http://")):
        raise Invalid(
            "The IdP metadata has no single sign-on service with the HTTP-Redirect binding.",
            field="idp_metadata",
        )
    certificates = []
    for key in role.findall(f"{{{_MD}}}KeyDescriptor"):
        if key.get("use", "signing") != "signing":
            continue
        for element in key.iter(f"{{{_DS}}}X509Certificate"):
            certificates.append(_pem(element.text or ""))
    if not certificates:
        raise Invalid("The IdP metadata has no signing certificate.", field="idp_metadata")
    return IdpMetadata(
        entity_id=descriptor.get("entityID") or "",
        sso_url=sso_url,
        certificates=tuple(certificates),
        xml=ET.tostring(descriptor, encoding="unicode"),
    )


def _pem(base64_der: str) -> str:
    try:
        der = base64.b64decode("".join(base64_der.split()), validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as error:
        raise Invalid(
            "A certificate in the IdP metadata cannot be read.", field="idp_metadata"
        ) from error
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


class MetadataSource(Protocol):
    """Fetches an IdP's metadata from its URL (the real one uses httpx; tests pass theirs)."""

    async def fetch(self, url: str) -> bytes: ...


class HttpMetadataSource:
    """Metadata over HTTP(S), size-limited, without redirects, cookies or credentials; the
    same destination rules as outgoing webhooks (no private, loopback or link-local address
    unless the server allows them: never in production unless told)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    async def fetch(self, url: str) -> bytes:
        allow_private = private_networks_allowed()
        try:
            url = clean_url(url, allow_private=allow_private)
            if get_settings().environment == "production" and urlsplit(url).scheme != "https":
                # the IdP's keys come with it: in clear, anyone on the way could swap them
                raise Invalid("Enter an address starting with https://.", field="url")
            if not allow_private:
                await check_destination(url)
        except Invalid as error:
            raise Invalid(error.message, field="idp_metadata_url", **error.params) from None
        except (RefusedDestination, httpx.HTTPError):
            raise Invalid("The metadata URL cannot be reached.", field="idp_metadata_url") from None
        try:
            return await self._get(url)
        except httpx.HTTPError:
            raise Invalid("The metadata URL cannot be reached.", field="idp_metadata_url") from None

    async def _get(self, url: str) -> bytes:
        headers = {"Accept": "application/samlmetadata+xml, application/xml"}
        async with (
            httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise Invalid(
                    "The metadata URL answered {status}.",
                    field="idp_metadata_url",
                    status=response.status_code,
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > METADATA_MAX_BYTES:
                    raise Invalid("The IdP metadata is too large.", field="idp_metadata_url")
                chunks.append(chunk)
        return b"".join(chunks)


@contextmanager
def _files(*contents: str) -> Iterator[list[str]]:
    """`contents` written to private temporary files (xmlsec1 reads keys from files), removed
    on the way out."""
    with tempfile.TemporaryDirectory(prefix="jalon-saml-") as directory:
        paths = []
        for number, content in enumerate(contents):
            path = os.path.join(directory, f"{number}.pem")
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(content)
            paths.append(path)
        yield paths


def _client(
    connection: SamlConnection,
    urls: ServiceProviderUrls,
    key_file: str | None = None,
    cert_file: str | None = None,
    *,
    with_idp: bool = True,
) -> Saml2Client:
    """pysaml2's client for this connection; `SignInRefused("saml.metadata")` when pysaml2
    cannot load the IdP's metadata (expired since it was uploaded, say)."""
    try:
        return _load_client(connection, urls, key_file, cert_file, with_idp=with_idp)
    except Exception as error:  # pysaml2 raises many kinds (ToOld, SAMLError, bare ones)
        traceback.clear_frames(error.__traceback__)
        raise SignInRefused(
            "saml.metadata",
            f"the IdP metadata cannot be used ({type(error).__name__}: {error})"[:300]
            + ": upload fresh metadata",
        ) from None


def _load_client(
    connection: SamlConnection,
    urls: ServiceProviderUrls,
    key_file: str | None,
    cert_file: str | None,
    *,
    with_idp: bool,
) -> Saml2Client:
    want = connection.want_signed
    sp: dict[str, Any] = {
        "endpoints": {"assertion_consumer_service": [(urls.acs_url, BINDING_HTTP_POST)]},
        # InResponseTo is checked below, with a reason of its own, against the session's flow.
        "allow_unsolicited": True,
        "want_assertions_signed": want in ("assertion", "both"),
        "want_response_signed": want in ("response", "both"),
        "want_assertions_or_response_signed": True,
        "authn_requests_signed": False,
        "name_id_format_allow_create": True,
    }
    config: dict[str, Any] = {
        "entityid": urls.entity_id,
        "xmlsec_binary": XMLSEC,
        "service": {"sp": sp},
        "accepted_time_diff": int(CLOCK_SKEW.total_seconds()),
        "allow_unknown_attributes": True,
        "delete_tmpfiles": True,
    }
    if with_idp and connection.idp_metadata_xml:
        config["metadata"] = {"inline": [connection.idp_metadata_xml]}
    if key_file and cert_file:
        config["key_file"] = key_file
        config["cert_file"] = cert_file
        config["encryption_keypairs"] = [{"key_file": key_file, "cert_file": cert_file}]
    elif cert_file:
        config["cert_file"] = cert_file
    sp_config = SPConfig()
    sp_config.load(config)
    client = Saml2Client(config=sp_config)
    client.sec.crypto = _XmlSec1(XMLSEC, delete_tmpfiles=True)
    return client


@functools.cache
def _xmlsec1_version(binary: str) -> str:
    version: str = CryptoBackendXmlSec1(binary).version
    return version


class _XmlSec1(CryptoBackendXmlSec1):  # type: ignore[misc]
    """pysaml2's xmlsec1 backend, asking the binary for its version once per process: pysaml2
    runs `xmlsec1 --version` twice for each signature it checks, two processes of the three a
    SAML sign-in started (ADR 0019)."""

    @property
    def version(self) -> str:
        return _xmlsec1_version(self.xmlsec)


#: SP metadata already made, by connection and version (the public metadata URL is asked
#: for often; making it runs pysaml2's whole configuration). The oldest go first.
_SP_METADATA: OrderedDict[tuple[Any, ...], str] = OrderedDict()
SP_METADATA_CACHE_SIZE = 256


def sp_metadata(connection: SamlConnection, urls: ServiceProviderUrls) -> str:
    """The SP's metadata XML for the IdP: entity id, ACS (POST), certificate; made once per
    version of the connection (its `updated_at`) and kept."""
    key = (
        connection.id,
        connection.updated_at,
        connection.want_signed,
        connection.sp_certificate_pem,
        urls,
    )
    cached = _SP_METADATA.get(key)
    if cached is None:
        cached = _SP_METADATA[key] = _make_sp_metadata(connection, urls)
        while len(_SP_METADATA) > SP_METADATA_CACHE_SIZE:
            _SP_METADATA.popitem(last=False)
    return cached


def _make_sp_metadata(connection: SamlConnection, urls: ServiceProviderUrls) -> str:
    certificates = (connection.sp_certificate_pem,) if connection.sp_certificate_pem else ()
    with _files(*certificates) as files:
        # (the IdP's metadata plays no part in the SP's: expired, it does not stop it)
        client = _client(connection, urls, cert_file=files[0] if files else None, with_idp=False)
        metadata = create_metadata_string(None, config=client.config, valid=None)
    return metadata.decode("utf-8") if isinstance(metadata, bytes) else str(metadata)


# --- the AuthnRequest -----------------------------------------------------------------------


@dataclass(frozen=True)
class AuthnRequest:
    """An AuthnRequest on its way: where to send the browser, and its id for InResponseTo."""

    request_id: str
    redirect_url: str


def authn_request(
    connection: SamlConnection, urls: ServiceProviderUrls, relay_state: str
) -> AuthnRequest:
    """An AuthnRequest to the connection's IdP, by the redirect binding."""
    if not connection.idp_metadata_xml:
        raise SignInRefused("saml.connection", "the connection has no IdP metadata")
    client = _client(connection, urls)
    try:
        request_id, info = client.prepare_for_authenticate(
            entityid=connection.idp_entity_id,
            relay_state=relay_state,
            binding=BINDING_HTTP_REDIRECT,
        )
        location = dict(info["headers"])["Location"]
    except Exception as error:  # pysaml2 raises many kinds for metadata it cannot use
        traceback.clear_frames(error.__traceback__)
        raise SignInRefused(
            "saml.metadata",
            f"no AuthnRequest can be made from the IdP metadata ({type(error).__name__}: {error})"[
                :300
            ],
        ) from None
    return AuthnRequest(request_id=str(request_id), redirect_url=str(location))


# --- the response ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedAssertion:
    """What the checked assertion says, read from the very element whose signature passed."""

    assertion_id: str
    issuer: str
    name_id: str
    name_id_format: str
    in_response_to: str
    #: when the replay cache may forget this assertion
    expires_at: datetime
    #: attribute name (and friendly name) → values
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(str_to_time(value)), UTC)


def _covers(element: Any) -> bool:
    """Whether `element` carries a signature whose one reference is the element itself."""
    signature = getattr(element, "signature", None)
    if signature is None or signature.signed_info is None:
        return False
    references = signature.signed_info.reference
    return len(references) == 1 and references[0].uri == f"#{element.id}"


def _decode(saml_response: str) -> bytes:
    if not saml_response or len(saml_response) > RESPONSE_MAX_CHARS:
        raise SignInRefused("saml.invalid", "no SAMLResponse, or one too large")
    try:
        return base64.b64decode("".join(saml_response.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise SignInRefused("saml.invalid", "the SAMLResponse is not base64") from error


def _check_shape(xml: bytes) -> bool:
    """Refuse what no honest IdP sends, before any signature is checked: no signature at all,
    or more than one assertion or response anywhere in the document (signature wrapping hides
    a signed original beside, around or inside an evil copy; one of each leaves no place for
    it). The document is not trusted here: this only ever refuses. True when the one
    assertion is encrypted."""
    try:
        root = _parse_xml(xml)
    except ValueError as error:
        raise SignInRefused("saml.invalid", "the SAMLResponse is not XML") from error
    if root.tag != f"{{{_SAMLP}}}Response":
        raise SignInRefused("saml.invalid", "the SAMLResponse is not a Response")
    encrypted = next(root.iter(f"{{{_SAML}}}EncryptedAssertion"), None) is not None
    # (an encrypted assertion's own signature is inside its ciphertext: checked once opened)
    if not encrypted and next(root.iter(f"{{{_DS}}}Signature"), None) is None:
        raise SignInRefused("saml.unsigned", "neither the response nor its assertion is signed")
    assertions = sum(
        1
        for element in root.iter()
        if element.tag in (f"{{{_SAML}}}Assertion", f"{{{_SAML}}}EncryptedAssertion")
    )
    responses = sum(1 for _ in root.iter(f"{{{_SAMLP}}}Response"))
    if assertions != 1 or responses != 1:
        raise SignInRefused(
            "saml.signature",
            f"{assertions} assertions and {responses} responses in one message: the shape of "
            "signature wrapping",
        )
    return encrypted


def verify_response(
    connection: SamlConnection,
    urls: ServiceProviderUrls,
    saml_response: str,
    expected_request_id: str | None,
    private_key_pem: str,
    now: datetime,
) -> VerifiedAssertion:
    """Check a base64 `SAMLResponse` for this connection; `SignInRefused` on any failure.

    `expected_request_id` is the id of the AuthnRequest this browser's session sent (None
    when it sent none: the response is then unsolicited, accepted only when the connection
    allows IdP-initiated sign-in). Runs xmlsec1: call it from a thread.
    """
    xml = _decode(saml_response)
    encrypted = _check_shape(xml)
    outstanding = {expected_request_id: "/"} if expected_request_id else {}
    # The SP's key opens encrypted assertions only; loading an RSA key (cryptography checks
    # it) is the costliest step of a sign-in, so it is read only for them.
    keys = (private_key_pem, connection.sp_certificate_pem) if encrypted else ()
    with _files(*keys) as files:
        client = _client(connection, urls, *files) if files else _client(connection, urls)
        refusal: tuple[str, str] | None = None
        try:
            response = client.parse_authn_request_response(
                base64.b64encode(xml).decode("ascii"),
                BINDING_HTTP_POST,
                outstanding=outstanding,
                conv_info={"entity_id": urls.entity_id},
            )
        except Exception as error:  # pysaml2 raises bare Exceptions for some checks
            refusal = _reason_of(error)
            # pysaml2's frames hold its temporary files, and the exception's traceback holds
            # the frames in a cycle: clear them now, so the files close here, not at some
            # later garbage collection (as unclosed-file warnings).
            traceback.clear_frames(error.__traceback__)
        if refusal is not None:
            raise SignInRefused(*refusal)
    if not isinstance(response, AuthnResponse):
        raise SignInRefused("saml.invalid", "not an authentication response")
    return _checked(response, connection, urls, expected_request_id, now, encrypted=encrypted)


def _reason_of(error: Exception) -> tuple[str, str]:
    """The reason code of an exception of pysaml2 (which raises bare `Exception`s for some
    checks, so their words are read too), with a short detail."""
    name = type(error).__name__
    text = str(error)
    detail = f"{name}: {text}"[:300]
    if isinstance(error, StatusError):
        return "saml.status", f"the IdP answered an error: {text}"[:300]
    if isinstance(error, ResponseLifetimeExceed | ToEarly):
        return "saml.expired", f"outside its validity window: {text}"[:300]
    if "Neither the response nor the assertions are signed" in text or "Signature missing" in text:
        return "saml.unsigned", detail
    if any(word in name for word in ("Signature", "Sigver", "Signed", "MissingKey", "Cert")):
        return "saml.signature", detail
    if "AudienceRestrictions" in text:
        return "saml.audience", "the assertion is addressed to another service provider"
    if "No valid recipient" in text:
        return "saml.recipient", detail
    return "saml.invalid", detail


def _checked(
    parsed: AuthnResponse,
    connection: SamlConnection,
    urls: ServiceProviderUrls,
    expected_request_id: str | None,
    now: datetime,
    *,
    encrypted: bool,
) -> VerifiedAssertion:
    """Our own checks on the objects pysaml2 verified (it skips some, or only logs them)."""
    response: samlp.Response = parsed.response
    if response.destination and response.destination != urls.acs_url:
        raise SignInRefused(
            "saml.recipient", f"the response's Destination is {response.destination!r}"
        )
    assertion = parsed.assertion
    if assertion is None or len(parsed.assertions) != 1:
        raise SignInRefused("saml.invalid", "the response does not hold exactly one assertion")
    # The signature that passed must cover the assertion read: the assertion's own, or the
    # response's (the assertion is then a direct child of the signed response, in clear or
    # as the one EncryptedAssertion the document holds).
    signed_assertion = _covers(assertion)
    signed_response = _covers(response) and (
        encrypted or any(a is assertion for a in response.assertion)
    )
    if not (signed_assertion or signed_response):
        raise SignInRefused("saml.signature", "no signature covers the assertion")
    if connection.want_signed in ("assertion", "both") and not signed_assertion:
        raise SignInRefused("saml.unsigned", "the assertion itself is not signed")
    if connection.want_signed in ("response", "both") and not _covers(response):
        raise SignInRefused("saml.unsigned", "the response itself is not signed")
    issuers = {parsed.issuer(), (assertion.issuer.text or "").strip() if assertion.issuer else ""}
    issuers.discard("")
    if issuers != {connection.idp_entity_id}:
        raise SignInRefused("saml.issuer", f"issued by {sorted(issuers)!r}")
    conditions = assertion.conditions
    audiences = {
        (audience.text or "").strip()
        for restriction in (conditions.audience_restriction if conditions else [])
        for audience in restriction.audience
    }
    if urls.entity_id not in audiences:
        raise SignInRefused("saml.audience", f"the audience is {sorted(audiences)!r}")
    ends = [_time(conditions.not_on_or_after)] if conditions else []
    starts = [_time(conditions.not_before)] if conditions else []
    subject = assertion.subject
    bearer = [
        sc.subject_confirmation_data
        for sc in (subject.subject_confirmation if subject else [])
        if sc.method == SCM_BEARER and sc.subject_confirmation_data is not None
    ]
    if not bearer:
        raise SignInRefused("saml.invalid", "no bearer subject confirmation")
    in_response_to = {data.in_response_to or "" for data in bearer} | {parsed.in_response_to or ""}
    for data in bearer:
        if data.recipient != urls.acs_url:
            raise SignInRefused("saml.recipient", f"the Recipient is {data.recipient!r}")
        ends.append(_time(data.not_on_or_after))
        starts.append(_time(data.not_before))
    known_ends = [end for end in ends if end is not None]
    if not known_ends:
        raise SignInRefused("saml.expired", "the assertion has no NotOnOrAfter")
    if any(now >= end + CLOCK_SKEW for end in known_ends):
        raise SignInRefused("saml.expired", f"expired at {min(known_ends).isoformat()}")
    if any(start is not None and now + CLOCK_SKEW < start for start in starts):
        raise SignInRefused("saml.expired", "not valid yet")
    in_response_to.discard("")
    if expected_request_id is None:
        if in_response_to:
            raise SignInRefused(
                "saml.in_response_to", "answers a request this browser did not send"
            )
        if not connection.allow_idp_initiated:
            raise SignInRefused(
                "saml.unsolicited", "IdP-initiated sign-in is off for this connection"
            )
    elif in_response_to != {expected_request_id}:
        if not in_response_to and connection.allow_idp_initiated:
            pass  # an IdP-initiated response while a request was pending: allowed here
        elif not in_response_to:
            raise SignInRefused(
                "saml.unsolicited", "IdP-initiated sign-in is off for this connection"
            )
        else:
            raise SignInRefused(
                "saml.in_response_to", "answers a request this browser did not send"
            )
    name_id = subject.name_id if subject else None
    return VerifiedAssertion(
        assertion_id=assertion.id,
        issuer=connection.idp_entity_id,
        name_id=(name_id.text or "").strip() if name_id is not None else "",
        name_id_format=(name_id.format or "") if name_id is not None else "",
        in_response_to=next(iter(in_response_to), ""),
        expires_at=max(known_ends) + CLOCK_SKEW,
        attributes=_attributes(assertion),
    )


def _attributes(assertion: Any) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for statement in assertion.attribute_statement:
        for attribute in statement.attribute:
            values = tuple(
                (value.text or "").strip()
                for value in attribute.attribute_value
                if (value.text or "").strip()
            )
            for name in (attribute.name, attribute.friendly_name):
                if name:
                    found[name] = found.get(name, ()) + values
    return found


def _first(attributes: dict[str, tuple[str, ...]], names: tuple[str, ...]) -> tuple[str, ...]:
    lowered = {key.lower(): values for key, values in attributes.items()}
    for name in names:
        values = lowered.get(name.lower())
        if values:
            return values
    return ()


def identity_of(connection: SamlConnection, verified: VerifiedAssertion) -> ProvenIdentity:
    """The person the assertion vouches for. Their email is a mail attribute, or an
    email-format NameID; it counts as verified only when the admin said this IdP's addresses
    are (SAML has no standard claim for it)."""
    emails = _first(verified.attributes, EMAIL_ATTRIBUTES)
    email = emails[0] if emails else ""
    if not email and verified.name_id_format == NAMEID_FORMAT_EMAILADDRESS:
        email = verified.name_id
    if "@" not in email:
        raise SignInRefused("saml.email", "the assertion carries no email address")
    subjects = _first(verified.attributes, SUBJECT_ATTRIBUTES)
    if subjects:
        subject = subjects[0]
    elif verified.name_id and verified.name_id_format != NAMEID_FORMAT_TRANSIENT:
        subject = verified.name_id
    else:
        subject = email
    given = _first(verified.attributes, GIVEN_NAME_ATTRIBUTES)
    family = _first(verified.attributes, FAMILY_NAME_ATTRIBUTES)
    claims: dict[str, Any] = {
        name: values[0] if len(values) == 1 else list(values)
        for name, values in verified.attributes.items()
    }
    claims["NameID"] = verified.name_id
    claims["NameIDFormat"] = verified.name_id_format
    return ProvenIdentity(
        tenant_id=connection.tenant_id,
        connection_id=connection.id,
        subject=subject,
        email=email.strip().lower(),
        email_verified=connection.email_verified_trusted,
        given_name=given[0] if given else "",
        family_name=family[0] if family else "",
        groups=_first(verified.attributes, GROUP_ATTRIBUTES),
        claims=claims,
    )


# --- the database: received responses and the replay cache ---------------------------------


async def keep_received_response(
    ctx: TenantContext, connection_id: UUID, saml_response: str, relay_state: str, now: datetime
) -> UUID:
    """Hold a response POSTed to the ACS until the browser's redirected GET takes it; the
    handle names it. Expired ones of the organization are purged on the way."""
    if not saml_response or len(saml_response) > RESPONSE_MAX_CHARS:
        raise SignInRefused("saml.invalid", "no SAMLResponse, or one too large")
    handle = uuid4()
    async with tenant_transaction(ctx):
        await execute(
            "DELETE FROM saml_response_received WHERE tenant_id = $1 AND expires_at < $2",
            ctx.tenant_id,
            now,
        )
        await execute(
            """
            INSERT INTO saml_response_received (tenant_id, id, connection_id, saml_response,
                relay_state, received_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            ctx.tenant_id,
            handle,
            connection_id,
            saml_response,
            relay_state[:200],
            now,
            now + RECEIVED_LIFETIME,
        )
    return handle


@dataclass(frozen=True)
class ReceivedResponse:
    """A response the ACS received, taken (and so forgotten) by the browser's GET."""

    saml_response: str
    relay_state: str


async def take_received_response(
    ctx: TenantContext, connection_id: UUID, handle: UUID, now: datetime
) -> ReceivedResponse:
    """The response held under `handle`, once; `SignInRefused` when it is gone or stale."""
    async with tenant_transaction(ctx):
        rows = await fetch(
            """
            DELETE FROM saml_response_received
            WHERE tenant_id = $1 AND id = $2 AND connection_id = $3
            RETURNING saml_response, relay_state, expires_at
            """,
            ctx.tenant_id,
            handle,
            connection_id,
        )
    row = rows[0] if rows else None
    if row is None or row["expires_at"] <= now:
        raise SignInRefused("saml.invalid", "no response is waiting under this link")
    return ReceivedResponse(row["saml_response"], row["relay_state"])


async def remember_assertion(
    ctx: TenantContext, connection_id: UUID, verified: VerifiedAssertion, now: datetime
) -> None:
    """Record the assertion's id until it expires; `SignInRefused("saml.replay")` when it was
    already there: an assertion signs in once, in whichever process receives it."""
    async with tenant_transaction(ctx):
        await execute(
            "DELETE FROM saml_assertion_seen WHERE tenant_id = $1 AND expires_at < $2",
            ctx.tenant_id,
            now,
        )
        rows = await fetch(
            """
            INSERT INTO saml_assertion_seen (tenant_id, id, connection_id, assertion_id,
                seen_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (tenant_id, connection_id, assertion_id) DO NOTHING
            RETURNING id
            """,
            ctx.tenant_id,
            uuid4(),
            connection_id,
            verified.assertion_id[:256],
            now,
            verified.expires_at,
        )
    if not rows:
        raise SignInRefused("saml.replay", f"assertion {verified.assertion_id!r} was already used")


async def consume_response(
    ctx: TenantContext,
    signing_in: SignInConnection,
    urls: ServiceProviderUrls,
    saml_response: str,
    expected_request_id: str | None,
    now: datetime,
) -> ProvenIdentity:
    """Every check of the SAML response, then the replay cache: the person it proves, or
    `SignInRefused` with the reason of the first check that failed."""
    connection = saml_connection(signing_in.connection)
    private_key = signing_in.secret
    if not private_key:
        raise SignInRefused("saml.connection", "the connection has no service-provider key")
    verified = await asyncio.to_thread(
        verify_response, connection, urls, saml_response, expected_request_id, private_key, now
    )
    identity = identity_of(connection, verified)
    await remember_assertion(ctx, connection.id, verified, now)
    return identity


# --- the console ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SamlConnectionFields:
    """What an admin sets on a SAML connection. The IdP is `metadata` (fetched from the URL
    or uploaded, read by `parse_idp_metadata`); None on an update keeps the IdP as it was."""

    name: str
    metadata: IdpMetadata | None
    metadata_url: str = ""
    want_signed: str = "either"
    allow_idp_initiated: bool = False
    email_verified_trusted: bool = False
    role_mapping: dict[str, str] = field(default_factory=dict)
    default_role: str = "member"
    external_id_claim: str = ""


def _settings(
    fields: SamlConnectionFields, certificate_pem: str, current: SamlConnection | None = None
) -> dict[str, Any]:
    want = clean_choice(fields.want_signed, WANT_SIGNED, "want_signed")
    metadata = fields.metadata
    if metadata is None and current is not None:
        return {
            "idp_entity_id": current.idp_entity_id,
            "idp_sso_url": current.idp_sso_url,
            "idp_metadata_xml": current.idp_metadata_xml,
            "idp_metadata_url": fields.metadata_url.strip() or current.idp_metadata_url,
            "sp_certificate_pem": certificate_pem,
            "want_signed": want,
            "email_verified_trusted": fields.email_verified_trusted,
        }
    return {
        "idp_entity_id": metadata.entity_id if metadata else "",
        "idp_sso_url": metadata.sso_url if metadata else "",
        "idp_metadata_xml": metadata.xml if metadata else "",
        "idp_metadata_url": fields.metadata_url.strip()[:2000],
        "sp_certificate_pem": certificate_pem,
        "want_signed": want,
        "email_verified_trusted": fields.email_verified_trusted,
    }


def _connection_fields(
    fields: SamlConnectionFields, settings: dict[str, Any], secret: str | None
) -> ConnectionFields:
    return ConnectionFields(
        protocol="saml",
        name=fields.name,
        settings=settings,
        secret=secret,
        role_mapping=fields.role_mapping,
        default_role=fields.default_role,
        external_id_claim=fields.external_id_claim,
        allow_idp_initiated=fields.allow_idp_initiated,
    )


async def create_saml_connection(
    ctx: TenantContext, fields: SamlConnectionFields, now: datetime
) -> SamlConnection:
    """A new SAML connection (disabled until an admin enables it) with its own SP key pair:
    the private key is stored encrypted, the certificate in its settings. Audited."""
    ctx.require(Permission.SSO_MANAGE)
    key_pem, certificate_pem = new_sp_credentials(f"Jalon SAML SP ({ctx.tenant.slug})", now)
    settings = _settings(fields, certificate_pem)
    connection_id = await connections.create_connection(
        ctx, _connection_fields(fields, settings, key_pem)
    )
    return await access_saml_connection(ctx, connection_id)


async def update_saml_connection(
    ctx: TenantContext, connection_id: UUID | str, fields: SamlConnectionFields
) -> SamlConnection:
    """Change a SAML connection; its SP key pair stays (the IdP keeps trusting it), and so
    does its IdP when no new metadata is given. Audited."""

    def settings_for(row: IdentityConnection) -> dict[str, Any]:
        current = saml_connection(row)
        return _settings(fields, current.sp_certificate_pem, current)

    # (the settings are made from the row as locked: a change made meanwhile is not lost)
    await connections.update_connection(
        ctx, connection_id, _connection_fields(fields, {}, None), settings_for=settings_for
    )
    return await access_saml_connection(ctx, connection_id)
