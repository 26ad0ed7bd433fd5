#!/bin/sh
# Extract the translatable strings (babel.cfg) and merge them into the catalogs
# core/locale/{fr,en,nl,de}/LC_MESSAGES/messages.po, keeping existing translations.
#
#   scripts/update-translations.sh           update the catalogs, then list what is left to translate
#   scripts/update-translations.sh --check   only check that the catalogs are up to date (CI)
#
# New or changed English strings then appear with an empty msgstr, or marked "fuzzy" with a
# guessed translation to review (remove the "#, fuzzy" line once it is right). English is the
# source language: its msgstr stay empty except for labels such as "local_authority".
# tests/core/test_i18n.py fails while a French, Dutch or German translation is missing or fuzzy.
set -eu

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
# `python -m` rather than the pybabel script: the extractor in core/locale/extract.py must be
# importable from the repository root.
pybabel() { "$PYTHON" -m babel.messages.frontend "$@"; }

LOCALE_DIR=core/locale
LOCALES="fr en nl de"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jalon-i18n.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
POT="$WORK/messages.pot"

pybabel --quiet extract --mapping-file=babel.cfg --output-file="$POT" \
    --project=Jalon --version="$VERSION" --copyright-holder="Jalon contributors" \
    --add-comments=TRANSLATORS: --add-location=file --no-wrap .

if [ "${1:-}" = "--check" ]; then
    status=0
    for locale in $LOCALES; do
        if ! pybabel --quiet update --input-file="$POT" --output-dir="$LOCALE_DIR" \
            --locale="$locale" --no-wrap --ignore-obsolete --ignore-pot-creation-date \
            --check 2>"$WORK/check.log"; then
            # Babel reports an outdated catalog with a traceback: keep only real errors.
            grep -q "catalogs are out of date" "$WORK/check.log" || cat "$WORK/check.log" >&2
            echo "$LOCALE_DIR/$locale: out of date" >&2
            status=1
        fi
    done
    [ "$status" -eq 0 ] || echo "Catalogs out of date: run scripts/update-translations.sh" >&2
    exit "$status"
fi

for locale in $LOCALES; do
    pybabel --quiet update --input-file="$POT" --output-dir="$LOCALE_DIR" --locale="$locale" \
        --init-missing --no-wrap --ignore-obsolete --ignore-pot-creation-date --previous
done

"$PYTHON" - "$LOCALE_DIR" $LOCALES <<'PY'
import sys
from pathlib import Path

from babel.messages.pofile import read_po

locale_dir, locales = Path(sys.argv[1]), sys.argv[2:]
for locale in locales:
    with (locale_dir / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    messages = [m for m in catalog if m.id]
    todo = [m for m in messages if not m.string or m.fuzzy]
    done = len(messages) - len(todo)
    print(f"{locale}: {len(messages)} messages, {done} translated")
    if locale != "en":  # English is the source: its msgstr may stay empty.
        for message in todo:
            flag = "fuzzy" if message.fuzzy else "missing"
            print(f"  {flag}: {message.id!r}")
PY
