"""Translations with Babel: one catalog for the whole product, in French, English, Dutch and
German (the first is the fallback when nothing else decides).

Catalogs are the `.po` files under `core/locale/`, compiled in memory at first use so that a
fresh checkout needs no build step.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from core.l10n_elision import elide

LOCALE_DIR = Path(__file__).parent / "locale"
LOCALES: tuple[str, ...] = ("fr", "en", "nl", "de")
#: Each language in its own name, as the language menus show it.
LOCALE_NAMES = {"fr": "Français", "en": "English", "nl": "Nederlands", "de": "Deutsch"}


def in_language(texts: Mapping[str, str], *locales: str | None) -> str:
    """A text the question bank gives in several languages (a competence's or an area's
    title, a question's statement), by language code: in the first of `locales` it has,
    else in English, else in any; empty when it has none."""
    for locale in (*locales, "en"):
        if locale and texts.get(locale):
            return texts[locale]
    return next(iter(texts.values()), "")


def N_(message: str) -> str:
    """Mark `message` for extraction without translating it here."""
    return message


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> Translations:
    """The compiled catalog for `locale` (English source strings when there is none)."""
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return Translations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def translate(locale: str, message: str, **params: Any) -> str:
    """`message` in `locale`, with `{name}` parameters filled in (French "de {name}" elided
    before a vowel: `core.l10n_elision`)."""
    text = translations(locale).gettext(message)
    return elide(locale, text, params).format(**params) if params else text


def best_locale(
    accept_language: str | None, default: str, *, among: Sequence[str] = LOCALES
) -> str:
    """The locale of `among` (by default every supported one) that an Accept-Language header
    prefers (RFC 9110), else `default` if it is one of them, else the first of them.

    Weights may be surrounded by spaces; a weight of 0 means "not acceptable"; an
    unreadable weight counts as 0.
    """
    if accept_language:
        weighted: list[tuple[float, str]] = []
        for part in accept_language.split(","):
            tag, *parameters = (piece.strip() for piece in part.split(";"))
            if not tag:
                continue
            weight = 1.0
            for parameter in parameters:
                name, _, value = parameter.partition("=")
                if name.strip().lower() == "q":
                    try:
                        weight = float(value.strip())
                    except ValueError:
                        weight = 0.0
            if weight > 0:
                weighted.append((weight, tag.lower()))
        for _, tag in sorted(weighted, key=lambda pair: -pair[0]):
            primary = tag.split("-")[0]
            if primary in among:
                return primary
    return default if default in among else among[0]
