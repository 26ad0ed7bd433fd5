"""SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's document, a plain dict: pure.

The services load the document, apply the operations here, then check and store the result
exactly as a PUT would, so a PATCH can never store what a PUT would refuse.

Tolerated, as Microsoft Entra ID sends them: `op` in any letter case ("Replace"), booleans as
strings (checked later, where each attribute is read), an operation without a path whose
value names attributes with dots (`{"name.givenName": "Ada"}`), and attributes of schema
extensions the resource does not have (ignored, as a directory maps more than we keep).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sso.scim_errors import ScimInvalid, invalid_path, invalid_value
from sso.scim_filter import Node, equalities, matches, parse_filter, strip_urn

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_OPERATIONS = 1000


@dataclass(frozen=True)
class Shape:
    """What PATCH needs to know of a resource type: its attributes' canonical names, which
    are multi-valued, which are complex, which cannot be changed."""

    #: lower-case name → canonical name, top level
    attributes: dict[str, str]
    multi_valued: frozenset[str]
    complex: frozenset[str]
    read_only: frozenset[str]
    #: sub-attributes' canonical names: lower case → canonical
    sub_attributes: dict[str, str]


@dataclass(frozen=True)
class Path:
    attribute: str
    filter: Node | None
    sub: str | None


def _canonical(shape: Shape, name: str) -> str | None:
    return shape.attributes.get(name.lower())


def parse_path(shape: Shape, text: str) -> Path | None:
    """`text` as a path of this resource type; None for an attribute of an extension the
    resource does not carry (the operation is then ignored)."""
    raw = text.strip()
    if raw.lower().startswith("urn:") and strip_urn(raw) == raw.lower():
        return None  # an extension's attribute (enterprise User…): not kept here
    stripped = strip_urn(raw)
    value_filter: Node | None = None
    bracket = stripped.find("[")
    if bracket >= 0:
        close = raw.rfind("]")
        if close < bracket:
            raise invalid_path("The path is not valid: {path}.", path=text)
        # The filter keeps its values' case: cut it from the original text.
        offset = len(raw) - len(stripped)
        value_filter = parse_filter(raw[offset + bracket + 1 : close])
        head, rest = stripped[:bracket], stripped[close - offset + 1 :]
        if rest and not rest.startswith("."):
            raise invalid_path("The path is not valid: {path}.", path=text)
        sub = rest[1:] or None
    else:
        head, _, tail = stripped.partition(".")
        sub = tail or None
    attribute = _canonical(shape, head)
    if attribute is None:
        raise invalid_path("Unknown attribute: {path}.", path=text)
    if sub is not None:
        if attribute not in shape.complex or "." in sub:
            raise invalid_path("Unknown attribute: {path}.", path=text)
        sub = shape.sub_attributes.get(sub, sub)
    if value_filter is not None and attribute not in shape.multi_valued:
        raise invalid_path("Only multi-valued attributes take a filter: {path}.", path=text)
    return Path(attribute, value_filter, sub)


def _key(item: Any) -> Any:
    """What makes two values of a multi-valued attribute the same one."""
    if isinstance(item, dict):
        lowered = {k.lower(): v for k, v in item.items()}
        return str(lowered.get("value", sorted(lowered.items(), key=str))).lower()
    return item


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _merge(target: dict[str, Any], value: Any, shape: Shape) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_value("This attribute takes an object.")
    merged = dict(target)
    for key, sub_value in value.items():
        name = str(key)
        merged[shape.sub_attributes.get(name.lower(), name)] = sub_value
    return merged


def _apply_one(document: dict[str, Any], shape: Shape, op: str, path: Path, value: Any) -> None:
    name = path.attribute
    if name in shape.read_only:
        raise ScimInvalid("mutability", "This attribute cannot be changed: {name}.", name=name)
    if name not in shape.multi_valued:
        if path.sub is None:
            if op == "remove":
                document.pop(name, None)
            elif name in shape.complex:
                document[name] = _merge(document.get(name) or {}, value, shape)
            else:
                document[name] = value
            return
        current = dict(document.get(name) or {})
        if op == "remove":
            current.pop(path.sub, None)
        else:
            current[path.sub] = value
        document[name] = current
        return
    values: list[Any] = list(document.get(name) or [])
    if path.filter is None and path.sub is None:
        if op == "remove":
            if value is None:
                values = []
            else:  # Entra removes members by value, without a filter
                gone = {_key(item) for item in _as_list(value)}
                values = [item for item in values if _key(item) not in gone]
        elif op == "replace":
            values = list(_as_list(value))
        else:
            known = {_key(item) for item in values}
            for item in _as_list(value):
                if _key(item) not in known:
                    values.append(item)
                    known.add(_key(item))
        document[name] = values
        return
    if path.filter is None:
        raise invalid_path("Name which value to change with a filter: {name}[…].", name=name)
    chosen = [
        i for i, item in enumerate(values) if isinstance(item, dict) and matches(path.filter, item)
    ]
    if op == "remove":
        if path.sub is None:
            values = [item for i, item in enumerate(values) if i not in chosen]
        else:
            for i in chosen:
                values[i] = {k: v for k, v in values[i].items() if k != path.sub}
        document[name] = values
        return
    if not chosen:
        # Entra ID sets `emails[type eq "work"].value` on a user without a work address:
        # a sub-attribute set through equalities that match nothing makes that value.
        pinned = equalities(path.filter) if path.sub is not None else None
        if pinned is None:
            raise ScimInvalid("noTarget", "No value matches the filter of {name}.", name=name)
        assert path.sub is not None
        fresh = {shape.sub_attributes.get(k, k): v for k, v in pinned.items()}
        values.append({**fresh, path.sub: value})
    for i in chosen:
        if path.sub is not None:
            values[i] = {**values[i], path.sub: value}
        else:
            values[i] = _merge(values[i], value, shape)
    document[name] = values


def apply_patch(document: dict[str, Any], shape: Shape, body: Any) -> dict[str, Any]:
    """A copy of `document` with the PatchOp `body`'s operations applied in order; any
    operation that fails fails the whole request (nothing is stored)."""
    if not isinstance(body, dict):
        raise ScimInvalid("invalidSyntax", "Send a PatchOp object.")
    operations = next((v for k, v in body.items() if k.lower() == "operations"), None)
    if not isinstance(operations, list) or not operations:
        raise ScimInvalid("invalidSyntax", "A PatchOp needs a list of Operations.")
    if len(operations) > MAX_OPERATIONS:
        raise ScimInvalid("tooMany", "Too many operations in one request.")
    result = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimInvalid("invalidSyntax", "Each operation is an object.")
        fields = {k.lower(): v for k, v in operation.items()}
        op = str(fields.get("op", "")).lower()
        if op not in ("add", "remove", "replace"):
            raise ScimInvalid("invalidSyntax", "An operation's op is add, remove or replace.")
        raw_path, value = fields.get("path"), fields.get("value")
        if raw_path is None or raw_path == "":
            if op == "remove":
                raise ScimInvalid("noTarget", "A remove operation needs a path.")
            if not isinstance(value, dict):
                raise invalid_value("Without a path, the value names the attributes to set.")
            for key, item in value.items():
                path = parse_path(shape, key)
                if path is not None:
                    _apply_one(result, shape, op, path, item)
            continue
        if not isinstance(raw_path, str):
            raise invalid_path("The path is not valid: {path}.", path=str(raw_path))
        path = parse_path(shape, raw_path)
        if path is None:
            continue
        if op != "remove" and "value" not in fields:
            raise invalid_value("An {op} operation needs a value.", op=op)
        _apply_one(result, shape, op, path, value)
    return result
