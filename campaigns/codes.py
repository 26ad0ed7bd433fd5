"""Campaign codes: what a participant types or follows (`/c/{code}`).

Nine characters from an alphabet without look-alikes (no 0/O, 1/I/L): eight random ones and a
check character. The check makes the weighted sum Σ (i + 1)·value(cᵢ) a multiple of 31; as 31
is prime and the weights 1…9 are distinct, every single wrong character and every swap of two
characters is caught before any lookup. 31^8 ≈ 8.5 × 10^11 codes; `campaign_code` keeps them
unique across tenants.
"""

from __future__ import annotations

import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
RANDOM_LENGTH = 8
LENGTH = RANDOM_LENGTH + 1
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
_N = len(ALPHABET)


def _weighted_sum(text: str) -> int:
    return sum((i + 1) * _INDEX[ch] for i, ch in enumerate(text)) % _N


def check_character(payload: str) -> str:
    """The check character completing `payload` (`RANDOM_LENGTH` characters of `ALPHABET`)."""
    # Solve weighted_sum(payload) + LENGTH·x ≡ 0 (mod 31) for x.
    return ALPHABET[(-_weighted_sum(payload) * pow(LENGTH, -1, _N)) % _N]


def new_code() -> str:
    """A random, well-formed code (uniqueness is the database's job)."""
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return payload + check_character(payload)


def normalize_code(text: str) -> str:
    """What a person typed, as a code: upper case, without spaces or hyphens."""
    return "".join(ch for ch in text.upper() if ch not in " -\t\u00a0")


def is_well_formed(code: str) -> bool:
    """True when `code` (normalized) has the right length, alphabet and check character."""
    return len(code) == LENGTH and all(ch in _INDEX for ch in code) and _weighted_sum(code) == 0
