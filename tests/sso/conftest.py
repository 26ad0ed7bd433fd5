"""Fixtures the SSO tests share: the HTTP fixtures of `tests/api` (the application, a client,
a browser) and the real OpenID provider of `tests/peers/oidc`, started once per session on
127.0.0.1 and stopped at the end. Under CI a missing peer is a failure, never a skip."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from uuid import UUID

import httpx
import pytest

from core.settings import get_settings
from sso.connections import ConnectionFields, create_connection, set_enabled
from sso.oidc import OidcConnectionForm, forget_keys, save_connection
from tests.api.conftest import app, browser, client  # noqa: F401 - fixtures shared here
from tests.conftest import IN_CI, TenantFixture

PEER_DIR = Path(__file__).resolve().parent.parent / "peers" / "oidc"
_INTERACTION = re.compile(r"/interaction/([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class OidcPeer:
    """The running OpenID provider and what a test does with it."""

    issuer: str

    def _control(self, method: str, path: str, payload: Any = None) -> Any:
        response = httpx.request(method, self.issuer + path, json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """A new client of the provider (RFC 7591), for `redirect_uri`: (id, secret)."""
        registered = self._control(
            "POST",
            "/reg",
            {
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "client_secret_basic",
            },
        )
        return registered["client_id"], registered["client_secret"]

    def set_claims(self, login: str, claims: dict[str, Any]) -> None:
        """What the provider says of the account `login` (besides sub, email, verified)."""
        self._control("POST", "/_peer/accounts", {login: claims})

    def rotate_keys(self) -> str:
        """Sign with a new key from now on (the old one stays published); its kid."""
        kid: str = self._control("POST", "/_peer/rotate")["kid"]
        return kid

    def withdraw_old_keys(self) -> None:
        """Publish only the current signing key: the older ones are withdrawn."""
        self._control("POST", "/_peer/withdraw-old-keys")

    def signing_key(self) -> dict[str, Any]:
        """The provider's current private signing key, as a JWK (for forging tokens)."""
        key: dict[str, Any] = self._control("GET", "/_peer/signing-key")
        return key

    def replace_next_id_token(self, id_token: str) -> None:
        """The next token response carries `id_token` instead of the one the provider made."""
        self._control("POST", "/_peer/next-id-token", {"id_token": id_token})

    async def log_in(self, authorization_url: str, login: str) -> str:
        """Play the person at the provider: open `authorization_url`, sign in as `login` on
        the development login form, and return the URL the provider sends the browser back
        to (the connection's callback, with code and state)."""
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as at_provider:
            url = authorization_url
            for _ in range(10):
                if not url.startswith(self.issuer):
                    return url
                response = await at_provider.get(url)
                if response.status_code == 200:
                    match = _INTERACTION.search(str(response.url))
                    assert match, response.text[:500]
                    response = await at_provider.post(
                        f"{self.issuer}/interaction/{match.group(1)}",
                        data={"prompt": "login", "login": login},
                    )
                assert response.status_code in (302, 303), response.text[:500]
                url = urljoin(url, response.headers["location"])
        raise AssertionError("the provider never sent the browser back")


@pytest.fixture(autouse=True)
def _fresh_provider_keys() -> Iterator[None]:
    """Each test reads the providers' keys afresh: the cache (and its once-a-minute refetch
    for an unknown kid) is the process's, and tests must not depend on their order."""
    forget_keys()
    yield
    forget_keys()


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the OpenID provider peer needs it")
    return node


def _node_modules_or_fail() -> None:
    if not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        message = f"the OpenID provider peer is not installed: run `make peers` ({PEER_DIR})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def oidc_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcPeer]:
    """The OpenID provider of `tests/peers/oidc`, on a free port of 127.0.0.1."""
    _node_modules_or_fail()
    log = tmp_path_factory.mktemp("oidc-peer") / "stderr.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [_node(), "server.mjs"],
            cwd=PEER_DIR,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "PORT": "0"},
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening "):
            raise RuntimeError(f"the OpenID provider did not start: {log.read_text()[-2000:]}")
        issuer = line.split(" ", 1)[1]
        assert urlsplit(issuer).hostname == "127.0.0.1"
        yield OidcPeer(issuer)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


async def peer_connection(
    peer: OidcPeer, tenant: TenantFixture, *, enabled: bool = True, **form: Any
) -> UUID:
    """A connection of `tenant` to the provider, registered there with its redirect URI (the
    connection's id is in it, so it is made first), saved with `form`'s fields (a name,
    scopes, a role mapping…) and enabled unless told otherwise."""
    ctx = tenant.owner_ctx
    connection_id = await create_connection(
        ctx, ConnectionFields(protocol="oidc", name="Placeholder", secret="placeholder")
    )
    redirect_uri = f"{get_settings().base_url}/sso/{tenant.slug}/oidc/{connection_id}/callback"
    client_id, secret = peer.register_client(redirect_uri)
    fields = OidcConnectionForm(
        **({"name": "Peer"} | form), issuer=peer.issuer, client_id=client_id, client_secret=secret
    )
    await save_connection(ctx, fields, connection_id)
    if enabled:
        await set_enabled(ctx, connection_id, True)
    return connection_id
