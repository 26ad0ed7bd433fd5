"""The framework and challenge bank (`jalon-bank/1`, see docs/bank-format.md): typed data,
a loader that reports every error with its location, answer checking, and a per-process cache.

Reading the bank files is the only I/O the engine does.
"""

from __future__ import annotations

import json
import math
import os
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engine.pool import ItemPool

FORMAT = "jalon-bank/1"
CHALLENGE_TYPES = ("single_choice", "multiple_choice", "short_text")
STATUSES = ("draft", "pretest", "validated", "retired")

Text = Mapping[str, str]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Skill:
    """A skill (`@name<level>`) at one DigComp level, in one tube."""

    code: str
    level: int
    title: Text
    tube: str
    competence: str


@dataclass(frozen=True)
class Tube:
    """A family of skills of increasing level on one topic, in one competence."""

    code: str
    title: Text
    skills: tuple[Skill, ...]
    competence: str


@dataclass(frozen=True)
class Competence:
    """A competence (e.g. DigComp 1.1) and its tubes."""

    code: str
    title: Text
    tubes: tuple[Tube, ...]
    area: str


@dataclass(frozen=True)
class Area:
    """A competence area (DigComp has five)."""

    code: str
    title: Text
    competences: tuple[Competence, ...]


@dataclass(frozen=True)
class Level:
    """A proficiency level and its band name."""

    level: int
    band: Text


@dataclass(frozen=True)
class IrtParameters:
    """4PL parameters, logistic without the 1.7 constant."""

    a: float
    b: float
    c: float = 0.0
    d: float = 1.0


@dataclass(frozen=True)
class Challenge:
    """One question. `solution` holds 0-based indices for choice types and accepted answers
    per locale for short text; `proposals` is empty for short text."""

    id: str
    skill: str
    type: str
    locales: tuple[str, ...]
    statement: Text
    proposals: Mapping[str, tuple[str, ...]]
    solution: tuple[int, ...] | Mapping[str, tuple[str, ...]]
    explanation: Text
    irt: IrtParameters
    status: str
    timer_seconds: int | None = None


@dataclass(frozen=True, eq=False)
class Bank:
    """A loaded, valid bank. `pool` compiles it for the engine (cached)."""

    version: str
    framework: str
    title: Text
    locales: tuple[str, ...]
    levels: tuple[Level, ...]
    areas: tuple[Area, ...]
    challenges: tuple[Challenge, ...]
    format: str = FORMAT

    @cached_property
    def competences(self) -> dict[str, Competence]:
        """Competences by code, in framework order."""
        return {c.code: c for a in self.areas for c in a.competences}

    @cached_property
    def tubes(self) -> dict[str, Tube]:
        """Tubes by code."""
        return {t.code: t for c in self.competences.values() for t in c.tubes}

    @cached_property
    def skills(self) -> dict[str, Skill]:
        """Skills by code."""
        return {s.code: s for t in self.tubes.values() for s in t.skills}

    @cached_property
    def challenge_by_id(self) -> dict[str, Challenge]:
        """Challenges by id."""
        return {ch.id: ch for ch in self.challenges}

    @cached_property
    def pool(self) -> ItemPool:
        """Every challenge as an ItemPool (retired and draft ones kept, unselectable, so that
        stored answers to them still replay)."""
        skills = self.skills
        comp_codes = tuple(self.competences)
        tube_codes = tuple(self.tubes)
        skill_codes = tuple(skills)
        ci = {c: i for i, c in enumerate(comp_codes)}
        ti = {t: i for i, t in enumerate(tube_codes)}
        si = {s: i for i, s in enumerate(skill_codes)}
        chs = self.challenges
        n = len(chs)
        status = np.array([ch.status for ch in chs])
        locales = {
            loc: np.array([loc in ch.locales for ch in chs], dtype=np.bool_) for loc in self.locales
        }
        return ItemPool(
            ids=tuple(ch.id for ch in chs),
            a=np.array([ch.irt.a for ch in chs], dtype=np.float64).reshape(n),
            b=np.array([ch.irt.b for ch in chs], dtype=np.float64).reshape(n),
            c=np.array([ch.irt.c for ch in chs], dtype=np.float64).reshape(n),
            d=np.array([ch.irt.d for ch in chs], dtype=np.float64).reshape(n),
            competence=np.array([ci[skills[ch.skill].competence] for ch in chs], np.int64).reshape(
                n
            ),
            tube=np.array([ti[skills[ch.skill].tube] for ch in chs], np.int64).reshape(n),
            skill=np.array([si[ch.skill] for ch in chs], np.int64).reshape(n),
            scored=status == "validated",
            pretest=status == "pretest",
            competence_codes=comp_codes,
            tube_codes=tube_codes,
            skill_codes=skill_codes,
            locales=locales,
            version=self.version,
        )


@dataclass(frozen=True)
class BankError:
    """One problem in a bank file, at `location` (e.g. `area-1.json: challenges[12].irt.a`)."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class BankValidationError(ValueError):
    """Raised by `load_bank` with every error found, not just the first."""

    def __init__(self, errors: Sequence[BankError]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors[:50])
        more = f"\n  … and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        super().__init__(f"{len(self.errors)} error(s) in bank:\n{lines}{more}")


# -- answers ------------------------------------------------------------------------------


def _strip_punctuation(t: str) -> str:
    start, end = 0, len(t)
    while start < end and (t[start].isspace() or unicodedata.category(t[start])[0] == "P"):
        start += 1
    while end > start and (t[end - 1].isspace() or unicodedata.category(t[end - 1])[0] == "P"):
        end -= 1
    return t[start:end]


def normalize_answer(text: str) -> str:
    """Canonical form of a short-text answer: Unicode NFKC, case-folded, accents removed,
    surrounding punctuation and spaces stripped, inner whitespace collapsed to one space."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(ch for ch in unicodedata.normalize("NFD", t) if not unicodedata.combining(ch))
    t = unicodedata.normalize("NFC", t)
    return " ".join(_strip_punctuation(t).split())


def is_correct(challenge: Challenge, answer: str | int | Sequence[int], locale: str) -> bool:
    """Whether `answer` solves `challenge`: the chosen index (or indices: exactly the solution
    set for multiple choice), or a short text equal to an accepted answer after normalization."""
    if challenge.type == "short_text":
        if not isinstance(answer, str) or not isinstance(challenge.solution, Mapping):
            return False
        accepted = {normalize_answer(s) for s in challenge.solution.get(locale, ())}
        return normalize_answer(answer) in accepted
    if isinstance(answer, str):
        return False
    chosen = {answer} if isinstance(answer, int) else set(answer)
    return chosen == set(challenge.solution if isinstance(challenge.solution, tuple) else ())


# -- loading ------------------------------------------------------------------------------


@dataclass
class _Checker:
    """Collects errors while walking the JSON; every accessor records a problem and returns a
    safe default so that the walk goes on and reports everything."""

    errors: list[BankError] = field(default_factory=list)

    def err(self, loc: str, msg: str) -> None:
        self.errors.append(BankError(loc, msg))

    def obj(self, v: Any, loc: str) -> dict[str, Any]:
        if isinstance(v, dict):
            return v
        self.err(loc, "must be an object")
        return {}

    def lst(self, v: Any, loc: str) -> list[Any]:
        if isinstance(v, list):
            return v
        self.err(loc, "must be a list")
        return []

    def string(self, v: Any, loc: str) -> str:
        if isinstance(v, str) and v.strip():
            return v
        self.err(loc, "must be a non-empty string")
        return ""

    def one_of(self, v: Any, allowed: Sequence[str], loc: str) -> str:
        if v not in allowed:
            self.err(loc, f"must be one of {', '.join(allowed)}")
        return str(v)

    def per_locale(
        self, v: Any, loc: str, locales: Sequence[str], read: Callable[[Any, str], _T]
    ) -> dict[str, _T]:
        """An object with one entry per locale, each read by `read(value, location)`."""
        d = self.obj(v, loc)
        out: dict[str, _T] = {}
        for lang in locales:
            if lang not in d:
                self.err(f"{loc}.{lang}", "missing locale")
            else:
                out[lang] = read(d[lang], f"{loc}.{lang}")
        return out

    def text(self, v: Any, loc: str, locales: Sequence[str]) -> dict[str, str]:
        return self.per_locale(v, loc, locales, self.string)

    def number(self, v: Any, loc: str) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            self.err(loc, "must be a finite number")
            return math.nan
        return float(v)


def _read_json(path: Path, loc: str, chk: _Checker) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        chk.err(loc, f"file not found: {path}")
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        chk.err(loc, f"invalid JSON: {exc}")
        return {}
    return chk.obj(data, loc)


def _parse_areas(areas: list[Any], src: str, chk: _Checker, codes: dict[str, str]) -> list[Area]:
    out: list[Area] = []

    def claim(code: str, loc: str) -> None:
        if code and code in codes:
            chk.err(loc, f"duplicate code {code!r} (first at {codes[code]})")
        elif code:
            codes[code] = loc

    for i, raw in enumerate(areas):
        loc = f"{src}: areas[{i}]"
        ad = chk.obj(raw, loc)
        acode = chk.string(ad.get("code"), f"{loc}.code")
        claim(acode, f"{loc}.code")
        comps: list[Competence] = []
        for j, rc in enumerate(chk.lst(ad.get("competences"), f"{loc}.competences")):
            cloc = f"{loc}.competences[{j}]"
            cd = chk.obj(rc, cloc)
            ccode = chk.string(cd.get("code"), f"{cloc}.code")
            claim(ccode, f"{cloc}.code")
            tubes: list[Tube] = []
            for k, rt in enumerate(chk.lst(cd.get("tubes"), f"{cloc}.tubes")):
                tloc = f"{cloc}.tubes[{k}]"
                td = chk.obj(rt, tloc)
                tcode = chk.string(td.get("code"), f"{tloc}.code")
                claim(tcode, f"{tloc}.code")
                skills: list[Skill] = []
                for m, rs in enumerate(chk.lst(td.get("skills"), f"{tloc}.skills")):
                    sloc = f"{tloc}.skills[{m}]"
                    sd = chk.obj(rs, sloc)
                    scode = chk.string(sd.get("code"), f"{sloc}.code")
                    claim(scode, f"{sloc}.code")
                    level = sd.get("level")
                    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 8:
                        chk.err(f"{sloc}.level", "must be an integer in 1..8")
                        level = 0
                    elif scode and not (scode.startswith("@") and scode.endswith(str(level))):
                        chk.err(f"{sloc}.code", "must start with @ and end with its level digit")
                    skills.append(Skill(scode, level, sd.get("title") or {}, tcode, ccode))
                tubes.append(Tube(tcode, td.get("title") or {}, tuple(skills), ccode))
            comps.append(Competence(ccode, cd.get("title") or {}, tuple(tubes), acode))
        out.append(Area(acode, ad.get("title") or {}, tuple(comps)))
    return out


def _parse_challenge(raw: Any, loc: str, chk: _Checker, bank_locales: Sequence[str]) -> Challenge:
    """One challenge, part by part; a challenge with errors is a placeholder that the bank
    never holds. The order of the calls is the order in which its errors are listed."""
    cd = chk.obj(raw, loc)
    cid = chk.string(cd.get("id"), f"{loc}.id")
    skill = chk.string(cd.get("skill"), f"{loc}.skill")
    ctype = chk.one_of(cd.get("type"), CHALLENGE_TYPES, f"{loc}.type")
    locales = _challenge_locales(cd.get("locales"), f"{loc}.locales", chk, bank_locales)
    statement = chk.text(cd.get("statement"), f"{loc}.statement", locales)
    explanation = chk.text(cd.get("explanation"), f"{loc}.explanation", locales)
    proposals, solution = _answer_key(cd, ctype, loc, chk, locales)
    irt = _irt_parameters(cd.get("irt"), f"{loc}.irt", chk)
    status = chk.one_of(cd.get("status"), STATUSES, f"{loc}.status")
    timer = _timer_seconds(cd.get("timer_seconds"), f"{loc}.timer_seconds", chk)
    return Challenge(
        id=cid,
        skill=skill,
        type=ctype,
        locales=locales,
        statement=statement,
        proposals=proposals,
        solution=solution,
        explanation=explanation,
        irt=irt,
        status=status,
        timer_seconds=timer,
    )


def _challenge_locales(
    v: Any, loc: str, chk: _Checker, bank_locales: Sequence[str]
) -> tuple[str, ...]:
    """The locales a challenge is written in: at least one, each one of the bank's."""
    locales = tuple(str(x) for x in chk.lst(v, loc))
    if not locales:
        chk.err(loc, "must list at least one locale")
    for lang in locales:
        if lang not in bank_locales:
            chk.err(loc, f"locale {lang!r} is not one of the bank's locales")
    return locales


_Proposals = dict[str, tuple[str, ...]]
_Solution = tuple[int, ...] | dict[str, tuple[str, ...]]


def _answer_key(
    cd: dict[str, Any], ctype: str, loc: str, chk: _Checker, locales: Sequence[str]
) -> tuple[_Proposals, _Solution]:
    """The proposals and the solution, in the shape the challenge's type asks for (nothing when
    the type is unknown: that error is already reported)."""
    match ctype:
        case "single_choice" | "multiple_choice":
            proposals = _choice_proposals(cd.get("proposals"), f"{loc}.proposals", chk, locales)
            n_props = min((len(p) for p in proposals.values()), default=0)
            return proposals, _choice_solution(
                cd.get("solution"), f"{loc}.solution", chk, ctype, n_props
            )
        case "short_text":
            if cd.get("proposals") not in (None, {}, []):
                chk.err(f"{loc}.proposals", "short_text has no proposals")
            accepted = chk.per_locale(
                cd.get("solution"), f"{loc}.solution", locales, lambda a, at: _accepted(a, at, chk)
            )
            return {}, accepted
        case _:
            return {}, ()


def _choice_proposals(v: Any, loc: str, chk: _Checker, locales: Sequence[str]) -> _Proposals:
    """Proposals per locale, the same number in each (so that an index means one thing)."""
    proposals = chk.per_locale(v, loc, locales, lambda p, at: _proposals_in_one_locale(p, at, chk))
    if len({len(p) for p in proposals.values()}) > 1:
        chk.err(loc, "must have the same number of proposals in every locale")
    return proposals


def _proposals_in_one_locale(v: Any, loc: str, chk: _Checker) -> tuple[str, ...]:
    """A choice's proposals in one locale: 2 to 6 non-empty strings."""
    props = chk.lst(v, loc)
    if not 2 <= len(props) <= 6:
        chk.err(loc, "must hold 2 to 6 proposals")
    return tuple(chk.string(p, f"{loc}[{q}]") for q, p in enumerate(props))


def _choice_solution(v: Any, loc: str, chk: _Checker, ctype: str, n_props: int) -> tuple[int, ...]:
    """The indices of the right proposals: distinct, in range, one for a single choice and two
    or more for a multiple choice. Only the first problem is reported."""
    sol = chk.lst(v, loc)
    if any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < n_props for s in sol):
        chk.err(loc, f"must hold 0-based indices below {n_props}")
    elif len(set(sol)) != len(sol):
        chk.err(loc, "must not repeat an index")
    elif ctype == "single_choice" and len(sol) != 1:
        chk.err(loc, "single_choice needs exactly one index")
    elif ctype == "multiple_choice" and len(sol) < 2:
        chk.err(loc, "multiple_choice needs 2 or more indices")
    return tuple(int(s) for s in sol if isinstance(s, int))


def _accepted(v: Any, loc: str, chk: _Checker) -> tuple[str, ...]:
    """A short text's accepted answers in one locale: at least one."""
    answers = chk.lst(v, loc)
    if not answers:
        chk.err(loc, "must accept at least one answer")
    return tuple(chk.string(s, f"{loc}[{q}]") for q, s in enumerate(answers))


def _irt_parameters(v: Any, loc: str, chk: _Checker) -> IrtParameters:
    """a > 0, any b, 0 <= c < 0.5 (default 0) and c < d <= 1 (default 1). A bound is checked
    only when its numbers are numbers: a non-number is reported once, as such."""
    irt = chk.obj(v, loc)
    a = chk.number(irt.get("a"), f"{loc}.a")
    if not math.isnan(a) and a <= 0:
        chk.err(f"{loc}.a", "must be > 0")
    b = chk.number(irt.get("b"), f"{loc}.b")
    c = chk.number(irt.get("c", 0.0), f"{loc}.c")
    if not math.isnan(c) and not 0 <= c < 0.5:
        chk.err(f"{loc}.c", "must be in [0, 0.5)")
    d = chk.number(irt.get("d", 1.0), f"{loc}.d")
    if not math.isnan(d) and not math.isnan(c) and not c < d <= 1:
        chk.err(f"{loc}.d", "must be in (c, 1]")
    return IrtParameters(a, b, c, d)


def _timer_seconds(v: Any, loc: str, chk: _Checker) -> int | None:
    """The time allowed to answer, or None for no limit (also when it is invalid)."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        chk.err(loc, "must be null or a positive integer")
        return None
    return v


def _parse(path: Path) -> tuple[Bank | None, list[BankError]]:
    chk = _Checker()
    manifest_path = path / "bank.json" if path.is_dir() else path
    src = manifest_path.name
    man = _read_json(manifest_path, src, chk)
    if not man:
        return None, chk.errors
    if man.get("format") != FORMAT:
        chk.err(f"{src}: format", f"must be {FORMAT!r}")
    version = chk.string(man.get("version"), f"{src}: version")
    framework = chk.string(man.get("framework"), f"{src}: framework")
    locales = tuple(str(x) for x in chk.lst(man.get("locales"), f"{src}: locales"))
    if not locales:
        chk.err(f"{src}: locales", "must list at least one locale")
    title = chk.text(man.get("title"), f"{src}: title", locales)
    levels = []
    for i, lv in enumerate(chk.lst(man.get("levels", []), f"{src}: levels")):
        ld = chk.obj(lv, f"{src}: levels[{i}]")
        level = ld.get("level", 0)
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 8:
            chk.err(f"{src}: levels[{i}].level", "must be an integer in 1..8")
            continue
        levels.append(Level(level, ld.get("band") or {}))
    # (source, area list, challenge list) for each part, or the manifest itself
    parts: list[tuple[str, list[Any], list[Any]]] = []
    if "parts" in man:
        if not manifest_path.parent.is_dir():
            chk.err(f"{src}: parts", "parts need a bank directory")
        for i, name in enumerate(chk.lst(man["parts"], f"{src}: parts")):
            pname = chk.string(name, f"{src}: parts[{i}]")
            if not pname:
                continue
            part = _read_json(manifest_path.parent / pname, pname, chk)
            parts.append(
                (
                    pname,
                    chk.lst(part.get("areas", []), f"{pname}: areas"),
                    chk.lst(part.get("challenges", []), f"{pname}: challenges"),
                )
            )
    else:
        parts.append(
            (
                src,
                chk.lst(man.get("areas"), f"{src}: areas"),
                chk.lst(man.get("challenges", []), f"{src}: challenges"),
            )
        )
    codes: dict[str, str] = {}
    areas: list[Area] = []
    for psrc, raw_areas, _ in parts:
        areas.extend(_parse_areas(raw_areas, psrc, chk, codes))
    skills = {s.code for a in areas for c in a.competences for t in c.tubes for s in t.skills}
    challenges: list[Challenge] = []
    ids: dict[str, str] = {}
    for psrc, _, raw_challenges in parts:
        for i, raw in enumerate(raw_challenges):
            loc = f"{psrc}: challenges[{i}]"
            ch = _parse_challenge(raw, loc, chk, locales)
            if ch.id and ch.id in ids:
                chk.err(f"{loc}.id", f"duplicate id {ch.id!r} (first at {ids[ch.id]})")
            elif ch.id:
                ids[ch.id] = loc
            if ch.skill and ch.skill not in skills:
                chk.err(f"{loc}.skill", f"unknown skill {ch.skill!r}")
            challenges.append(ch)
    if chk.errors:
        return None, chk.errors
    bank = Bank(version, framework, title, locales, tuple(levels), tuple(areas), tuple(challenges))
    return bank, []


def validate_bank(path: str | os.PathLike[str]) -> list[BankError]:
    """Every error in the bank at `path` (a directory with bank.json, or a single JSON file);
    an empty list means it loads."""
    return _parse(Path(path))[1]


def load_bank(path: str | os.PathLike[str]) -> Bank:
    """Load and validate the bank at `path`; raises BankValidationError listing every error."""
    bank, errors = _parse(Path(path))
    if bank is None:
        raise BankValidationError(errors)
    return bank


_cache: dict[tuple[str, str], Bank] = {}
_stamps: dict[str, tuple[tuple[int, int], str]] = {}
_lock = threading.Lock()


def _stamp(path: Path) -> tuple[int, int]:
    files = [path / "bank.json", *sorted(path.glob("*.json"))] if path.is_dir() else [path]
    st = [f.stat() for f in files if f.exists()]
    return (max((s.st_mtime_ns for s in st), default=0), sum(s.st_size for s in st))


_resolved: dict[str, str] = {}


def _key(path: str | os.PathLike[str]) -> str:
    """The cache's key for `path`: its resolved form, remembered for absolute paths (resolving
    asks the file system for every component, on every answer)."""
    text = os.fspath(path)
    key = _resolved.get(text)
    if key is None:
        key = str(Path(text).resolve())
        if Path(text).is_absolute():
            _resolved[text] = key
    return key


def get_bank(path: str | os.PathLike[str], version: str | None = None) -> Bank:
    """The bank at `path`, loaded once per process and cached by version.

    With `version` (e.g. the version a campaign froze), a cached bank of that version is
    returned without touching the disk. Otherwise the files' modification stamp decides
    whether to reload; a reload that yields an already cached version reuses that object
    (and its compiled pool). Raises BankValidationError if the bank is invalid, and
    LookupError if `version` is given but the files hold another one.
    """
    key_path = _key(path)
    with _lock:
        if version is not None and (key_path, version) in _cache:
            return _cache[(key_path, version)]
        stamp = _stamp(Path(key_path))
        known = _stamps.get(key_path)
        if known is not None and known[0] == stamp:
            bank = _cache[(key_path, known[1])]
        else:
            loaded = load_bank(key_path)
            bank = _cache.setdefault((key_path, loaded.version), loaded)
            _stamps[key_path] = (stamp, bank.version)
        if version is not None and bank.version != version:
            raise LookupError(f"bank at {path} is version {bank.version}, not {version}")
        return bank
