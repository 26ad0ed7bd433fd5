"""Which challenge bank campaigns use, loaded once per process (`engine.get_bank` caches it by
version and compiles its item pool once).

New campaigns freeze the current version; a running campaign asks for its frozen version,
which the cache answers without touching the disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import engine
from core.errors import Gone, Invalid
from core.settings import get_settings
from engine import Bank, BankError, Challenge, get_bank, load_bank, normalize_answer, validate_bank
from engine.bank import CHALLENGE_TYPES, FORMAT, STATUSES
from tenants.context import StaffContext
from tenants.permissions import StaffPermission
from tenants.staff import with_reason
from tenants.staff_trail import record_staff_action

DEMO_BANK = Path(engine.__file__).resolve().parent / "content" / "demo"

_bank_dir: Path = DEMO_BANK


def use_bank(path: str | os.PathLike[str]) -> None:
    """Serve campaigns from the bank at `path` (a directory holding bank.json) from now on."""
    global _bank_dir
    _bank_dir = Path(path).resolve()


def bank_dir() -> Path:
    """The directory of the bank in use."""
    return _bank_dir


def current_bank() -> Bank:
    """The bank new campaigns freeze (reloaded when its files change)."""
    return get_bank(_bank_dir)


def frozen_bank(version: str) -> Bank:
    """The bank of `version`, as a campaign froze it; `Gone` when this process cannot serve it
    (the files moved on to another version and that one was never loaded here)."""
    try:
        return get_bank(_bank_dir, version)
    except LookupError:
        raise Gone(
            "This campaign uses questions that are no longer available. Contact its organizer."
        ) from None


# --- the back office: browsing the bank, and importing a new one (issue 12) -------------------
#
# An imported bank is validated by the engine (`engine.validate_bank`), compared with the bank
# in use (challenges new, changed, removed), and, once a content editor confirms, stored as
# `<data_dir>/banks/<version>/bank.json`. It is not put in use from the web: campaigns freeze
# a bank version and `frozen_bank` serves only the version of the directory in use, so
# switching it under running campaigns would strand them in every other process. Putting a
# stored version in use is an operator's step (`use_bank` at start-up).

#: The largest bank file accepted (the demo bank is about 150 kB).
MAX_BANK_BYTES = 5 * 1024 * 1024
#: What the challenge filters accept as a status: the bank's, plus "active" (selectable:
#: not retired in the bank nor withdrawn or retired after reports) and its opposite.
CHALLENGE_STATUSES = ("active", "retired", "draft", "pretest", "validated")


@dataclass(frozen=True)
class ChallengeFilter:
    """What a content editor narrows the bank to (empty: everything)."""

    competence: str = ""
    status: str = ""
    locale: str = ""
    type: str = ""
    search: str = ""


def _is_active(challenge: Challenge, withdrawn: frozenset[str]) -> bool:
    return challenge.status != "retired" and challenge.id not in withdrawn


def check_filter(bank: Bank, chosen: ChallengeFilter) -> ChallengeFilter:
    """`chosen`, trimmed; `Invalid` naming the first filter the bank does not know."""
    if chosen.competence and chosen.competence not in bank.competences:
        raise Invalid("Choose a competence of the bank.", field="competence")
    if chosen.status and chosen.status not in CHALLENGE_STATUSES:
        raise Invalid("Choose a status.", field="status")
    if chosen.locale and chosen.locale not in bank.locales:
        raise Invalid("Choose a language of the bank.", field="locale")
    if chosen.type and chosen.type not in CHALLENGE_TYPES:
        raise Invalid("Choose a type of question.", field="type")
    if len(chosen.search) > 200:
        raise Invalid("Search with 200 characters at most.", field="search")
    return replace(chosen, search=chosen.search.strip())


def find_challenges(
    bank: Bank, chosen: ChallengeFilter, withdrawn: frozenset[str] = frozenset()
) -> list[Challenge]:
    """The bank's challenges that match `chosen` (checked with `check_filter`), in bank order;
    the search looks for its words in the statement in every language (case and accents
    ignored)."""
    words = normalize_answer(chosen.search).split()
    found = []
    for challenge in bank.challenges:
        skill = bank.skills[challenge.skill]
        if chosen.competence and skill.competence != chosen.competence:
            continue
        if chosen.locale and chosen.locale not in challenge.locales:
            continue
        if chosen.type and challenge.type != chosen.type:
            continue
        if chosen.status == "active" and not _is_active(challenge, withdrawn):
            continue
        if chosen.status == "retired" and _is_active(challenge, withdrawn):
            continue
        if chosen.status in ("draft", "pretest", "validated") and challenge.status != chosen.status:
            continue
        if words:
            text = " ".join(normalize_answer(s) for s in challenge.statement.values())
            if not all(word in text for word in words):
                continue
        found.append(challenge)
    return found


def challenge_counts(
    bank: Bank, withdrawn: frozenset[str] = frozenset()
) -> dict[str, dict[str, int]]:
    """Per competence: its challenges by bank status, and how many are `active` (selectable)
    and `withdrawn` (out after problem reports)."""
    counts: dict[str, dict[str, int]] = {
        code: dict.fromkeys((*STATUSES, "active", "withdrawn"), 0) for code in bank.competences
    }
    for challenge in bank.challenges:
        row = counts[bank.skills[challenge.skill].competence]
        row[challenge.status] += 1
        row["active"] += _is_active(challenge, withdrawn)
        row["withdrawn"] += challenge.id in withdrawn and challenge.status != "retired"
    return counts


@dataclass(frozen=True)
class BankCheck:
    """What the engine thinks of an uploaded bank file, and how it differs from the bank in
    use. `token` names the stored upload for the confirmation step (empty when invalid)."""

    filename: str
    errors: tuple[BankError, ...]
    #: each `{"message": …, "params": {…}}`, translated when shown
    warnings: tuple[dict[str, Any], ...] = ()
    version: str = ""
    challenges: int = 0
    new: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    token: str = ""

    @property
    def valid(self) -> bool:
        return not self.errors


#: What a stored bank's version may be: it names a directory under `_banks_dir()`.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _banks_dir() -> Path:
    return get_settings().data_dir / "banks"


def _version_dir(version: str) -> Path:
    """`<banks dir>/<version>`, refusing any version that would land elsewhere."""
    root = _banks_dir()
    if not _VERSION.fullmatch(version):
        raise Invalid("The bank's version cannot name a directory.", field="file")
    target = root / version
    if target.resolve().parent != root.resolve():
        raise Invalid("The bank's version cannot name a directory.", field="file")
    return target


def _pending(token: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", token or ""):
        raise Invalid("This import is no longer available. Upload the file again.", field="file")
    return _banks_dir() / "pending" / f"{token}.json"


def _read_upload(data: bytes) -> str:
    if not data:
        raise Invalid("The file is empty.", field="file")
    if len(data) > MAX_BANK_BYTES:
        raise Invalid(
            "The file is too large: {max} MB at most.",
            field="file",
            max=MAX_BANK_BYTES // (1024 * 1024),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(
            "The file is not UTF-8 text: export it as UTF-8 JSON.", field="file"
        ) from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise Invalid(
            "The file is not JSON (line {line}, column {column}: {problem}).",
            field="file",
            line=error.lineno,
            column=error.colno,
            problem=error.msg,
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise Invalid("The file is not a bank file ({format}).", field="file", format=FORMAT)
    if "parts" in manifest:
        raise Invalid(
            "Upload the bank as one file, with its areas and challenges inside (no parts).",
            field="file",
        )
    return text


def _difference(current: Bank, new: Bank) -> tuple[tuple[str, ...], ...]:
    old = current.challenge_by_id
    added = tuple(cid for cid in new.challenge_by_id if cid not in old)
    changed = tuple(cid for cid, ch in new.challenge_by_id.items() if cid in old and old[cid] != ch)
    removed = tuple(cid for cid in old if cid not in new.challenge_by_id)
    return added, changed, removed


def _check(text: str, filename: str) -> BankCheck:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bank.json"
        path.write_text(text, encoding="utf-8")
        errors = validate_bank(path)
        if errors:
            return BankCheck(filename=filename, errors=tuple(errors))
        bank = load_bank(path)
    if not _VERSION.fullmatch(bank.version):
        # the version names the directory the bank is stored in: no path, no control character
        return BankCheck(
            filename=filename,
            errors=(
                BankError(
                    "bank.json: version",
                    "must be 1 to 64 letters, digits, dots, dashes or underscores, "
                    "starting with a letter or a digit",
                ),
            ),
        )
    current = current_bank()
    added, changed, removed = _difference(current, bank)
    warnings: list[dict[str, Any]] = []
    errors = []
    same_content = not (added or changed or removed) and bank.areas == current.areas
    if bank.version == current.version and not same_content:
        errors.append(
            BankError(
                "bank.json: version",
                f"is the version in use ({current.version}): a changed bank needs a new version",
            )
        )
    if same_content:
        warnings.append(
            {"message": "The file holds the same challenges as the bank in use.", "params": {}}
        )
    if removed:
        warnings.append(
            {
                "message": "Challenges of the bank in use that are missing: {count}. Campaigns "
                "frozen on the current version keep them, new campaigns will not serve them.",
                "params": {"count": len(removed)},
            }
        )
    if _version_dir(bank.version).exists():
        errors.append(BankError("bank.json: version", f"version {bank.version} is already stored"))
    return BankCheck(
        filename=filename,
        errors=tuple(errors),
        warnings=tuple(warnings),
        version=bank.version,
        challenges=len(bank.challenges),
        new=added,
        changed=changed,
        removed=removed,
    )


#: How long a checked upload waits for its confirmation.
PENDING_SECONDS = 24 * 3600


def _forget_stale_uploads(directory: Path) -> None:
    """Drop the checked uploads nobody confirmed within `PENDING_SECONDS`."""
    limit = time.time() - PENDING_SECONDS
    for stale in directory.glob("*.json"):
        try:
            if stale.stat().st_mtime < limit:
                stale.unlink()
        except FileNotFoundError:  # another request dropped it first
            pass


def check_bank_upload(staff: StaffContext, data: bytes, filename: str = "") -> BankCheck:
    """The engine's validation report of an uploaded bank file (every error with its place)
    and its difference from the bank in use. A valid file is kept, unapplied, under a token
    for `store_bank_upload`. `Invalid` when the file is empty, too large, not UTF-8, not JSON
    or not a single-file bank."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    text = _read_upload(data)
    check = _check(text, filename[:200])
    if not check.valid:
        return check
    token = hashlib.sha256(data).hexdigest()
    path = _pending(token)
    path.parent.mkdir(parents=True, exist_ok=True)
    _forget_stale_uploads(path.parent)
    path.write_text(text, encoding="utf-8")
    return replace(check, token=token)


def pending_check(staff: StaffContext, token: str) -> BankCheck:
    """The report of the checked upload `token` again (for its confirmation page); `Invalid`
    when it is no longer pending."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    try:
        text = _pending(token).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Invalid(
            "This import is no longer available. Upload the file again.", field="file"
        ) from None
    return replace(_check(text, "bank.json"), token=token)


async def store_bank_upload(staff: StaffContext, token: str, reason: str) -> BankCheck:
    """Store the checked upload `token` as `<data_dir>/banks/<version>/bank.json` (checked
    again first: nothing is stored unless it is still valid); the staff trail records
    `content.bank.imported` with the reason. It is not put in use (see above)."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    staff = with_reason(staff, reason)
    pending = _pending(token)
    try:
        text = pending.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Invalid(
            "This import is no longer available. Upload the file again.", field="file"
        ) from None
    check = _check(text, "bank.json")
    if not check.valid:
        raise Invalid("The file is no longer valid: upload it again to see why.", field="file")
    target = _version_dir(check.version)
    staging = _banks_dir() / f".{check.version}.{token[:12]}"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "bank.json").write_text(text, encoding="utf-8")
    try:
        staging.rename(target)  # atomic: a version is stored whole or not at all
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise Invalid(
            "Version {version} is already stored.", field="file", version=check.version
        ) from None
    pending.unlink(missing_ok=True)
    await record_staff_action(
        staff,
        "content.bank.imported",
        "bank",
        check.version,
        sha256=token,
        new=len(check.new),
        changed=len(check.changed),
        removed=len(check.removed),
    )
    return replace(check, token=token)


def stored_banks(staff: StaffContext) -> list[str]:
    """The versions imported so far (stored, not in use), newest name last."""
    staff.require(StaffPermission.CONTENT_TRIAGE)
    root = _banks_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "bank.json").is_file())
