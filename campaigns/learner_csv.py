"""Reading a learners file: bytes in, checked rows and line-numbered problems out (ADR 0011).

Pure: no database, no I/O. `parse_learner_csv` reads the file whatever Excel wrote (UTF-8
with or without BOM, UTF-16 with BOM, else Windows-1252 as French Excel writes it; `,`, `;`
or tab; headers in English or French), hands each row to `campaigns.learner_rows` to check,
and reports an email or external id given twice. Every problem names the line and column
the spreadsheet shows, so that one report lists everything to fix. Comparing the rows with
the organization's learners, and writing them, is `campaigns.learner_import`'s.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from campaigns.learner_rows import (
    EMAIL,
    EXTERNAL_ID,
    FIRST_NAME,
    GROUPS,
    LAST_NAME,
    NAME,
    CheckedRow,
    Header,
    RowProblem,
    check_row,
    repeated_rows,
)
from core.errors import Invalid
from core.l10n import csv_delimiter

#: The largest file read, and the most learners in one file.
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
#: The headers (lower case, accents and punctuation removed) that name each column we read.
HEADERS: dict[str, frozenset[str]] = {
    NAME: frozenset(
        {"name", "full name", "nom", "nom complet", "nom et prenom", "prenom et nom", "prenom nom"}
    ),
    FIRST_NAME: frozenset({"first name", "firstname", "given name", "prenom"}),
    LAST_NAME: frozenset({"last name", "lastname", "surname", "family name", "nom de famille"}),
    EMAIL: frozenset(
        {
            "email",
            "e mail",
            "mail",
            "courriel",
            "email address",
            "e mail address",
            "adresse email",
            "adresse e mail",
            "adresse mail",
            "adresse electronique",
            "adresse de courriel",
        }
    ),
    EXTERNAL_ID: frozenset(
        {
            "external id",
            "externalid",
            "identifiant externe",
            "id externe",
            "matricule",
            "numero de matricule",
            "employee id",
            "employee number",
        }
    ),
    GROUPS: frozenset({"groups", "group", "groupes", "groupe"}),
}


@dataclass(frozen=True)
class ParsedFile:
    """A file read and checked row by row, before any comparison with stored learners:
    the rows without any problem, and the problems of the others."""

    rows: tuple[CheckedRow, ...]
    problems: tuple[RowProblem, ...]
    encoding: str
    delimiter: str
    header: Header
    #: the headers that name no column we read, as written
    ignored_columns: tuple[str, ...] = ()


# --- reading the file --------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name) of an uploaded file; `Invalid` when it is not readable text."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise Invalid(
            "This is a spreadsheet workbook, not a CSV file. In your spreadsheet, choose "
            "“Save as” and the CSV UTF-8 format.",
            field="file",
        )
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            raise Invalid(
                "The file could not be read as text. Save it in the CSV UTF-8 format.",
                field="file",
            ) from None
    if b"\0" in data:
        raise Invalid(
            "This file is not a CSV text file. Save it in the CSV UTF-8 format.", field="file"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            pass
    else:
        try:
            return data.decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            pass
    try:
        # What Excel writes in France for "CSV (séparateur : point-virgule)". Five bytes have
        # no character in it: a file that holds them is neither UTF-8 nor Windows-1252.
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        raise Invalid(
            "The file’s encoding is not recognised. Save it in the CSV UTF-8 format.",
            field="file",
        ) from None


def _header_key(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).strip()


#: The separators a learners file may use, the most likely first (ties go to the first).
DELIMITERS = (";", ",", "\t")
#: Lines read to recognise the separator.
SNIFF_LINES = 20


def _delimiter(text: str) -> str:
    """The separator of the file: among `DELIMITERS`, the one that splits the header into
    the most cells while every following line of the sample (quotes respected, so that
    "Martin, Camille";… is one cell) has as many; else the one most frequent in the header;
    `,` for a single column. French, Dutch and German Excel write `;`, English Excel `,`."""
    sample = list(itertools.islice(io.StringIO(text, newline=""), SNIFF_LINES))
    best, best_cells = "", 1
    for delimiter in DELIMITERS:
        try:
            rows = [row for row in csv.reader(sample, delimiter=delimiter) if any(row)]
        except csv.Error:
            continue
        if not rows:
            continue
        cells = len(rows[0])
        if cells > best_cells and all(len(row) == cells for row in rows[1:-1] or rows[1:]):
            best, best_cells = delimiter, cells
    if best:
        return best
    first = sample[0] if sample else ""
    counts = {d: first.count(d) for d in DELIMITERS}
    most = max(counts, key=lambda d: counts[d])
    return most if counts[most] else ","


def _read_header(cells: Sequence[str]) -> tuple[Header, tuple[str, ...]]:
    """The columns the header names, and the headers that name nothing we know; `Invalid`
    when a column is named twice, or a name or a key (email or external id) is missing."""
    found: dict[str, int] = {}
    ignored: list[str] = []
    keys = [_header_key(cell) for cell in cells]
    has_first_name = any(key in HEADERS[FIRST_NAME] for key in keys)
    for index, key in enumerate(keys):
        if not key:
            continue
        column = next((name for name, aliases in HEADERS.items() if key in aliases), None)
        if column == NAME and key == "nom" and has_first_name:
            column = LAST_NAME  # "Nom" beside "Prénom" is the family name
        if column is None:
            ignored.append(cells[index].strip())
            continue
        if column in found:
            raise Invalid(
                "The column “{column}” appears twice in the header.",
                field="file",
                column=cells[index].strip(),
            )
        found[column] = index
    if NAME not in found and FIRST_NAME not in found:
        raise Invalid(
            "The file has no name column. The first line must name the columns, e.g. "
            "name, email, external_id, groups (or nom, email, matricule, groupes).",
            field="file",
        )
    if EMAIL not in found and EXTERNAL_ID not in found:
        raise Invalid(
            "The file needs an email column or an external id column to recognise learners.",
            field="file",
        )
    return Header(tuple(cells), found), tuple(ignored)


def parse_learner_csv(data: bytes) -> ParsedFile:
    """Read and check an uploaded learners file.

    File-level faults (too large, not text, unknown encoding, no usable header, too many
    rows, broken quoting) raise `Invalid` with what to do; row-level ones are collected, every
    one of them, in `problems`. Blank rows are skipped but counted, so line numbers match
    the spreadsheet's.
    """
    if len(data) > MAX_BYTES:
        raise Invalid(
            "This file is larger than {max} MB. Split it into several files.",
            field="file",
            max=MAX_BYTES // (1024 * 1024),
        )
    text, encoding = _decode(data)
    if not text.strip():
        raise Invalid("The file is empty.", field="file")
    lines = io.StringIO(text, newline="")
    first = lines.readline()
    line = 1
    forced = re.fullmatch(r"sep=(.)\r?\n?", first)
    if forced:  # Excel's own hint line, "sep=;"
        delimiter = forced.group(1)
        line = 2
    else:
        lines.seek(0)
        delimiter = _delimiter(text)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    head: list[str] | None = None
    try:
        head = next(reader, None)
        while head is not None and not any(cell.strip() for cell in head):
            line += 1
            head = next(reader, None)
        if head is None:
            raise Invalid("The file is empty.", field="file")
        header, ignored = _read_header(head)
        rows: list[CheckedRow] = []
        problems: list[RowProblem] = []
        learners = 0
        for cells in reader:
            line += 1
            if not any(cell.strip() for cell in cells):
                continue
            learners += 1
            if learners > MAX_ROWS:
                raise Invalid(
                    "This file has more than {max} learners. Split it into several files.",
                    field="file",
                    max=MAX_ROWS,
                )
            row, found = check_row(line, cells, header)
            if row is not None:
                rows.append(row)
            problems.extend(found)
    except csv.Error:
        raise Invalid(
            "Line {line} could not be read: check its quotation marks.",
            field="file",
            # the line being read: the header's own, or the one after the last row read
            line=line if head is None else line + 1,
        ) from None
    if not rows and not problems:
        raise Invalid("The file has a header but no learner.", field="file")
    repeated = repeated_rows(rows, header)
    problems.extend(repeated)
    repeated_lines = {problem.line for problem in repeated}
    return ParsedFile(
        rows=tuple(row for row in rows if row.line not in repeated_lines),
        problems=tuple(sorted(problems, key=lambda p: p.line)),
        encoding=encoding,
        delimiter=delimiter,
        header=header,
        ignored_columns=ignored,
    )


# --- a file to fill in ---------------------------------------------------------------------


def template_csv(locale: str) -> tuple[str, bytes]:
    """(file name, content) of an example file to fill in: French headers in French, English
    ones otherwise; the separator of the person's spreadsheets (`;` in French, Dutch and
    German: what their Excel opens as columns, as the exports); UTF-8 with BOM so that Excel
    reads the accents."""
    if locale == "fr":
        lines = [
            ["nom", "email", "matricule", "groupes"],
            ["Camille Martin", "camille.martin@example.org", "A1024", "Comptabilité|Lyon"],
            ["Karim Benali", "karim.benali@example.org", "A1025", "Lyon"],
        ]
        name = "apprenants.csv"
    else:
        lines = [
            ["name", "email", "external_id", "groups"],
            ["Camille Martin", "camille.martin@example.org", "A1024", "Accounting|Lyon"],
            ["Karim Benali", "karim.benali@example.org", "A1025", "Lyon"],
        ]
        name = "learners.csv"
    out = io.StringIO()
    csv.writer(out, delimiter=csv_delimiter(locale), lineterminator="\r\n").writerows(lines)
    return name, b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")
