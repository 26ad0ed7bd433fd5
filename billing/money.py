"""Money: an integer amount of a currency's minor units (cents), never a float.

Currencies are the ISO 4217 codes in use today (the list below); amounts are formatted for a
locale with Babel, which knows each currency's number of minor units.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

from core.errors import Invalid
from core.i18n import N_
from core.l10n import babel_locale

#: ISO 4217 codes of the currencies legal tender somewhere today (from CLDR).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
    MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
    RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SYP SZL THB TJS TMT TND TOP TRY
    TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905 (a table reads better than 153 quoted strings)
)

UNKNOWN_CURRENCY = N_("Unknown currency: use a three-letter ISO 4217 code such as EUR.")
MIXED_CURRENCIES = "amounts in different currencies do not add up"


def currency_code(value: str, *, field: str = "currency") -> str:
    """`value` as an upper-case ISO 4217 code; `Invalid` when it is not one in use."""
    code = value.strip().upper()
    if code not in ISO_4217:
        raise Invalid(UNKNOWN_CURRENCY, field=field)
    return code


def minor_digits(currency: str) -> int:
    """How many minor-unit digits `currency` has: 2 for EUR, 0 for JPY, 3 for KWD."""
    return int(get_currency_precision(currency))


@dataclass(frozen=True, order=False)
class Money:
    """`amount` minor units of `currency` (an ISO 4217 code); negative for credits."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount is an integer number of minor units")
        if self.currency not in ISO_4217:
            raise Invalid(UNKNOWN_CURRENCY, field="currency")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(MIXED_CURRENCIES)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, times: int) -> Money:
        return Money(self.amount * times, self.currency)

    __rmul__ = __mul__

    @property
    def decimal(self) -> Decimal:
        """The amount in major units, exactly (12.34 for 1234 cents of EUR)."""
        return Decimal(self.amount).scaleb(-minor_digits(self.currency))

    def format(self, locale: str) -> str:
        """The amount as `locale` (one of our language codes) writes it, through
        `core.l10n.BABEL_LOCALES`: "1 234,50 €" in fr, "€1,234.50" in en, "€ 1.234,50" in nl."""
        return str(format_currency(self.decimal, self.currency, locale=babel_locale(locale)))

    def __str__(self) -> str:
        return f"{self.decimal} {self.currency}"


def total(amounts: list[Money], currency: str) -> Money:
    """The sum of `amounts`, all in `currency` (zero for none)."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
