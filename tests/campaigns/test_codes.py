"""Campaign codes: unambiguous alphabet, check character, normalization."""

from __future__ import annotations

from campaigns.codes import (
    ALPHABET,
    LENGTH,
    check_character,
    is_well_formed,
    new_code,
    normalize_code,
)


def test_codes_avoid_look_alike_characters() -> None:
    assert not set("01ILO") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 31
    for _ in range(200):
        code = new_code()
        assert len(code) == LENGTH == 9
        assert set(code) <= set(ALPHABET)
        assert is_well_formed(code)


def test_the_check_character_catches_any_wrong_character_and_any_swap() -> None:
    for _ in range(100):
        code = new_code()
        for i in range(LENGTH):
            for wrong in ALPHABET.replace(code[i], ""):
                assert not is_well_formed(code[:i] + wrong + code[i + 1 :])
            for j in range(i + 1, LENGTH):
                if code[i] != code[j]:
                    swapped = list(code)
                    swapped[i], swapped[j] = swapped[j], swapped[i]
                    assert not is_well_formed("".join(swapped))


def test_what_people_type_is_normalized() -> None:
    payload = "ABCDEFGH"
    code = payload + check_character(payload)
    assert normalize_code(f" {code[:4].lower()}-{code[4:]} ") == code
    assert is_well_formed(normalize_code(code.lower()))
    assert not is_well_formed("ABCDEFGH")
    assert not is_well_formed("ABCDEFGHO")
