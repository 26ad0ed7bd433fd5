"""A SAML identity provider in the test process: pysaml2's `Server` with its own key pair and
metadata, issuing responses for the SPs it is told to trust, signed by xmlsec1 as a real IdP
signs them.

Every response is built unsigned by pysaml2, then adjusted (the knobs of `Issue`: lifetime,
audience, recipient, InResponseTo…), then signed: the assertion, the response, both or
neither. The attacks that need a valid signature over something else (signature wrapping)
take a signed response and rearrange it, as an attacker holding one would.
"""

from __future__ import annotations

import base64
import copy
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped]  # installed with factur-x
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.sigver import pre_signature_part

from sso.saml import XMLSEC

with warnings.catch_warnings():
    # pysaml2's server module names a cipher mode that cryptography moved (CFB); it is
    # never used here, and the suite turns warnings into errors.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2.server import Server

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}
ASSERTION_NODE = f"{SAML}:Assertion"
RESPONSE_NODE = f"{SAMLP}:Response"

AUTHN = {
    "class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    "authn_auth": "https://idp.example.test",
}


def key_pair(common_name: str) -> tuple[str, str]:
    """An RSA key and a self-signed certificate, PEM (2048 bits: test speed)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
        certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


@dataclass(frozen=True)
class Person:
    """Who signs in at the IdP, and the attributes it releases."""

    email: str
    given_name: str = "Ada"
    family_name: str = "Lovelace"
    groups: tuple[str, ...] = ()
    employee_number: str = ""
    name_id: str = field(default_factory=lambda: f"id-{uuid4().hex[:12]}")


@dataclass
class Issue:
    """How to issue one response: the honest defaults, and a knob per attack."""

    sign_assertion: bool = True
    sign_response: bool = False
    in_response_to: str | None = None
    #: None: the SP's own entity id / ACS
    audience: str | None = None
    recipient: str | None = None
    destination: str | None = None
    #: shift every time in the assertion (issue instant, NotBefore, NotOnOrAfter) by this
    shift: timedelta = timedelta(0)
    lifetime: timedelta = timedelta(minutes=5)
    #: the IdP's own attribute names: friendly OIDs by default, Entra ID's claim URIs if set
    entra_claims: bool = False


class TestIdp:
    """The identity provider: its metadata, and responses for the SPs it trusts."""

    __test__ = False

    def __init__(
        self,
        entity_id: str = "https://idp.example.test/saml/metadata",
        sso_url: str = "https://idp.example.test/saml/sso",
    ) -> None:
        self.entity_id = entity_id
        self.sso_url = sso_url
        self.key_pem, self.cert_pem = key_pair("Test IdP")
        self._dir = tempfile.mkdtemp(prefix="jalon-test-idp-")
        self.key_file = self._write("idp.key", self.key_pem)
        self.cert_file = self._write("idp.crt", self.cert_pem)
        self._sp_metadata: list[str] = []
        self.server = self._server()

    def _write(self, name: str, content: str) -> str:
        path = os.path.join(self._dir, name)
        with open(path, "w") as file:
            file.write(content)
        return path

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC,
            "key_file": self.key_file,
            "cert_file": self.cert_file,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (self.sso_url, BINDING_HTTP_REDIRECT),
                            (self.sso_url, BINDING_HTTP_POST),
                        ]
                    },
                    "policy": {"default": {"lifetime": {"minutes": 5}}},
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                }
            },
            "delete_tmpfiles": True,
        }
        if self._sp_metadata:
            config["metadata"] = {"inline": list(self._sp_metadata)}
        return config

    def _server(self) -> Server:
        config = IdPConfig()
        config.load(self._config())
        return Server(config=config)

    @property
    def metadata(self) -> str:
        """The IdP's metadata XML (what an admin uploads, or what its URL serves)."""
        config = IdPConfig()
        config.load(self._config())
        data = create_metadata_string(None, config=config, valid=None)
        return data.decode("utf-8") if isinstance(data, bytes) else str(data)

    def trust(self, sp_metadata: str) -> None:
        """Register an SP by its metadata (as an IdP admin does)."""
        self._sp_metadata.append(sp_metadata)
        self.server = self._server()

    def read_request(self, redirect_url: str) -> tuple[str, str, str]:
        """The AuthnRequest the SP redirected to: (its id, the ACS it asks for, RelayState)."""
        query = parse_qs(urlsplit(redirect_url).query)
        assert redirect_url.startswith(self.sso_url)
        request = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        message = request.message
        return message.id, message.assertion_consumer_service_url, query["RelayState"][0]

    # --- issuing ------------------------------------------------------------------------

    def _unsigned(self, sp_entity_id: str, acs_url: str, person: Person, issue: Issue) -> str:
        if issue.entra_claims:
            claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
            identity = {
                f"{claims}/emailaddress": [person.email],
                f"{claims}/givenname": [person.given_name],
                f"{claims}/surname": [person.family_name],
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": list(
                    person.groups
                ),
            }
        else:
            identity = {
                "mail": [person.email],
                "givenName": [person.given_name],
                "sn": [person.family_name],
                "groups": list(person.groups),
            }
        if person.employee_number:
            identity["employeeNumber"] = [person.employee_number]
        response = self.server.create_authn_response(
            identity={k: v for k, v in identity.items() if v},
            in_response_to=issue.in_response_to,
            destination=acs_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=person.name_id),
            authn=AUTHN,
            sign_response=False,
            sign_assertion=False,
        )
        root = etree.fromstring(str(response).encode("utf-8"))
        self._adjust(root, sp_entity_id, acs_url, issue)
        return str(etree.tostring(root, encoding="unicode"))

    @staticmethod
    def _adjust(root: Any, sp_entity_id: str, acs_url: str, issue: Issue) -> None:
        now = datetime.now(UTC).replace(microsecond=0) + issue.shift

        def stamp(moment: datetime) -> str:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        if issue.destination is not None:
            root.set("Destination", issue.destination)
        root.set("IssueInstant", stamp(now))
        for assertion in root.iter(f"{{{SAML}}}Assertion"):
            assertion.set("IssueInstant", stamp(now))
            for conditions in assertion.iter(f"{{{SAML}}}Conditions"):
                conditions.set("NotBefore", stamp(now - timedelta(seconds=30)))
                conditions.set("NotOnOrAfter", stamp(now + issue.lifetime))
            for audience in assertion.iter(f"{{{SAML}}}Audience"):
                audience.text = issue.audience or sp_entity_id
            for data in assertion.iter(f"{{{SAML}}}SubjectConfirmationData"):
                data.set("Recipient", issue.recipient or acs_url)
                data.set("NotOnOrAfter", stamp(now + issue.lifetime))
                if issue.in_response_to:
                    data.set("InResponseTo", issue.in_response_to)
                elif "InResponseTo" in data.attrib:
                    del data.attrib["InResponseTo"]
            for statement in assertion.iter(f"{{{SAML}}}AuthnStatement"):
                statement.set("AuthnInstant", stamp(now))
        if not issue.in_response_to and "InResponseTo" in root.attrib:
            del root.attrib["InResponseTo"]

    def sign(self, xml: str, node: str, node_id: str) -> str:
        """`xml` with the element `node_id` (an Assertion or the Response) signed."""
        root = etree.fromstring(xml.encode("utf-8"))
        target = root if root.get("ID") == node_id else None
        if target is None:
            target = next(e for e in root.iter() if e.get("ID") == node_id)
        template = etree.fromstring(str(pre_signature_part(ident=node_id)).encode("utf-8"))
        issuer = target.find(f"{{{SAML}}}Issuer")
        position = list(target).index(issuer) + 1 if issuer is not None else 0
        target.insert(position, template)
        signed = self.server.sec.sign_statement(
            etree.tostring(root, encoding="unicode"), node, key_file=self.key_file, node_id=node_id
        )
        return str(signed)

    def response_xml(
        self, sp_entity_id: str, acs_url: str, person: Person, issue: Issue | None = None
    ) -> str:
        """A response for the SP, signed as `issue` says, as XML text."""
        issue = issue or Issue()
        xml = self._unsigned(sp_entity_id, acs_url, person, issue)
        root = etree.fromstring(xml.encode("utf-8"))
        assertion = root.find(f"{{{SAML}}}Assertion")
        assert assertion is not None
        if issue.sign_assertion:
            xml = self.sign(xml, ASSERTION_NODE, assertion.get("ID"))
        if issue.sign_response:
            xml = self.sign(xml, RESPONSE_NODE, root.get("ID"))
        return xml

    def response(
        self, sp_entity_id: str, acs_url: str, person: Person, issue: Issue | None = None
    ) -> str:
        """The same, base64 as the POST binding carries it (the form's `SAMLResponse`)."""
        return encode(self.response_xml(sp_entity_id, acs_url, person, issue))

    def encrypted_response(
        self,
        sp_entity_id: str,
        acs_url: str,
        sp_certificate_pem: str,
        person: Person,
        in_response_to: str,
        *,
        sign_assertion: bool = True,
    ) -> str:
        """A response whose assertion is encrypted for the SP's certificate (as Entra ID does
        with token encryption on), signed inside, as pysaml2's IdP makes it; base64."""
        response = self.server.create_authn_response(
            identity={"mail": [person.email], "givenName": [person.given_name]},
            in_response_to=in_response_to,
            destination=acs_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=person.name_id),
            authn=AUTHN,
            sign_response=False,
            sign_assertion=sign_assertion,
            encrypt_assertion=True,
            encrypt_cert_assertion=sp_certificate_pem,
        )
        return encode(str(response))


def encode(xml: str) -> str:
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


# --- signature wrapping -------------------------------------------------------------------


def _evil(assertion: Any, email: str) -> Any:
    """A copy of `assertion` without its signature, whose mail attribute says `email`."""
    evil = copy.deepcopy(assertion)
    for signature in evil.findall(f"{{{DS}}}Signature"):
        evil.remove(signature)
    for attribute in evil.iter(f"{{{SAML}}}Attribute"):
        if attribute.get("FriendlyName") == "mail" or attribute.get("Name") in (
            "mail",
            "urn:oid:0.9.2342.19200300.100.1.3",
        ):
            for value in attribute.iter(f"{{{SAML}}}AttributeValue"):
                value.text = email
    subject = evil.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")
    if subject is not None:
        subject.text = "evil-" + (subject.text or "")
    return evil


def xsw_sibling(signed_xml: str, email: str) -> str:
    """XSW: an evil copy of the signed assertion, same ID, placed before it in the response:
    a verifier that checks the signature by ID but reads the first assertion is fooled."""
    root = etree.fromstring(signed_xml.encode("utf-8"))
    original = root.find(f"{{{SAML}}}Assertion")
    evil = _evil(original, email)
    root.insert(list(root).index(original), evil)
    return str(etree.tostring(root, encoding="unicode"))


def xsw_wrap(signed_xml: str, email: str) -> str:
    """XSW: the evil assertion (same ID) takes the signed one's place, and carries the signed
    original inside its own Signature's Object, where the ID lookup still finds it."""
    root = etree.fromstring(signed_xml.encode("utf-8"))
    original = root.find(f"{{{SAML}}}Assertion")
    evil = _evil(original, email)
    signature = copy.deepcopy(original.find(f"{{{DS}}}Signature"))
    holder = etree.SubElement(signature, f"{{{DS}}}Object")
    holder.append(copy.deepcopy(original))
    issuer = evil.find(f"{{{SAML}}}Issuer")
    evil.insert(list(evil).index(issuer) + 1, signature)
    root.replace(original, evil)
    return str(etree.tostring(root, encoding="unicode"))


def xsw_response(signed_xml: str, email: str) -> str:
    """XSW on a signed response: a new unsigned response holds the evil assertion, and the
    signed original response hides in its Extensions."""
    original = etree.fromstring(signed_xml.encode("utf-8"))
    evil_root = copy.deepcopy(original)
    for signature in evil_root.findall(f"{{{DS}}}Signature"):
        evil_root.remove(signature)
    assertion = evil_root.find(f"{{{SAML}}}Assertion")
    evil_root.replace(assertion, _evil(assertion, email))
    evil_root.set("ID", "_evil" + uuid4().hex)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(original)
    issuer = evil_root.find(f"{{{SAML}}}Issuer")
    evil_root.insert(list(evil_root).index(issuer) + 1, extensions)
    return str(etree.tostring(evil_root, encoding="unicode"))


def tamper(signed_xml: str, email: str) -> str:
    """The signed assertion's mail attribute changed after signing."""
    root = etree.fromstring(signed_xml.encode("utf-8"))
    for value in root.iter(f"{{{SAML}}}AttributeValue"):
        if "@" in (value.text or ""):
            value.text = email
    return str(etree.tostring(root, encoding="unicode"))
