"""Which addresses webhooks may reach: the guard against server-side request forgery.

An endpoint's URL is checked when it is saved (`clean_url`: scheme, credentials, what the
sender and IDNA accept, and in production no literal private address), and its host name is
resolved again before each attempt (`check_destination`): a name may point elsewhere since it
was saved. Outside production, or with JALON_WEBHOOKS_ALLOW_PRIVATE_NETWORKS, private networks
are allowed, so a receiver on the developer's machine works.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import unicodedata
from urllib.parse import urlsplit

import httpx
import idna

from core.errors import Invalid
from core.i18n import N_
from core.settings import get_settings

MAX_URL_LENGTH = 2000

#: Why an address is refused, at saving or at an attempt (shown translated).
PRIVATE_ERROR = N_("The address leads to a private network.")


def private_networks_allowed() -> bool:
    """True outside production, or when JALON_WEBHOOKS_ALLOW_PRIVATE_NETWORKS says so."""
    return get_settings().webhooks_allow_private_networks


def is_public_address(address: str) -> bool:
    """True for an IP address on the public internet (an IPv4-mapped IPv6 address counts as
    its IPv4 one; a zone suffix `%eth0` is ignored); `ValueError` for what is not an address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _check_idna(host: str) -> None:
    """Raise `UnicodeError` for a host name that IDNA 2008 refuses (a non-ASCII name that
    cannot be encoded, or an ASCII `xn--` label that does not decode)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return  # an address, not a name
    except ValueError:
        pass
    if host.isascii():
        for label in host.split("."):
            if label.lower().startswith("xn--"):
                idna.decode(label)
    else:
        idna.encode(host, uts46=True)


def clean_url(value: str | None, *, allow_private: bool) -> str:
    """An http(s) URL for an endpoint; `Invalid` for another scheme, credentials in the URL,
    and (unless `allow_private`) a literal private, loopback or link-local address."""
    url = (value or "").strip()
    if not url:
        raise Invalid("This field is required.", field="url")
    if len(url) > MAX_URL_LENGTH:
        raise Invalid(
            "This field is too long ({max} characters at most).", field="url", max=MAX_URL_LENGTH
        )
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        raise Invalid("Enter an address starting with https:// or http://.", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise Invalid("Enter an address starting with https:// or http://.", field="url") from None
    # (the table's check wants 10 characters at least: "http://a/" is no receiver anyway)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) < 10:
        raise Invalid("Enter an address starting with https:// or http://.", field="url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("Leave the user name and password out of the address.", field="url")
    try:
        # what the sender will do with it: an address httpx or IDNA refuses is refused here
        httpx.URL(url)
        _check_idna(parts.hostname)
    except (httpx.InvalidURL, UnicodeError, ValueError):
        raise Invalid("Enter an address starting with https:// or http://.", field="url") from None
    if not allow_private:
        host = parts.hostname.lower()
        if host == "localhost" or host.endswith(".localhost"):
            raise Invalid(PRIVATE_ERROR, field="url")
        try:
            literal = is_public_address(host)
        except ValueError:
            literal = True  # a name: checked again, resolved, before each attempt
        if not literal:
            raise Invalid(PRIVATE_ERROR, field="url")
    return url


class RefusedDestination(Exception):
    """The endpoint's name resolves to an address webhooks may not reach."""


async def check_destination(url: str) -> None:
    """Resolve the endpoint's host and refuse it (`RefusedDestination`) when any address is
    not public; a name that does not resolve is `httpx.ConnectError`, as the client would say.
    Checked at each attempt: a name may point elsewhere since it was saved."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise httpx.ConnectError(f"cannot resolve {host}: {error}") from error
    if not infos or not all(is_public_address(str(info[4][0])) for info in infos):
        raise RefusedDestination(PRIVATE_ERROR)
