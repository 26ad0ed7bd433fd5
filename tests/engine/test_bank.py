from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.bank import (
    Bank,
    BankValidationError,
    get_bank,
    is_correct,
    load_bank,
    normalize_answer,
    validate_bank,
)

BANKS = Path(__file__).parent / "banks"
DEMO = Path(__file__).resolve().parents[2] / "engine" / "content" / "demo"


def _single() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BANKS / "single.json").read_text(encoding="utf-8"))
    return data


def _errors(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return [str(e) for e in validate_bank(path)]


def test_a_bank_directory_loads_with_its_framework_and_challenges(small_bank: Bank) -> None:
    assert small_bank.version == "test.1"
    assert small_bank.locales == ("en", "fr")
    assert list(small_bank.competences) == ["1.1", "1.2", "4.1"]
    assert small_bank.skills["@fakes4"].competence == "1.2"
    assert small_bank.skills["@fakes4"].tube == "1.2-fakes"
    assert small_bank.challenge_by_id["p4a"].type == "short_text"
    assert small_bank.challenge_by_id["q1a"].irt.c == 0.2
    assert small_bank.challenge_by_id["s2a"].irt.d == 1.0
    assert len(small_bank.levels) == 8


def test_a_single_file_bank_loads_the_same_content() -> None:
    single = load_bank(BANKS / "single.json")
    directory = load_bank(BANKS / "small")
    assert [c.id for c in single.challenges] == [c.id for c in directory.challenges]


def test_the_compiled_pool_keeps_retired_items_but_never_selects_them(small_bank: Bank) -> None:
    pool = small_bank.pool
    i = pool.index["f2old"]
    assert not pool.scored[i]
    assert not pool.pretest[i]
    assert pool.pretest[pool.index["f4b"]]
    assert not pool.locales["fr"][pool.index["u2en"]]


def test_every_error_is_reported_with_its_location(tmp_path: Path) -> None:
    data = _single()
    chs = data["challenges"]
    chs[1]["id"] = chs[0]["id"]  # duplicate id
    chs[2]["skill"] = "@nowhere3"  # unknown skill
    del chs[3]["statement"]["fr"]  # missing locale
    chs[4]["irt"]["a"] = 0  # a <= 0
    chs[5]["irt"]["c"] = 0.5  # c outside [0, 0.5)
    chs[6]["status"] = "published"
    chs[0]["solution"] = [7]
    chs[8]["locales"] = ["en", "de"]
    errors = _errors(tmp_path, data)
    expected = [
        "bank.json: challenges[1].id: duplicate id 'q1a'",
        "bank.json: challenges[2].skill: unknown skill '@nowhere3'",
        "bank.json: challenges[3].statement.fr: missing locale",
        "bank.json: challenges[4].irt.a: must be > 0",
        "bank.json: challenges[5].irt.c: must be in [0, 0.5)",
        "bank.json: challenges[6].status: must be one of",
        "bank.json: challenges[0].solution: must hold 0-based indices below 3",
        "bank.json: challenges[8].locales: locale 'de' is not one of the bank's locales",
    ]
    for message in expected:
        assert any(e.startswith(message) for e in errors), message
    with pytest.raises(BankValidationError) as raised:
        load_bank(tmp_path / "bank.json")
    assert len(raised.value.errors) == len(errors) >= len(expected)


def test_framework_errors_are_reported_too(tmp_path: Path) -> None:
    data = _single()
    tube = data["areas"][0]["competences"][0]["tubes"][0]
    tube["skills"][1]["code"] = "@queries2"  # level 3 but ends with 2
    tube["skills"].append({"code": "@queries1", "level": 1, "title": {}})  # duplicate
    tube["skills"].append({"code": "@deep9", "level": 9, "title": {}})
    data["areas"][1]["competences"][0]["code"] = "1.1"
    errors = _errors(tmp_path, data)
    loc = "bank.json: areas[0].competences[0].tubes[0].skills"
    assert f"{loc}[1].code: must start with @ and end with its level digit" in errors
    assert any(e.startswith(f"{loc}[2].code: duplicate code '@queries1'") for e in errors)
    assert f"{loc}[3].level: must be an integer in 1..8" in errors
    assert any(e.startswith("bank.json: areas[1].competences[0].code: duplicate") for e in errors)


def test_a_manifest_level_that_is_not_1_to_8_is_an_error_not_a_crash(tmp_path: Path) -> None:
    data = _single()
    data["levels"] = [{"level": "two"}, {"band": {}}, {"level": 9}, {"level": True}]
    errors = _errors(tmp_path, data)
    for i in range(4):
        assert f"bank.json: levels[{i}].level: must be an integer in 1..8" in errors


def test_choice_and_short_text_shapes_are_checked(tmp_path: Path) -> None:
    data = _single()
    chs = data["challenges"]
    chs[0]["proposals"]["fr"] = chs[0]["proposals"]["fr"][:2]  # count differs between locales
    chs[3]["solution"] = [0]  # multiple choice needs two
    chs[9]["solution"] = {"en": ["x"]}  # short text without fr
    chs[1]["proposals"]["en"] = ["only one"]
    chs[1]["proposals"]["fr"] = ["une seule"]
    chs[2]["timer_seconds"] = -5
    errors = _errors(tmp_path, data)
    assert (
        "bank.json: challenges[0].proposals: must have the same number of proposals in every locale"
        in errors
    )
    assert "bank.json: challenges[3].solution: multiple_choice needs 2 or more indices" in errors
    assert "bank.json: challenges[9].solution.fr: missing locale" in errors
    assert "bank.json: challenges[1].proposals.en: must hold 2 to 6 proposals" in errors
    assert "bank.json: challenges[2].timer_seconds: must be null or a positive integer" in errors


def test_errors_in_parts_name_the_part_file(tmp_path: Path) -> None:
    for name in ("bank.json", "area-1.json", "area-2.json"):
        (tmp_path / name).write_text((BANKS / "small" / name).read_text(encoding="utf-8"))
    part = json.loads((tmp_path / "area-2.json").read_text(encoding="utf-8"))
    part["challenges"][0]["irt"]["b"] = "hard"
    (tmp_path / "area-2.json").write_text(json.dumps(part))
    manifest = json.loads((tmp_path / "bank.json").read_text(encoding="utf-8"))
    manifest["parts"].append("area-9.json")
    (tmp_path / "bank.json").write_text(json.dumps(manifest))
    errors = [str(e) for e in validate_bank(tmp_path)]
    assert "area-2.json: challenges[0].irt.b: must be a finite number" in errors
    assert any(e.startswith("area-9.json: file not found") for e in errors)


def test_invalid_json_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "bank.json").write_text("{not json")
    assert "invalid JSON" in str(validate_bank(tmp_path / "bank.json")[0])


def test_short_text_answers_are_normalized() -> None:
    assert (
        normalize_answer("  Gestionnaire   de MOTS de passe ! ") == "gestionnaire de mots de passe"
    )
    assert normalize_answer("« Élève »") == "eleve"
    assert normalize_answer("ＡＢＣ") == "abc"  # full-width forms fold under NFKC
    assert normalize_answer("Straße") == "strasse"
    assert normalize_answer("e-mail") == "e-mail"  # inner punctuation is kept


def test_answers_are_checked_by_type(small_bank: Bank) -> None:
    ch = small_bank.challenge_by_id
    assert is_correct(ch["q1a"], 1, "en")
    assert not is_correct(ch["q1a"], [0], "en")
    assert is_correct(ch["s2a"], [2, 0], "en")
    assert not is_correct(ch["s2a"], [0], "en")
    assert not is_correct(ch["s2a"], [0, 1, 2], "en")
    assert is_correct(ch["p4a"], "gestionnaire de MOTS DE PASSE.", "fr")
    assert not is_correct(ch["p4a"], "gestionnaire de mots de passe", "en")


def test_get_bank_loads_once_and_serves_the_cached_version(tmp_path: Path) -> None:
    path = tmp_path / "bank.json"
    path.write_text((BANKS / "single.json").read_text(encoding="utf-8"))
    first = get_bank(path)
    assert get_bank(path) is first
    assert get_bank(path, version="test.single") is first
    data = _single()
    data["version"] = "test.single.2"
    path.write_text(json.dumps(data))
    os.utime(path, ns=(1, 10**18))
    second = get_bank(path)
    assert second is not first
    assert second.version == "test.single.2"
    # the campaign frozen on the old version still gets it, with no disk access
    assert get_bank(path, version="test.single") is first
    with pytest.raises(LookupError):
        get_bank(path, version="never")


def test_a_broken_edit_does_not_replace_the_cached_bank_silently(tmp_path: Path) -> None:
    path = tmp_path / "bank.json"
    path.write_text((BANKS / "single.json").read_text(encoding="utf-8"))
    get_bank(path)
    broken = copy.deepcopy(_single())
    broken["challenges"][0]["irt"]["a"] = -1
    path.write_text(json.dumps(broken))
    os.utime(path, ns=(1, 2 * 10**18))
    with pytest.raises(BankValidationError):
        get_bank(path)


@pytest.mark.skipif(not (DEMO / "bank.json").exists(), reason="demo content not written yet")
def test_the_demo_bank_loads_with_full_coverage() -> None:
    assert validate_bank(DEMO) == []
    bank = load_bank(DEMO)
    validated = [c for c in bank.challenges if c.status == "validated"]
    assert len(validated) >= 200
    assert len(bank.competences) == 21
    assert {"fr", "en"} <= set(bank.locales)
    levels = {bank.skills[c.skill].level for c in validated}
    assert set(range(1, 7)) <= levels
    for code in bank.competences:
        assert any(bank.skills[c.skill].competence == code for c in validated), code
    assert all({"fr", "en"} <= set(c.locales) and c.explanation for c in validated)
