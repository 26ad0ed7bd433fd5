"""Templates compiled once per language: a page's fixed texts are translated when its template
is compiled, not each time it is rendered (ADR 0023, addendum 5).

`_("text")` with no parameters is folded into the text in the template's language, so that the
compiled page writes it out as part of its markup (escaped once, at compile time). Calls with
parameters, `ngettext` and texts held in variables stay calls to the page's `_`, as before.
A page asks for its language's compilation by name (`localized`); a name without a language
(`error.html` as the error handler renders it) is compiled as written, every `_()` a call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import Environment, Template
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from litestar.plugins.jinja import JinjaTemplateEngine

from core.i18n import LOCALES, translate

#: Between a template's name and its language in the name a page asks for.
_LANGUAGE_MARK = "@"


def localized(template: str, locale: str) -> str:
    """The name under which `template` is compiled in `locale`'s texts."""
    return f"{template}{_LANGUAGE_MARK}{locale}"


class FoldTranslations(Extension):
    """Replaces `_("text")` (string literals only, nothing else between the parentheses) by
    the text in the environment's `jalon_locale`, before the template is parsed."""

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        locale: str = self.environment.jalon_locale  # type: ignore[attr-defined]
        tokens = list(stream)
        folded: list[Token] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            text, after = _literal_call(tokens, i)
            if text is not None and not (folded and folded[-1].type == "dot"):
                folded.append(Token(token.lineno, "string", translate(locale, text)))
                i = after
                continue
            folded.append(token)
            i += 1
        return iter(folded)


def _literal_call(tokens: list[Token], i: int) -> tuple[str | None, int]:
    """The text of a `_("…")` call starting at `tokens[i]` (adjacent literals joined, as
    Jinja joins them) and the index after its closing parenthesis; (None, i) otherwise."""
    if not (tokens[i].type == "name" and tokens[i].value == "_"):
        return None, i
    j = i + 1
    if j >= len(tokens) or tokens[j].type != "lparen":
        return None, i
    j += 1
    parts: list[str] = []
    while j < len(tokens) and tokens[j].type == "string":
        parts.append(tokens[j].value)
        j += 1
    if not parts or j >= len(tokens) or tokens[j].type != "rparen":
        return None, i
    return "".join(parts), j + 1


class PageEngine(JinjaTemplateEngine):
    """Litestar's Jinja engine with one compilation of each template per language: a name made
    by `localized` is looked up in that language's environment (an overlay of the shared one:
    the same loader, globals and settings, a cache of its own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_locale: dict[str, Environment] = {}

    def _environment(self, locale: str) -> Environment:
        environment = self._by_locale.get(locale)
        if environment is None:
            environment = self.engine.overlay(
                extensions=[FoldTranslations], auto_reload=self.engine.auto_reload
            )
            environment.jalon_locale = locale  # type: ignore[attr-defined]
            self._by_locale[locale] = environment
        return environment

    def get_template(self, template_name: str) -> Template:
        name, mark, locale = template_name.rpartition(_LANGUAGE_MARK)
        if mark and locale in LOCALES:
            return self._environment(locale).get_template(name)
        return super().get_template(template_name)
