"""The Babel extractor for Jalon's Python sources (see `babel.cfg`).

It yields what Babel's own Python extractor finds, the calls of the keywords listed in
`babel.cfg` (`_("…")`, `Invalid("…")`, `flash(request, "…")`, `translate(locale, "…")`…), and
adds the user-facing strings that no keyword can reach, read from the syntax tree:

- the `title=` and `message=` string arguments of `render(…)` and `form_error(…)`, the texts of
  `message.html`, which the template translates with `_(title)` and `_(message)`;
- the strings assigned to a module-level name ending in `_MESSAGE` or `_MESSAGES` (a string, or
  the values of a dict, list, tuple or set of strings), such as `CSRF_MESSAGE` and
  `_STATUS_MESSAGES` in `api/app.py`;
- the string default of a parameter named `message`, such as `NotFound`'s "Not found.";
- a string passed to `super().__init__(…)` by a subclass of a keyword, such as
  `LoginRequired(Unauthenticated)`'s "Sign in to continue.".

Values stored in the database and shown with `_(value)` (roles, statuses, kinds) are marked in
`core/locale/labels.py`.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any, cast

from babel.messages.extract import extract_python as babel_extract_python

#: Calls whose `title=` / `message=` arguments are msgids (they render `message.html`).
MESSAGE_CALLS = frozenset({"render", "form_error"})
MESSAGE_KEYWORDS = frozenset({"title", "message"})
#: Module-level names whose string values are msgids.
CONSTANT_SUFFIXES = ("_MESSAGE", "_MESSAGES")

_Result = tuple[int, str | None, Any, list[str]]


def extract_python(
    fileobj: IO[bytes],
    keywords: Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[_Result]:
    """Babel's Python extraction plus the strings listed in this module's docstring."""
    # Babel passes the keyword names only, whatever its annotations say.
    found: list[Any] = list(
        babel_extract_python(fileobj, cast(Any, keywords), comment_tags, cast(Any, options))
    )
    yield from found
    seen: set[tuple[int, Any]] = {(lineno, messages) for lineno, _, messages, _ in found}
    fileobj.seek(0)
    tree = ast.parse(fileobj.read())
    for lineno, message in _strings_beyond_keywords(tree, frozenset(keywords)):
        if (lineno, message) not in seen:
            seen.add((lineno, message))
            # No function name: Babel then takes the message as is (its first argument).
            yield lineno, None, message, []


def _strings_beyond_keywords(
    tree: ast.Module, keywords: frozenset[str]
) -> Iterator[tuple[int, str]]:
    for statement in tree.body:
        yield from _constant_messages(statement)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name_of(node.func) in MESSAGE_CALLS:
            for keyword in node.keywords:
                if keyword.arg in MESSAGE_KEYWORDS:
                    yield from _strings(keyword.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _message_defaults(node.args)
        elif isinstance(node, ast.ClassDef) and any(
            _name_of(base) in keywords for base in node.bases
        ):
            yield from _super_init_messages(node)


def _constant_messages(statement: ast.stmt) -> Iterator[tuple[int, str]]:
    if isinstance(statement, ast.Assign):
        targets, value = statement.targets, statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets, value = [statement.target], statement.value
    else:
        return
    if any(isinstance(t, ast.Name) and t.id.endswith(CONSTANT_SUFFIXES) for t in targets):
        if isinstance(value, ast.Dict):
            for item in value.values:
                yield from _strings(item)
        elif isinstance(value, ast.List | ast.Tuple | ast.Set):
            for item in value.elts:
                yield from _strings(item)
        else:
            yield from _strings(value)


def _message_defaults(args: ast.arguments) -> Iterator[tuple[int, str]]:
    positional = [*args.posonlyargs, *args.args]
    pairs = list(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    pairs += [
        (arg, default)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
        if default is not None
    ]
    for arg, default in pairs:
        if arg.arg == "message":
            yield from _strings(default)


def _super_init_messages(cls: ast.ClassDef) -> Iterator[tuple[int, str]]:
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
            and isinstance(node.func.value, ast.Call)
            and _name_of(node.func.value.func) == "super"
            and node.args
        ):
            yield from _strings(node.args[0])


def _strings(node: ast.expr | None) -> Iterator[tuple[int, str]]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        yield node.lineno, node.value


def _name_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None
