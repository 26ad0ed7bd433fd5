"""Which addresses webhooks may reach: plain http(s) only, and no private network in
production, checked when an endpoint is saved and resolved again before each attempt."""

from __future__ import annotations

import pytest

from core.errors import Invalid
from tenants.webhooks.destinations import (
    PRIVATE_ERROR,
    RefusedDestination,
    check_destination,
    clean_url,
    is_public_address,
)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "https://user:pass@example.org/hook",
        "https://example.org:99999/hook",
        "https://exa mple.org/hook",
        "",
        "http://a/",  # shorter than any real receiver (and than the table allows)
        "http://xn--a.example/hook",  # IDNA the sender would refuse
        "http://☃☃.example/hook",
        "https://example.org/\u200bhook",  # an invisible format character
        "https://example.org/" + "x" * 2000,
    ],
)
def test_only_plain_http_and_https_addresses_are_accepted(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        clean_url(url, allow_private=True)
    assert refused.value.field == "url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        clean_url(url, allow_private=False)
    assert refused.value.message == PRIVATE_ERROR
    assert clean_url(url, allow_private=True) == url


def test_public_addresses_are_accepted() -> None:
    url = "https://hooks.example.org/jalon?team=hr"
    assert clean_url(url, allow_private=False) == url
    assert clean_url("http://93.184.216.34/x", allow_private=False)
    assert clean_url("  https://hooks.example.org/x \n", allow_private=False) == (
        "https://hooks.example.org/x"
    )


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("10.0.0.1", False),
        ("127.0.0.1", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped: judged as its IPv4 address
        ("::ffff:93.184.216.34", True),
        ("fe80::1%eth0", False),  # link-local, with a zone
        ("224.0.0.1", False),  # multicast
        ("100.64.0.1", False),  # carrier-grade NAT
    ],
)
def test_public_addresses_are_told_from_private_ones(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_a_name_is_not_an_address() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ipaddress's own error, no message to match
        is_public_address("hooks.example.org")


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery() -> None:
    with pytest.raises(RefusedDestination):
        await check_destination("http://localhost:9/hook")
