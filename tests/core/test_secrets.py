"""Secrets at rest: AES-GCM under the configured keys, rotation, and what is refused."""

from __future__ import annotations

import base64
import os

import pytest

from core.secrets import Keyring, KeysMissing, SecretUnreadable
from core.settings import load_settings


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


def test_a_secret_comes_back_from_its_ciphertext_and_is_not_in_it() -> None:
    keyring = Keyring.from_base64([_key()])
    sealed = keyring.encrypt("client-secret-value", "tenant/connection")
    assert b"client-secret-value" not in sealed
    assert keyring.decrypt(sealed, "tenant/connection") == "client-secret-value"


def test_the_same_secret_encrypts_differently_each_time() -> None:
    keyring = Keyring.from_base64([_key()])
    assert keyring.encrypt("s", "c") != keyring.encrypt("s", "c")


def test_an_old_key_still_decrypts_and_rotation_moves_to_the_new_key() -> None:
    old, new = _key(), _key()
    sealed = Keyring.from_base64([old]).encrypt("secret", "ctx")
    rotated_ring = Keyring.from_base64([new, old])
    assert not rotated_ring.is_current(sealed)
    assert rotated_ring.decrypt(sealed, "ctx") == "secret"
    rotated = rotated_ring.reencrypt(sealed, "ctx")
    assert rotated_ring.is_current(rotated)
    # Once the old key is dropped, only the re-encrypted value opens.
    new_only = Keyring.from_base64([new])
    assert new_only.decrypt(rotated, "ctx") == "secret"
    with pytest.raises(SecretUnreadable, match="not in JALON_SSO_KEYS"):
        new_only.decrypt(sealed, "ctx")


def test_a_tampered_ciphertext_is_refused() -> None:
    keyring = Keyring.from_base64([_key()])
    sealed = bytearray(keyring.encrypt("secret", "ctx"))
    sealed[-1] ^= 0x01
    with pytest.raises(SecretUnreadable, match="altered"):
        keyring.decrypt(bytes(sealed), "ctx")


def test_a_ciphertext_moved_to_another_row_is_refused() -> None:
    keyring = Keyring.from_base64([_key()])
    sealed = keyring.encrypt("secret", "tenant-a/connection-1")
    with pytest.raises(SecretUnreadable, match="altered"):
        keyring.decrypt(sealed, "tenant-b/connection-1")


def test_a_ciphertext_under_an_unknown_key_is_refused() -> None:
    sealed = Keyring.from_base64([_key()]).encrypt("secret", "ctx")
    with pytest.raises(SecretUnreadable, match="not in JALON_SSO_KEYS"):
        Keyring.from_base64([_key()]).decrypt(sealed, "ctx")


def test_garbage_is_not_a_ciphertext() -> None:
    with pytest.raises(SecretUnreadable):
        Keyring.from_base64([_key()]).decrypt(b"\x00plain", "ctx")


def test_no_key_means_no_secret_is_stored() -> None:
    with pytest.raises(KeysMissing, match="JALON_SSO_KEYS"):
        Keyring(()).encrypt("secret", "ctx")


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_key_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ValueError, match="key 1"):
        Keyring.from_base64([bad])


def test_production_never_generates_a_key_and_development_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("JALON_SSO_KEYS", raising=False)
    monkeypatch.setenv("JALON_DATA_DIR", str(tmp_path))
    development = load_settings()
    assert len(development.sso_keys) == 1
    assert load_settings().sso_keys == development.sso_keys  # kept in the data directory
    for name, value in {
        "JALON_ENV": "production",
        "JALON_SECRET_KEY": "k" * 64,
        "DATABASE_URL": "postgresql://owner@db/jalon",
        "JALON_SMTP_URL": "smtps://mailer:pw@smtp.example.org",
    }.items():
        monkeypatch.setenv(name, value)
    assert load_settings().sso_keys == ()
    monkeypatch.setenv("JALON_SSO_KEYS", f" {_key()} , {_key()} ")
    assert len(load_settings().sso_keys) == 2
