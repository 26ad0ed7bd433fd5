"""Text a person typed, or a URL named, reaching the helpers that render pages: review
findings of 2026-12-04, each a 500 or an unbounded cache before its fix."""

from __future__ import annotations

from datetime import UTC

from core.i18n import translate
from web.audit_text import format_value
from web.documents import _document, document


def test_an_unknown_document_name_is_not_remembered() -> None:
    """`/docs/{name}` is public: only listed names may reach the cache."""
    before = _document.cache_info().currsize
    for n in range(50):
        assert document(f"{n}-" + "x" * 8000) is None
    assert _document.cache_info().currsize == before


def test_an_audit_value_that_looks_like_a_moment_out_of_range_stays_text() -> None:
    """A campaign named like an extreme ISO moment is kept in the audit details: the page
    shows the text instead of failing on the zone change."""
    for value in ("9999-12-31T23:59:00-12:00", "0001-01-01T00:00+14:00"):
        assert format_value("en", value, UTC) == value
        assert format_value("fr", {"name": value}, UTC).endswith(value)


def test_a_name_of_combining_marks_only_is_filled_in_french() -> None:
    """French elision looks at a name's first letter: a name with none is left as it is."""
    assert translate("fr", "Role of {name}", name="\u0301").endswith("\u0301")
    assert translate("fr", "Role of {name}", name="\u0301\u0300" * 10)
