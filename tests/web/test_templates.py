"""Templates are compiled once per process: a page never looks at the template files again."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar

from core.i18n import LOCALES, translate
from web.front import template_config
from web.pages import page_helpers
from web.templating import PageEngine, localized


def test_a_page_does_not_stat_its_template_files() -> None:
    app = Litestar(route_handlers=[], template_config=template_config())
    engine = app.template_engine
    assert engine is not None
    assert engine.engine.auto_reload is False


def test_a_pages_fixed_texts_are_translated_when_its_template_is_compiled(tmp_path: Path) -> None:
    """`_("…")` with nothing but text is compiled in, in the page's language; calls with
    parameters, attribute calls and the name-only compilation stay calls, and every way gives
    the same page."""
    (tmp_path / "page.html").write_text(
        '{{ _("Sign in") }}|{{ _("Question {number}", number=n) }}|{{ _("Sign" " out") }}|'
        '{{ helper._("Sign in") }}|{% set title = _("Language") %}{{ title }}|{{ _(text) }}'
    )
    app = Litestar(route_handlers=[], template_config=template_config(tmp_path))
    engine = app.template_engine
    assert isinstance(engine, PageEngine)

    class Helper:
        @staticmethod
        def _(message: str) -> str:
            return f"<{message}>"

    for locale in LOCALES:
        context = {
            **page_helpers(locale),
            "n": 3,
            "helper": Helper(),
            "text": "Sign in",
        }
        folded = engine.get_template(localized("page.html", locale))
        as_written = engine.get_template("page.html")
        expected = "|".join(
            [
                translate(locale, "Sign in"),
                translate(locale, "Question {number}", number=3),
                translate(locale, "Sign out"),
                "&lt;Sign in&gt;",
                translate(locale, "Language"),
                translate(locale, "Sign in"),
            ]
        )
        assert folded.render(**context) == as_written.render(**context) == expected
        compiled = engine._environment(locale).compile(
            (tmp_path / "page.html").read_text(), raw=True
        )
        assert "'Sign in'" in compiled  # the attribute call's and the variable's
        # left as calls: `_` with a parameter, `helper._`, `_(text)`
        assert compiled.count("context.call") == 3
    assert translate("fr", "Sign in") != "Sign in"
