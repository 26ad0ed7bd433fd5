"""Secrets at rest: AES-256-GCM under keys from the settings (`JALON_SSO_KEYS`): SSO
connections' client secrets and private keys, and staff members' TOTP seeds.

A ciphertext is `version (1 byte) | key id (8) | nonce (12) | AES-GCM ciphertext and tag`.
The key id is a fingerprint of the key, so that the keyring may be reordered and an old key
kept for decryption only while `jalon sso rotate-keys` re-encrypts under the current one. The
caller passes an associated `context` (the row's tenant and id): a ciphertext copied onto
another row, or another organization's, fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import get_settings

_VERSION = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_HEADER = len(_VERSION) + _KEY_ID_BYTES + _NONCE_BYTES


class KeysMissing(RuntimeError):
    """No SSO key is configured (production without `JALON_SSO_KEYS`)."""


class SecretUnreadable(Exception):
    """A ciphertext that no key of the keyring opens: tampered, from another row, or under a
    key that was removed."""


def key_id(key: bytes) -> bytes:
    """The fingerprint that names `key` in its ciphertexts (not the key, not reversible)."""
    return hashlib.sha256(b"jalon-sso-key\x00" + key).digest()[:_KEY_ID_BYTES]


@dataclass(frozen=True)
class Keyring:
    """The SSO keys: the first encrypts, every one decrypts."""

    keys: tuple[bytes, ...]

    @classmethod
    def from_base64(cls, encoded: Sequence[str]) -> Keyring:
        """Parse base64 keys of 32 bytes each; anything else is a configuration error."""
        keys = []
        for position, text in enumerate(encoded, start=1):
            try:
                key = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as error:
                raise ValueError(f"JALON_SSO_KEYS: key {position} is not base64") from error
            if len(key) != 32:
                raise ValueError(f"JALON_SSO_KEYS: key {position} is not 32 bytes")
            keys.append(key)
        return cls(tuple(keys))

    @property
    def current(self) -> bytes:
        if not self.keys:
            raise KeysMissing(
                "SSO secrets need JALON_SSO_KEYS (see .env.example): none is configured"
            )
        return self.keys[0]

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """Encrypt `plaintext` under the current key, bound to `context`."""
        key = self.current
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return _VERSION + key_id(key) + nonce + sealed

    def decrypt(self, ciphertext: bytes, context: str) -> str:
        """The plaintext of `ciphertext`, or `SecretUnreadable` when no key opens it for
        `context` (tampered, unknown key, another row's)."""
        if len(ciphertext) <= _HEADER or ciphertext[:1] != _VERSION:
            raise SecretUnreadable("not a Jalon SSO ciphertext")
        wanted = ciphertext[1 : 1 + _KEY_ID_BYTES]
        nonce = ciphertext[1 + _KEY_ID_BYTES : _HEADER]
        key = next((k for k in self.keys if key_id(k) == wanted), None)
        if key is None:
            raise SecretUnreadable("encrypted under a key that is not in JALON_SSO_KEYS")
        try:
            plain = AESGCM(key).decrypt(nonce, ciphertext[_HEADER:], context.encode("utf-8"))
        except InvalidTag as error:
            raise SecretUnreadable("the ciphertext or its context was altered") from error
        return plain.decode("utf-8")

    def is_current(self, ciphertext: bytes) -> bool:
        """True when `ciphertext` is already under the current key."""
        return ciphertext[1 : 1 + _KEY_ID_BYTES] == key_id(self.current)

    def reencrypt(self, ciphertext: bytes, context: str) -> bytes:
        """`ciphertext` under the current key (decrypted with whichever key made it)."""
        return self.encrypt(self.decrypt(ciphertext, context), context)


def keyring() -> Keyring:
    """The process's keyring, from the settings."""
    return _keyring_for(get_settings().sso_keys)


_CACHE: dict[tuple[str, ...], Keyring] = {}


def _keyring_for(encoded: tuple[str, ...]) -> Keyring:
    found = _CACHE.get(encoded)
    if found is None:
        found = _CACHE[encoded] = Keyring.from_base64(encoded)
    return found
