"""SCIM filters (RFC 7644 §3.4.2.2): parsed once, then either compiled to SQL (listing users
and groups, every value a bound parameter) or evaluated on a value of a multi-valued
attribute (PATCH paths such as `members[value eq "…"]`).

Pure: no I/O. Attribute names are case-insensitive and may carry their schema's URN; they are
kept lower case here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sso.scim_errors import invalid_filter

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:user"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:group"
COMPARE_OPS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
MAX_FILTER_LENGTH = 2000


@dataclass(frozen=True)
class Compare:
    """`path op value`: path lower case, relative inside a `[…]` value filter."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    path: str


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class ValuePath:
    """`attribute[filter]`: some value of the multi-valued `attribute` matches `filter`."""

    attribute: str
    filter: Node


Node = Compare | Present | And | Or | Not | ValuePath

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<punct>[()\[\]])
      | (?P<word>[^\s()\[\]"]+)
    )""",
    re.VERBOSE,
)


def strip_urn(path: str) -> str:
    """`path` lower case, without the core schema's URN a client may put in front."""
    lowered = path.strip().lower()
    for urn in (CORE_USER, CORE_GROUP):
        if lowered.startswith(urn + ":"):
            return lowered[len(urn) + 1 :]
    return lowered


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid_filter("The filter is not valid SCIM syntax.")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise invalid_filter("The filter ends too early.")
        self.position += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() in words:
            self.position += 1
            return token[1].lower()
        return None

    def expect(self, punct: str) -> None:
        if self.take() != ("punct", punct):
            raise invalid_filter("The filter is not valid SCIM syntax.")

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.keyword("or"):
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_unary()
        while self.keyword("and"):
            node = And(node, self.parse_unary())
        return node

    def parse_unary(self) -> Node:
        if self.keyword("not"):
            self.expect("(")
            inner = self.parse_or()
            self.expect(")")
            return Not(inner)
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.parse_or()
            self.expect(")")
            return inner
        return self.parse_attribute()

    def parse_attribute(self) -> Node:
        kind, word = self.take()
        if kind != "word":
            raise invalid_filter("The filter is not valid SCIM syntax.")
        path = strip_urn(word)
        if self.peek() == ("punct", "["):
            self.take()
            inner = self.parse_or()
            self.expect("]")
            if "." in path:
                raise invalid_filter("The filter is not valid SCIM syntax.")
            return ValuePath(path, inner)
        if self.keyword("pr"):
            return Present(path)
        op = self.keyword(*COMPARE_OPS)
        if op is None:
            raise invalid_filter("Unknown operator in the filter.")
        return Compare(path, op, self.parse_value())

    def parse_value(self) -> Any:
        kind, word = self.take()
        if kind == "string":
            try:
                return json.loads(word)
            except ValueError:
                raise invalid_filter("The filter is not valid SCIM syntax.") from None
        if kind != "word":
            raise invalid_filter("The filter is not valid SCIM syntax.")
        lowered = word.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "null":
            return None
        try:
            return int(word) if word.lstrip("-").isdigit() else float(word)
        except ValueError:
            raise invalid_filter("Put text values of a filter in double quotes.") from None


def parse_filter(text: str) -> Node:
    """The filter `text` as a tree; `invalidFilter` for what does not parse."""
    if not text.strip() or len(text) > MAX_FILTER_LENGTH:
        raise invalid_filter("The filter is not valid SCIM syntax.")
    parser = _Parser(text)
    node = parser.parse_or()
    if parser.peek() is not None:
        raise invalid_filter("The filter is not valid SCIM syntax.")
    return node


# --- evaluating on a value of a multi-valued attribute (PATCH paths) --------------------


def _get(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == part), None)
    return value


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if not isinstance(actual, str) or not isinstance(expected, str):
        return False  # ordering and substrings compare text only
    match op:
        case "co":
            return expected in actual
        case "sw":
            return actual.startswith(expected)
        case "ew":
            return actual.endswith(expected)
        case "gt":
            return actual > expected
        case "ge":
            return actual >= expected
        case "lt":
            return actual < expected
        case _:
            return actual <= expected


def matches(node: Node, item: dict[str, Any]) -> bool:
    """Whether `item` (a value of a multi-valued attribute, e.g. one email) passes `node`."""
    match node:
        case Compare(path, op, value):
            return _compare(_get(item, path), op, value)
        case Present(path):
            return _get(item, path) not in (None, "", [], {})
        case And(left, right):
            return matches(left, item) and matches(right, item)
        case Or(left, right):
            return matches(left, item) or matches(right, item)
        case Not(inner):
            return not matches(inner, item)
        case ValuePath():
            raise invalid_filter("Value filters do not nest.")


def equalities(node: Node) -> dict[str, Any] | None:
    """The sub-attributes a filter pins with `eq` joined by `and` (`type eq "work"`), or None:
    what a new value gets when a PATCH adds through a filter that matched nothing."""
    match node:
        case Compare(path, "eq", value) if "." not in path:
            return {path: value}
        case And(left, right):
            first, second = equalities(left), equalities(right)
            return None if first is None or second is None else {**first, **second}
        case _:
            return None


# --- compiling to SQL (listings) --------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A filterable single-valued attribute: its SQL expression and type."""

    sql: str
    #: "text", "bool" or "time"
    kind: str = "text"
    case_exact: bool = False


@dataclass(frozen=True)
class MultiValued:
    """A filterable multi-valued attribute: `exists(condition)` makes the SQL that holds when
    some value meets `condition`, written over `fields` (sub-attribute → Column)."""

    exists: Callable[[str], str]
    fields: dict[str, Column]


Attributes = dict[str, Column | MultiValued]


class SqlFilter:
    """Compiles a filter tree to a WHERE condition; values go to `params` (numbered after
    the ones the query already has)."""

    def __init__(self, attributes: Attributes, params: list[Any]) -> None:
        self.attributes = attributes
        self.params = params

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def compile(self, node: Node) -> str:
        match node:
            case And(left, right):
                return f"({self.compile(left)} AND {self.compile(right)})"
            case Or(left, right):
                return f"({self.compile(left)} OR {self.compile(right)})"
            case Not(inner):
                return f"(NOT coalesce({self.compile(inner)}, false))"
            case ValuePath(attribute, inner):
                multi = self.attributes.get(attribute)
                if not isinstance(multi, MultiValued):
                    raise invalid_filter(
                        "This attribute cannot be filtered: {name}.", name=attribute
                    )
                return multi.exists(self._inner(inner, multi.fields))
            case Compare(path, _, _) | Present(path):
                head, _, rest = path.partition(".")
                found = self.attributes.get(path) or self.attributes.get(head)
                if isinstance(found, MultiValued):
                    inner = (
                        Compare(rest or "value", node.op, node.value)
                        if isinstance(node, Compare)
                        else Present(rest or "value")
                    )
                    return found.exists(self._inner(inner, found.fields))
                column = self.attributes.get(path)
                if not isinstance(column, Column):
                    raise invalid_filter("This attribute cannot be filtered: {name}.", name=path)
                return self.condition(node, column)
        raise invalid_filter("The filter is not valid SCIM syntax.")  # pragma: no cover

    def _inner(self, node: Node, fields: dict[str, Column]) -> str:
        return SqlFilter(dict(fields), self.params).compile(node)

    def condition(self, node: Compare | Present, column: Column) -> str:
        sql = column.sql
        if isinstance(node, Present):
            return f"({sql} IS NOT NULL)" if column.kind != "text" else f"({sql} <> '')"
        op, value = node.op, node.value
        if value is None:
            if op == "eq":
                return f"({sql} IS NULL)"
            if op == "ne":
                return f"({sql} IS NOT NULL)"
            raise invalid_filter("Only eq and ne compare with null.")
        if column.kind == "bool":
            flag = value if isinstance(value, bool) else str(value).lower()
            if flag not in (True, False, "true", "false") or op not in ("eq", "ne"):
                raise invalid_filter("Compare a boolean with eq or ne, and true or false.")
            wanted = flag in (True, "true")
            comparison = "=" if op == "eq" else "IS DISTINCT FROM"
            return f"({sql} {comparison} {self.param(wanted)}::boolean)"
        if column.kind == "time":
            if not isinstance(value, str) or op in ("co", "sw", "ew"):
                raise invalid_filter("Compare a date with eq, ne, gt, ge, lt or le.")
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise invalid_filter("Dates in filters are ISO 8601.") from None
            operators = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
            return f"({sql} {operators[op]} {self.param(moment)}::timestamptz)"
        if not isinstance(value, str):
            value = json.dumps(value)
        left, right = (
            (sql, "{}::text") if column.case_exact else (f"lower({sql})", "lower({}::text)")
        )
        placeholder = right.format(self.param(value))
        match op:
            case "eq":
                return f"({left} = {placeholder})"
            case "ne":
                return f"({left} IS DISTINCT FROM {placeholder})"
            case "co":
                return f"(strpos({left}, {placeholder}) > 0)"
            case "sw":
                return f"starts_with({left}, {placeholder})"
            case "ew":
                return f"(right({left}, length({placeholder})) = {placeholder})"
            case _:
                operators = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
                return f"({left} {operators[op]} {placeholder})"


def compile_filter(text: str, attributes: Attributes, params: list[Any]) -> str:
    """The SQL condition of the filter `text` over `attributes`, its values appended to
    `params`; `invalidFilter` for bad syntax or an attribute that cannot be filtered."""
    return SqlFilter(attributes, params).compile(parse_filter(text))
