"""Money: integer minor units of an ISO 4217 currency, formatted per locale."""

from __future__ import annotations

import pytest

from billing.money import Money, currency_code, minor_digits, total
from core.errors import Invalid


def test_amounts_of_one_currency_add_and_subtract() -> None:
    assert Money(1050, "EUR") + Money(-50, "EUR") == Money(1000, "EUR")
    assert Money(1000, "EUR") - Money(1, "EUR") == Money(999, "EUR")
    assert -Money(5, "EUR") == Money(-5, "EUR")
    assert 3 * Money(333, "EUR") == Money(999, "EUR")
    assert total([Money(1, "EUR"), Money(2, "EUR")], "EUR") == Money(3, "EUR")


def test_amounts_of_two_currencies_do_not_mix() -> None:
    with pytest.raises(ValueError, match="different currencies"):
        Money(1, "EUR") + Money(1, "USD")


def test_money_is_whole_minor_units_only() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["EUX", "FRF", "", "euro", "XXX"])
def test_unknown_currencies_are_refused(code: str) -> None:
    with pytest.raises(Invalid) as refused:
        currency_code(code)
    assert refused.value.field == "currency"
    with pytest.raises(Invalid):
        Money(1, code)


def test_currency_codes_are_read_in_any_case() -> None:
    assert currency_code(" eur ") == "EUR"


def test_each_currency_has_its_minor_units() -> None:
    assert (minor_digits("EUR"), minor_digits("JPY"), minor_digits("KWD")) == (2, 0, 3)
    assert str(Money(123456, "EUR").decimal) == "1234.56"
    assert str(Money(1234, "JPY").decimal) == "1234"


def test_amounts_are_written_as_each_locale_writes_them() -> None:
    assert Money(123450, "EUR").format("fr") == "1\u202f234,50\xa0€"
    assert Money(123450, "EUR").format("en") == "€1,234.50"
    assert Money(-500, "USD").format("en") == "-US$5.00"  # en_GB


@pytest.mark.parametrize(
    ("locale", "currency", "written"),
    [
        # our language codes go through core.l10n.BABEL_LOCALES: English is en_GB, where a
        # dollar is "US$" (bare "en" would write "$", ambiguous to a European reader)
        ("en", "EUR", "€1,234.50"),
        ("en", "USD", "US$1,234.50"),
        ("fr", "EUR", "1\u202f234,50\u00a0€"),
        ("nl", "EUR", "€\u00a01.234,50"),  # nl_BE
        ("nl", "USD", "US$\u00a01.234,50"),
        ("de", "EUR", "1.234,50\u00a0€"),  # de_BE
        ("de", "CHF", "1.234,50\u00a0CHF"),
    ],
)
def test_money_is_written_as_each_language_writes_it(
    locale: str, currency: str, written: str
) -> None:
    assert Money(123450, currency).format(locale) == written
