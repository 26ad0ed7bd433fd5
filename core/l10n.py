"""Formatting for people, per language: dates and times in a zone, counts with plurals.

Every date or time a person reads goes through here (pages through `web.pages.page_helpers`,
mails, exports' human text); machine formats (API JSON, CSV and XLSX machine columns, webhook
payloads) keep ISO 8601 UTC and never come here.

- `BABEL_LOCALES` is the one table from our language codes to Babel's locales: English is
  British English (day, month, year) since Jalon's customers are European.
- A moment is shown in the organization's zone, with that zone named ("3 Dec 2026, 14:05
  (Europe/Paris)"): a reader never has to guess whether a time is UTC. No seconds.
- `plural` is `ngettext` with `{name}` parameters, `count` among them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_time, get_datetime_format

from core.i18n import translations
from core.l10n_elision import elide

Width = Literal["short", "medium", "long", "full"]

#: Our language code -> the Babel locale that formats dates and numbers for it.
BABEL_LOCALES: dict[str, str] = {
    "en": "en_GB",
    "fr": "fr_FR",
    "nl": "nl_BE",
    "de": "de_BE",
}


#: Languages whose spreadsheets read `;` between cells and `,` before decimals (Excel in
#: French, Dutch and German): the CSV exports and the import template follow it.
SEMICOLON_LOCALES = frozenset({"fr", "nl", "de"})


def csv_delimiter(locale: str) -> str:
    """The cell separator of `locale`'s spreadsheets: `;` or `,`."""
    return ";" if locale.split("-")[0].split("_")[0] in SEMICOLON_LOCALES else ","


def babel_locale(locale: str) -> str:
    """The Babel locale for one of our language codes (`en` -> `en_GB`)."""
    return BABEL_LOCALES.get(locale, locale)


def zone_name(zone: tzinfo | None) -> str:
    """The zone's IANA name ("Europe/Paris"), as shown next to a time; "UTC" for none."""
    if zone is None:
        return "UTC"
    key = getattr(zone, "key", None)
    return str(key) if key else str(zone.tzname(None) or "UTC")


def zone_named(name: str | None) -> tzinfo:
    """The zone of that IANA name; UTC for none or an unknown one."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def format_day(
    value: date | datetime | None, locale: str, zone: tzinfo | None = None, width: Width = "medium"
) -> str:
    """A calendar day ("3 Dec 2026", "3 déc. 2026"); a moment is first put in `zone`.
    Empty for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(zone or UTC).date()
    return str(format_date(value, width, locale=babel_locale(locale)))


def format_clock(value: datetime | None, locale: str, zone: tzinfo | None = None) -> str:
    """A time of day in `zone`, with the zone named: "14:05 (Europe/Paris)"."""
    if value is None:
        return ""
    when = value.astimezone(zone or UTC)
    clock = format_time(when, "short", locale=babel_locale(locale))
    return f"{clock} ({zone_name(zone)})"


def format_moment(
    value: datetime | None,
    locale: str,
    zone: tzinfo | None = None,
    width: Width = "medium",
    *,
    with_zone: bool = True,
) -> str:
    """A moment in `zone`: its day at `width`, its time without seconds, and the zone's name
    ("3 Dec 2026, 14:05 (Europe/Paris)"). Empty for None."""
    if value is None:
        return ""
    where = babel_locale(locale)
    when = value.astimezone(zone or UTC)
    day = format_date(when.date(), width, locale=where)
    clock = format_time(when, "short", locale=where)
    text = str(get_datetime_format(width, locale=where)).replace("{1}", day).replace("{0}", clock)
    return f"{text} ({zone_name(zone)})" if with_zone else text


def plural(locale: str, singular: str, plural_form: str, count: int, **params: Any) -> str:
    """`ngettext` in `locale`, then `{name}` parameters filled in (`count` is one of them)."""
    text = translations(locale).ngettext(singular, plural_form, count)
    params.setdefault("count", count)
    return elide(locale, text, params).format(**params)
