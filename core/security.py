"""Secrets: password hashing (argon2id), random tokens and their stored digests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.settings import get_settings

_T = TypeVar("_T")

#: argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane): about 30 ms of one
#: core here, against argon2-cffi's default (RFC 9106's "low memory" 64 MiB, 3 passes,
#: 4 lanes), about 190 ms, which 20 sign-ins a second could not fit beside the pages on two
#: cores (ADR 0023). Hashes made with other parameters still verify, and are re-hashed with
#: these at the next sign-in (`needs_rehash`).
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)

#: Verifying against this keeps the time of a login for an unknown email like a known one.
_DUMMY_HASH = _hasher.hash("not a real password")


# argon2id takes tens of milliseconds of a core and 64 MiB by design. It runs on worker
# threads (the library releases the GIL), so one sign-in does not stall every other request;
# and on a few of them only (`password_hash_threads`, ADR 0023), so a storm of sign-ins queues
# here instead of taking every core (and 64 MiB per hash) from the pages.
_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_running = 0
_peak = 0


def configure_hashing(threads: int) -> None:
    """Hash and verify passwords on `threads` worker threads from now on (the setting
    `password_hash_threads` otherwise, read at the first hash)."""
    global _executor
    with _lock:
        previous, _executor = _executor, _new_executor(threads)
    if previous is not None:
        previous.shutdown(wait=False)


def _new_executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="argon2")


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = _new_executor(get_settings().password_hash_threads)
    return _executor


def hashing_peak(*, reset: bool = False) -> int:
    """The most hashes or verifications ever running at once in this process (then zero,
    with `reset`): never more than the threads."""
    global _peak
    with _lock:
        peak = _peak
        if reset:
            _peak = 0
    return peak


def _counted(work: Callable[[], _T]) -> _T:
    global _running, _peak
    with _lock:
        _running += 1
        _peak = max(_peak, _running)
    try:
        return work()
    finally:
        with _lock:
            _running -= 1


async def _on_hashing_thread(work: Callable[[], _T]) -> _T:
    # A request that gives up while waiting (the client went away) leaves the queue: asyncio
    # cancels the pending call, which then never runs.
    return await asyncio.get_running_loop().run_in_executor(_pool(), _counted, work)


async def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return await _on_hashing_thread(partial(_hasher.hash, password))


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; spends the same effort when there is no hash."""
    return await _on_hashing_thread(partial(_verify, password_hash, password))


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
