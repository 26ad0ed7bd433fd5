"""A row of a learners file, checked cell by cell (ADR 0011): what a learner's name, email,
external id and groups may be, and every problem found, named by the line and the column the
spreadsheet shows. Pure: `campaigns.learner_csv` reads the file and hands each row here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.i18n import N_

#: What one learner's cells may hold.
MAX_GROUPS = 50
GROUP_MAX_LENGTH = 100
NAME_MAX_LENGTH = 200
EXTERNAL_ID_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254

_EMAIL = re.compile(
    r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}
#: Groups inside one cell are separated by `|` or `,`.
_GROUP_SEPARATORS = re.compile(r"[|,]")

#: Column keys: the columns we read (`campaigns.learner_csv.HEADERS` says which headers name
#: them).
NAME, FIRST_NAME, LAST_NAME, EMAIL, EXTERNAL_ID, GROUPS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "external_id",
    "groups",
)

#: Reasons a row of the file is refused (msgids, translated where the report is shown).
REASONS = (
    N_("The name is missing."),
    N_("This email address is not valid."),
    N_("Give an email address or an external id."),
    N_("This value contains characters that are not allowed."),
    N_("This value is too long ({max} characters at most)."),
    N_("This email address is already on line {line}."),
    N_("This external id is already on line {line}."),
    N_("A group name is too long ({max} characters at most)."),
    N_("Too many groups ({max} at most)."),
    N_("This row has more cells than the header."),
)


@dataclass(frozen=True)
class RowProblem:
    """Why one cell (or row, when `column` is empty) is refused: `line` and `letter` as the
    spreadsheet shows them (the header is line 1), the header as written, the value, and the
    reason (a msgid with its parameters)."""

    line: int
    column: str
    letter: str
    value: str
    reason: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedRow:
    """One checked row. `groups` is None when the file has no groups column (the learners'
    groups are then left as they are); an empty email or external id is None."""

    line: int
    name: str
    email: str | None
    external_id: str | None
    groups: tuple[str, ...] | None


@dataclass(frozen=True)
class Header:
    """A file's header as written (`cells`), and the index in it of each column we read
    (`columns`, by column key)."""

    cells: tuple[str, ...]
    columns: Mapping[str, int]

    def problem(self, line: int, key: str, value: str, reason: str, /, **params: Any) -> RowProblem:
        """The problem of the cell of column `key` on `line` (of the whole row, for a key
        the file has no column for), named by its header as written and its spreadsheet
        letter; the value as it can be shown (control characters replaced, 100 characters
        at most). `params` fill the reason's placeholders, a `line` among them."""
        index = self.columns.get(key)
        column = self.cells[index].strip() if index is not None else ""
        letter = column_letter(index) if index is not None else ""
        return RowProblem(line, column, letter, _shown(value), reason, params)


def column_letter(index: int) -> str:
    """The spreadsheet's name of the column at `index` (0 → A, 25 → Z, 26 → AA)."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in _CONTROL for ch in text)


def _shown(value: str) -> str:
    value = "".join("�" if unicodedata.category(ch) in _CONTROL else ch for ch in value)
    return value if len(value) <= 100 else value[:99] + "…"


class _RowChecker:
    """Checks the cells of one row, collecting every problem instead of stopping at one."""

    def __init__(self, line: int, header: Header) -> None:
        self.line = line
        self.header = header
        self.problems: list[RowProblem] = []

    def problem(self, key: str, value: str, reason: str, /, **params: Any) -> None:
        self.problems.append(self.header.problem(self.line, key, value, reason, **params))

    def text(self, key: str, raw: str, max_length: int) -> str | None:
        value = unicodedata.normalize("NFC", raw.strip())
        if _has_control(value):
            self.problem(key, raw, "This value contains characters that are not allowed.")
            return None
        if len(value) > max_length:
            self.problem(
                key, raw, "This value is too long ({max} characters at most).", max=max_length
            )
            return None
        return value

    def groups(self, raw: str) -> tuple[str, ...]:
        names: dict[str, str] = {}
        for part in _GROUP_SEPARATORS.split(raw):
            name = unicodedata.normalize("NFC", " ".join(part.split()))
            if not name:
                continue
            if _has_control(name):
                self.problem(GROUPS, raw, "This value contains characters that are not allowed.")
                return ()
            if len(name) > GROUP_MAX_LENGTH:
                self.problem(
                    GROUPS,
                    raw,
                    "A group name is too long ({max} characters at most).",
                    max=GROUP_MAX_LENGTH,
                )
                return ()
            names.setdefault(name.casefold(), name)
        if len(names) > MAX_GROUPS:
            self.problem(GROUPS, raw, "Too many groups ({max} at most).", max=MAX_GROUPS)
            return ()
        return tuple(names.values())


def check_row(
    line: int, cells: Sequence[str], header: Header
) -> tuple[CheckedRow | None, list[RowProblem]]:
    """The row on `line` (its `cells`, read under `header`) if every cell is good, else None
    and every problem found in it: one row may have several."""
    check = _RowChecker(line, header)
    columns = header.columns

    def cell(key: str) -> str:
        index = columns.get(key)
        return cells[index] if index is not None and index < len(cells) else ""

    if any(value.strip() for value in cells[len(header.cells) :]):
        check.problem("", "", "This row has more cells than the header.")
    if FIRST_NAME in columns:
        raw_name = " ".join(
            part.strip() for part in (cell(FIRST_NAME), cell(LAST_NAME) or cell(NAME)) if part
        )
        name_key = FIRST_NAME
    else:
        raw_name, name_key = cell(NAME), NAME
    name = check.text(name_key, " ".join(raw_name.split()), NAME_MAX_LENGTH)
    if name == "":
        check.problem(name_key, raw_name, "The name is missing.")
    email = check.text(EMAIL, cell(EMAIL), EMAIL_MAX_LENGTH)
    if email and not _EMAIL.match(email):
        check.problem(EMAIL, cell(EMAIL), "This email address is not valid.")
        email = None
    external_id = check.text(EXTERNAL_ID, cell(EXTERNAL_ID), EXTERNAL_ID_MAX_LENGTH)
    if not cell(EMAIL).strip() and not cell(EXTERNAL_ID).strip():
        check.problem(
            EMAIL if EMAIL in columns else EXTERNAL_ID,
            "",
            "Give an email address or an external id.",
        )
    groups = check.groups(cell(GROUPS)) if GROUPS in columns else None
    if check.problems or not name:
        return None, check.problems
    return CheckedRow(line, name, email or None, external_id or None, groups), []


def repeated_rows(rows: Iterable[CheckedRow], header: Header) -> list[RowProblem]:
    """The rows whose email (in any letter case) or external id an earlier row already
    gave, each problem naming that earlier line."""
    problems: list[RowProblem] = []
    seen_email: dict[str, int] = {}
    seen_external: dict[str, int] = {}
    for row in rows:
        check = _RowChecker(row.line, header)
        if row.email:
            first = seen_email.setdefault(row.email.lower(), row.line)
            if first != row.line:
                check.problem(
                    EMAIL, row.email, "This email address is already on line {line}.", line=first
                )
        if row.external_id:
            first = seen_external.setdefault(row.external_id, row.line)
            if first != row.line:
                check.problem(
                    EXTERNAL_ID,
                    row.external_id,
                    "This external id is already on line {line}.",
                    line=first,
                )
        problems.extend(check.problems)
    return problems
