"""Secrets: password hashing (argon2id), random tokens and their stored digests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

#: Verifying against this keeps the time of a login for an unknown email like a known one.
_DUMMY_HASH = _hasher.hash("not a real password")


# argon2id takes tens of milliseconds and 64 MiB by design: it runs on a worker thread
# (the library releases the GIL) so one sign-in does not stall every other request.


async def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; spends the same effort when there is no hash."""
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> bytes:
    """What is stored of a token: its SHA-256 (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).digest()


def sign(key: str, message: bytes) -> str:
    """Hex HMAC-SHA256 of `message` under `key`."""
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
