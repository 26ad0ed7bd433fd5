"""Engine fixtures: small banks written by hand, and generated reference pools."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.bank import Bank, load_bank
from engine.pool import ItemPool
from engine.simulation import reference_pool

BANKS = Path(__file__).parent / "banks"


@pytest.fixture(scope="session")
def small_bank() -> Bank:
    """Three competences, seven tubes' worth of skills, fr/en, every status and type."""
    return load_bank(BANKS / "small")


@pytest.fixture(scope="session")
def pool_2pl() -> ItemPool:
    """The reference 2PL bank (500 items), without content tags."""
    return reference_pool(500, "2PL", np.random.default_rng(101))


@pytest.fixture(scope="session")
def tagged_pool() -> ItemPool:
    """A 2PL bank of 600 items over 12 competences, 4 items per tube, 2 per skill."""
    return reference_pool(600, "2PL", np.random.default_rng(102), competences=12)
