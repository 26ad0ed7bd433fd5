"""Translations: every English source string has its French, Dutch and German translation,
placeholders and HTML tags intact, and no template shows text that skips the catalogues.

The extraction is the one `scripts/update-translations.sh` runs (`babel.cfg`), done in-process:
a new English string without a translation fails here with the list of what is missing.
"""

from __future__ import annotations

import re
import string
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import Environment

from core.i18n import LOCALE_DIR, LOCALES, best_locale, translate

ROOT = Path(__file__).resolve().parents[2]
HOW_TO = (
    "run scripts/update-translations.sh, then translate in "
    "core/locale/{locale}/LC_MESSAGES/messages.po (and drop the '#, fuzzy' lines once reviewed)"
)
#: The catalogues that must translate every string (English is the source language).
TRANSLATED = [locale for locale in LOCALES if locale != "en"]

Msgid = tuple[str, str | None]  # (msgid, context)


@pytest.fixture(scope="module")
def extracted() -> dict[Msgid, list[str]]:
    """Every msgid of the sources, with where it appears, as `pybabel extract` finds them."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")  # type: ignore[no-untyped-call]
    found: dict[Msgid, list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault((msgid, context), []).append(f"{filename}:{lineno}")
    return found


def _catalog(locale: str) -> Catalog:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.fixture(scope="module")
def french() -> Catalog:
    return _catalog("fr")


@pytest.fixture(scope="module")
def english() -> Catalog:
    return _catalog("en")


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _strings(message_string: object) -> tuple[str, ...]:
    """A message's msgstr as a tuple (several with plural forms)."""
    if isinstance(message_string, str):
        return (message_string,)
    return tuple(message_string) if isinstance(message_string, tuple | list) else ()


def test_the_extraction_finds_the_strings(extracted: dict[Msgid, list[str]]) -> None:
    """Templates, keyword calls, and the strings core/locale/extract.py adds, are all found."""
    from web.front import _STATUS_MESSAGES, CSRF_MESSAGE

    msgids = {msgid for msgid, _ in extracted}
    expected = {
        *_STATUS_MESSAGES.values(),  # a dict of constants
        CSRF_MESSAGE,
        "Sign in to continue.",  # LoginRequired: super().__init__("…")
        "Not found.",  # NotFound's default message
        "Check your inbox",  # render(…, "message.html", title="…")
        "Invalid or expired API token.",  # Unauthenticated("…")
        "Welcome! {organization} is ready: its trial has started.",  # flash(request, "…")
        "Reset your Jalon password",  # translate(locale, "…")
        "Join {organization}",  # _("…", organization=…) in a template
        "local_authority",  # core/locale/labels.py
    }
    assert expected - msgids == set()
    assert len(msgids) > 200


def test_the_supported_languages() -> None:
    assert LOCALES == ("fr", "en", "nl", "de")
    for locale in LOCALES:
        assert (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").exists(), locale
    script = (ROOT / "scripts" / "update-translations.sh").read_text(encoding="utf-8")
    assert f'LOCALES="{" ".join(LOCALES)}"' in script


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_source_string_has_a_translation(
    extracted: dict[Msgid, list[str]], locale: str
) -> None:
    catalog = _catalog(locale)
    missing = []
    for (msgid, context), places in extracted.items():
        message = catalog.get(msgid, context)
        if message is None or message.fuzzy or not all(_strings(message.string)):
            state = "fuzzy" if message is not None and message.fuzzy else "missing"
            missing.append(f"{state}: {msgid!r} ({', '.join(sorted(set(places))[:3])})")
    assert not missing, (
        f"{len(missing)} {locale} translation(s) to do ({HOW_TO.format(locale=locale)}):\n"
        + "\n".join(missing)
    )


@pytest.mark.parametrize("locale", TRANSLATED)
def test_no_fuzzy_entry_is_left(locale: str) -> None:
    """Even an entry no source uses any more: a fuzzy guess is never shipped as reviewed."""
    fuzzy = [m.id for m in _catalog(locale) if m.id and m.fuzzy]
    assert not fuzzy, f"review and drop '#, fuzzy' in core/locale/{locale}: {fuzzy}"


@pytest.mark.parametrize("locale", ["nl", "de"])
def test_dutch_and_german_have_two_plural_forms(locale: str) -> None:
    catalog = _catalog(locale)
    assert catalog.num_plurals == 2
    assert catalog.plural_expr == "(n != 1)"


#: HTML elements a message may hold ("<token>" in "Bearer <token>" is text, not a tag).
_TAG = re.compile(
    r"</?(?:a|abbr|b|br|code|em|i|kbd|li|mark|ol|p|small|span|strong|sub|sup|time|u|ul)\b[^>]*>"
)


def _tags(text: str) -> list[str]:
    """The HTML tags of a message, their names and attributes (link targets included)."""
    return sorted(_TAG.findall(text))


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_the_html_tags(locale: str) -> None:
    wrong = []
    for message in _catalog(locale):
        if not message.id or not message.string or message.fuzzy:
            continue  # a fuzzy guess is reported by test_every_source_string_has_a_translation
        msgid = _strings(message.id)[0]
        wrong += [
            f"{msgid!r} -> {t!r}"
            for t in _strings(message.string)
            if t and _tags(t) != _tags(msgid)
        ]
    assert not wrong, "HTML tags differ:\n" + "\n".join(wrong)


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_the_placeholders(locale: str) -> None:
    wrong = []
    for message in _catalog(locale):
        if not message.id or not message.string or message.fuzzy:
            continue  # a fuzzy guess is reported by test_every_source_string_has_a_translation
        msgid = _strings(message.id)[0]
        for text in filter(None, _strings(message.string)):
            try:
                same = _placeholders(text) == _placeholders(msgid)
            except ValueError as error:  # an unbalanced { or }
                same, text = False, f"{text!r}: {error}"
            if not same or text.endswith("\n") != msgid.endswith("\n"):
                wrong.append(f"{msgid!r} -> {text!r}")
    assert not wrong, "placeholders (or final newline) differ:\n" + "\n".join(wrong)


def test_french_uses_the_typographic_apostrophe(french: Catalog) -> None:
    straight = [m.string for m in french if m.id and "'" in "".join(_strings(m.string))]
    assert not straight, "write ’ rather than ' in French:\n" + "\n".join(map(repr, straight))


def test_dynamic_labels_are_marked_for_translation() -> None:
    """Roles, statuses and kinds are shown with `_(value)`: core/locale/labels.py lists them."""
    from core.locale import labels
    from tenants.organizations import KINDS, STATUSES
    from tenants.permissions import Role

    assert set(labels.ROLES) == {role.value for role in Role}
    assert set(labels.STATUSES) == set(STATUSES)
    assert set(labels.KINDS) == set(KINDS)


def test_every_audited_action_has_a_label() -> None:
    """Each action passed to `audit.record(ctx, action, …)` or to the staff trail's
    `record_staff_action(staff, action, …)` is listed (and so translated)."""
    import ast
    from pathlib import Path

    from core.locale import labels

    def strings(node: ast.expr) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return strings(node.body) | strings(node.orelse)
        return set()

    root = Path(__file__).resolve().parents[2]
    recorded: set[str] = set()
    trail: set[str] = set()
    for path in root.glob("*/**/*.py"):
        if path.relative_to(root).parts[0] in {".venv", "tests", "var"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            if isinstance(node.func, ast.Attribute) and node.func.attr == "record":
                recorded |= strings(node.args[1])
            if isinstance(node.func, ast.Name) and node.func.id == "record_staff_action":
                trail |= strings(node.args[1])
    assert "member.added" in recorded
    assert "plan.created" in trail
    assert recorded <= set(labels.AUDIT_ACTIONS), recorded - set(labels.AUDIT_ACTIONS)
    known = set(labels.AUDIT_ACTIONS) | set(labels.STAFF_ACTIONS)
    assert trail <= known, trail - known


def test_identifier_like_msgids_have_an_english_label(
    extracted: dict[Msgid, list[str]], english: Catalog
) -> None:
    """A value such as "local_authority" must read "local authority" in English too."""
    identifiers = [msgid for msgid, _ in extracted if re.fullmatch(r"[a-z]+(_[a-z]+)+", msgid)]
    assert identifiers
    unlabelled = [
        msgid
        for msgid in identifiers
        if not (message := english.get(msgid)) or not message.string or "_" in message.string
    ]
    assert not unlabelled, f"give these an English msgstr in core/locale/en: {unlabelled}"


def test_translate() -> None:
    assert translate("fr", "Incorrect email or password.") == (
        "Adresse e-mail ou mot de passe incorrect."
    )
    assert translate("fr", "Join {organization}", organization="Ville de Lyon") == (
        "Rejoindre Ville de Lyon"
    )
    assert translate("fr", "owner") == "propriétaire"
    assert translate("en", "Incorrect email or password.") == "Incorrect email or password."
    assert translate("en", "local_authority") == "local authority"
    assert translate("fr", "A string nobody translated.") == "A string nobody translated."
    assert translate("es", "Sign in") == "Sign in"  # no catalogue: the English source
    assert translate("nl", "Incorrect email or password.") == ("Onjuist e-mailadres of wachtwoord.")
    assert translate("de", "Incorrect email or password.") == (
        "E-Mail-Adresse oder Passwort ist falsch."
    )
    assert translate("nl", "Join {organization}", organization="Stad Gent") == (
        "Word lid van Stad Gent"
    )
    assert translate("de", "Join {organization}", organization="Stadt Eupen") == (
        "Stadt Eupen beitreten"
    )


@pytest.mark.parametrize(
    ("header", "default", "expected"),
    [
        ("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "en", "fr"),  # Chrome, French
        ("en-US,en;q=0.5", "fr", "en"),  # Firefox, English
        ("en-GB,en;q=0.9,fr;q=0.8", "fr", "en"),
        ("de-DE,de;q=0.9,en;q=0.5,fr;q=0.7", "en", "de"),  # German
        ("nl-BE,nl;q=0.9,fr-BE;q=0.8", "fr", "nl"),  # Flemish Brussels
        ("es-ES,es;q=0.9,en;q=0.5,fr;q=0.7", "en", "fr"),  # first supported by weight
        ("fr;q=0.3,en;q=0.7", "fr", "en"),  # weights, not order
        ("en;q=0.8,fr-CA", "en", "fr"),  # no q means 1
        ("fr,en", "en", "fr"),  # equal weights: header order
        ("EN-us", "fr", "en"),  # case-insensitive
        ("*;q=0.5,en", "fr", "en"),
        ("fr;q=abc,en;q=0.1", "fr", "en"),  # a malformed weight counts as 0
        ("es-ES,it;q=0.8", "en", "en"),  # nothing supported: the default
        ("es-ES,it;q=0.8", "nl", "nl"),
        ("*", "en", "en"),
        ("", "en", "en"),
        (None, "fr", "fr"),
        (" , ,", "en", "en"),
        (None, "de", "de"),
        (None, "es", "fr"),  # an unsupported default: the first locale
    ],
)
def test_best_locale(header: str | None, default: str, expected: str) -> None:
    assert best_locale(header, default) == expected


def test_best_locale_accepts_spaces_around_the_weight() -> None:
    assert best_locale("en;q=0.2, fr ; q=0.9", "en") == "fr"


def test_best_locale_skips_refused_languages() -> None:
    assert best_locale("fr;q=0", "en") == "en"


def test_best_locale_among_a_campaigns_languages() -> None:
    """A campaign offered in French and Dutch: the browser's choice among those two, else the
    campaign's first language (English is supported by Jalon but not by the campaign)."""
    assert best_locale("nl-BE,en;q=0.9", "fr", among=("fr", "nl")) == "nl"
    assert best_locale("en-GB,de;q=0.5", "fr", among=("fr", "nl")) == "fr"
    assert best_locale(None, "de", among=("de", "fr")) == "de"


# --- text in templates ------------------------------------------------------------------------

#: Words a template may show as they are, in every language: names and acronyms.
UNTRANSLATED_WORDS = {"Jalon", "SIRET", "IBAN", "BIC", "HTTP", "IP", "KiB", "SSO", "SCIM", "API"}
#: Attributes whose value a person sees or hears (a screen reader reads aria-label).
_VISIBLE_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "label"}
_JINJA = (
    " data-jinja "  # stands for each {{ … }} / {% … %}: an attribute inside a tag, a gap in text
)
_WORD = re.compile(r"[^\W\d_]{2,}")


class _VisibleText(HTMLParser):
    """The literal text and visible attribute values of an HTML template, its Jinja removed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.literals: list[str] = []
        self._hidden = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._hidden += 1
        named = dict(attrs)
        for name, value in attrs:
            button = tag == "input" and named.get("type") in {"submit", "button", "reset"}
            if value and (name in _VISIBLE_ATTRIBUTES or (name == "value" and button)):
                self._check(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._check(data)

    def _check(self, text: str) -> None:
        for piece in text.split(_JINJA.strip()):
            words = [w for w in _WORD.findall(piece) if w not in UNTRANSLATED_WORDS]
            if words:
                self.literals.append(" ".join(piece.split()))


def _template_literals(source: str) -> list[str]:
    """What `source` shows outside {{ _() }} and {% trans %}: every Jinja token is replaced by
    a stand-in, then an HTML parser reads the text and the visible attributes."""
    pieces: list[str] = []
    in_trans, tag_next = 0, False  # inside {% trans %}…{% endtrans %}; a block's first name
    for _, kind, value in Environment(autoescape=True, extensions=["jinja2.ext.i18n"]).lex(source):
        if kind == "name" and tag_next:
            in_trans += {"trans": 1, "endtrans": -1}.get(value, 0)
        if kind != "whitespace":
            tag_next = kind == "block_begin"
        if kind == "data" and not in_trans:
            pieces.append(value)
        elif pieces and pieces[-1].endswith(("<", "</")):
            pieces.append("jinja")  # a tag name from a variable: <{{ heading }}>
        elif not pieces or pieces[-1] != _JINJA:
            pieces.append(_JINJA)
    parser = _VisibleText()
    parser.feed("".join(pieces))
    parser.close()
    return parser.literals


def test_the_template_check_finds_literal_text() -> None:
    source = (
        '<h1>{{ _("Campaigns") }}</h1><p>Welcome {{ name }}</p>'
        '<input type="submit" value="Send"><img alt="{{ _("Logo") }}" src="x.png">'
        '<a title="Back" href="/o/{{ slug }}">{% trans %}Back{% endtrans %}</a>'
        "<script>const label = 'not shown';</script><p>Jalon · SIRET {{ siret }}</p>"
    )
    assert sorted(_template_literals(source)) == ["Back", "Send", "Welcome"]


def test_templates_show_no_untranslated_text() -> None:
    found = []
    for path in sorted(ROOT.glob("*/**/templates/**/*.html")):
        if path.relative_to(ROOT).parts[0] in {".venv", "tests", "var"}:
            continue
        for literal in _template_literals(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(ROOT)}: {literal!r}")
    assert not found, (
        "text shown outside {{ _() }} or {% trans %} (wrap it, or add a name to "
        "UNTRANSLATED_WORDS in tests/core/test_i18n.py):\n" + "\n".join(found)
    )


def test_a_bank_text_is_taken_in_the_asked_language_else_english_else_any() -> None:
    from core.i18n import in_language

    texts = {"fr": "Chercher", "en": "Search", "de": "Suchen"}
    assert in_language(texts, "de") == "Suchen"
    assert in_language(texts, "nl") == "Search"  # not translated: English
    assert in_language(texts, None, "fr") == "Chercher"  # the next language asked
    assert in_language({"fr": "Chercher", "de": "Suchen"}, "nl") == "Chercher"
    assert in_language({}, "fr") == ""
