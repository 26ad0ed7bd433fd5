"""French elision where a name is put into a sentence: "de {organization}" becomes
"d’Atelier" for "Atelier", and "en tant que {role}" becomes "en tant qu’administrateur".

A translation cannot know the name it will receive, so `elide` rewrites the translated text
just before its parameters are filled in (`core.i18n.translate`, `core.l10n.plural`): a "de",
"que" (and "jusque", "lorsque", "puisque") written right before a `{placeholder}` is elided
when that placeholder's value starts with a vowel or a mute h.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

#: Languages whose translations elide (the rule below is French's).
ELIDING_LOCALES = frozenset({"fr"})

_BEFORE_PLACEHOLDER = re.compile(r"\b(de|De|que|Que|jusque|lorsque|puisque) \{(\w+)\}")
_VOWELS = frozenset("aeiouy")
#: Words whose h is "aspirated" (no elision: "de Hauts-de-France"); every other h is mute.
_ASPIRATED_H = (
    "haut",
    "hall",
    "hameau",
    "handicap",
    "hangar",
    "harcel",
    "hasard",
    "havre",
    "herisson",
    "heros",
    "hollande",
    "homard",
    "hongr",
    "honte",
    "hors",
    "hockey",
    "huit",
)


def starts_with_vowel_sound(word: str) -> bool:
    """Whether a French word (or name) begins with a vowel or a mute h ("Atelier",
    "Hôpital", "Yvelines" do; "Hauts-de-France", "8 ateliers", "Paris" do not)."""
    text = word.strip()
    if not text:
        return False
    bare = "".join(
        c for c in unicodedata.normalize("NFD", text[:12].lower()) if not unicodedata.combining(c)
    )
    if not bare:  # nothing but combining marks
        return False
    first = bare[0]
    if first in _VOWELS:
        # "yaourt" is the exception that proves little; names such as "Yvelines" elide.
        return not (first == "y" and len(bare) > 1 and bare[1] in _VOWELS)
    if first == "h":
        return len(bare) > 1 and bare[1] in _VOWELS and not bare.startswith(_ASPIRATED_H)
    return False


def elide(locale: str, text: str, params: Mapping[str, Any]) -> str:
    """`text` (a translation with `{name}` placeholders) with "de {x}" written "d’{x}" and
    "que {x}" written "qu’{x}" wherever `params[x]` begins with a vowel sound, in French."""
    if locale not in ELIDING_LOCALES or not params or "{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        word, name = match.group(1), match.group(2)
        value = params.get(name)
        if isinstance(value, str) and starts_with_vowel_sound(value):
            return f"{word[:-1]}’{{{name}}}"
        return match.group(0)

    return _BEFORE_PLACEHOLDER.sub(replace, text)
