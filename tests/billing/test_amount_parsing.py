"""Amounts and prices typed by staff: a lone separator followed by exactly three digits is
refused, a point as much as a comma ("1.200" is 1 200 in French, German, Spanish or Dutch,
1.20 in English), whichever parser reads it."""

from __future__ import annotations

import pytest

from billing.catalogue import parse_price
from billing.payments import parse_amount
from core.errors import Invalid


@pytest.mark.parametrize("text", ["1.200", "12.500", "0.100", "1 200.000"])
def test_a_point_followed_by_three_digits_is_ambiguous(text: str) -> None:
    with pytest.raises(Invalid) as amount:
        parse_amount(text, "EUR")
    assert "write 1200 or 1 200,00" in amount.value.message
    with pytest.raises(Invalid) as price:
        parse_price(text, "EUR")
    assert "write 1200 or 1 200,00" in price.value.message
    assert price.value.field == "unit_amount"


@pytest.mark.parametrize(
    ("text", "minor"),
    [("1.20", 120), ("1.2", 120), ("1.200,50", 120_050), ("1,200.50", 120_050), ("1200", 120_000)],
)
def test_unambiguous_amounts_are_still_read(text: str, minor: int) -> None:
    assert parse_amount(text, "EUR") == minor
    assert parse_price(text, "EUR") == minor
