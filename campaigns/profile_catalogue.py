"""Target profiles: which competences (and tubes) a campaign assesses, up to which level.

The catalogue is code, not data: it is built from the bank's framework, so it never drifts
from the challenges, and no global table has to describe what tenants may reference. Tenants
add their own profiles (the `target_profile` table, `campaigns.target_profiles`); a campaign
freezes whichever it uses into a snapshot (`ProfileSpec.to_json`).

Titles of catalogue profiles are content, like the bank's titles: one text per locale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import Invalid
from engine import Bank

MAX_LEVEL = 8


@dataclass(frozen=True)
class ProfileSpec:
    """What a target profile selects. `tubes` empty means every tube of the competences;
    `max_levels` caps a competence's level (skills above it are not asked, levels above it are
    not awarded); a competence without a cap goes up to 8."""

    competences: tuple[str, ...]
    tubes: tuple[str, ...] = ()
    max_levels: tuple[tuple[str, int], ...] = ()

    def max_level(self, competence: str) -> int:
        """The level cap of `competence` (8 when uncapped)."""
        return dict(self.max_levels).get(competence, MAX_LEVEL)

    def to_json(self) -> dict[str, Any]:
        """The profile as stored in a campaign snapshot or a `target_profile` row."""
        return {
            "competences": list(self.competences),
            "tubes": list(self.tubes),
            "max_levels": dict(self.max_levels),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileSpec:
        """The inverse of `to_json`."""
        return cls(
            competences=tuple(data["competences"]),
            tubes=tuple(data.get("tubes") or ()),
            max_levels=tuple(
                sorted((str(k), int(v)) for k, v in (data.get("max_levels") or {}).items())
            ),
        )


@dataclass(frozen=True)
class CatalogueProfile:
    """A profile every tenant can use. `competences` None means every competence of the bank."""

    key: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    competences: tuple[str, ...] | None
    max_levels: tuple[tuple[str, int], ...] = ()

    def spec(self, bank: Bank) -> ProfileSpec:
        """The profile against `bank`."""
        codes = tuple(bank.competences) if self.competences is None else self.competences
        return ProfileSpec(competences=codes, max_levels=self.max_levels)


CATALOGUE: tuple[CatalogueProfile, ...] = (
    CatalogueProfile(
        key="digcomp",
        title={"en": "All digital competences", "fr": "Toutes les compétences numériques"},
        description={
            "en": "Every competence of the framework (DigComp 2.2 structure).",
            "fr": "Toutes les compétences du référentiel (structure DigComp 2.2).",
        },
        competences=None,
    ),
    CatalogueProfile(
        key="office-essentials",
        title={"en": "Office essentials", "fr": "Essentiels bureautiques"},
        description={
            "en": "Searching, managing files, email, sharing, co-editing and documents.",
            "fr": "Rechercher, gérer ses fichiers, courriel, partage, coédition et documents.",
        },
        competences=("1.1", "1.3", "2.1", "2.2", "2.4", "3.1"),
        max_levels=(("1.1", 5), ("1.3", 5), ("2.1", 5), ("2.2", 5), ("2.4", 5), ("3.1", 5)),
    ),
    CatalogueProfile(
        key="online-safety",
        title={"en": "Online safety", "fr": "Sécurité en ligne"},
        description={
            "en": "Devices, personal data, well-being and reliable information.",
            "fr": "Appareils, données personnelles, bien-être et information fiable.",
        },
        competences=("1.2", "2.6", "4.1", "4.2", "4.3"),
    ),
)


def catalogue(bank: Bank) -> list[CatalogueProfile]:
    """The catalogue profiles that `bank` can serve (every competence present)."""
    return [
        p for p in CATALOGUE if p.competences is None or set(p.competences) <= set(bank.competences)
    ]


def catalogue_profile(key: str, bank: Bank) -> CatalogueProfile:
    """The catalogue profile `key`; `Invalid` when unknown or not served by `bank`."""
    for profile in catalogue(bank):
        if profile.key == key:
            return profile
    raise Invalid("Choose one of the offered target profiles.", field="target_profile")


def clean_spec(
    bank: Bank,
    competences: Sequence[str],
    tubes: Sequence[str] = (),
    max_levels: Mapping[str, int] | None = None,
) -> ProfileSpec:
    """A profile checked against `bank`: known competences, tubes of those competences, caps
    between 1 and 8 on chosen competences. Order follows the framework.

    Topics narrow a competence: a competence with none of its topics chosen keeps them all
    (so choosing topics in one competence does not empty the others)."""
    chosen = set(competences)
    if not chosen:
        raise Invalid("Choose at least one competence.", field="competences")
    unknown = sorted(chosen - set(bank.competences))
    if unknown:
        raise Invalid("Unknown competence: {code}.", field="competences", code=unknown[0])
    tube_set = set(tubes)
    for code in sorted(tube_set):
        tube = bank.tubes.get(code)
        if tube is None or tube.competence not in chosen:
            raise Invalid("Choose topics of the chosen competences.", field="tubes")
    caps: dict[str, int] = {}
    for code, level in (max_levels or {}).items():
        if code not in chosen:
            raise Invalid("Set level caps on chosen competences only.", field="max_levels")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_LEVEL:
            raise Invalid("A level cap is a level from 1 to 8.", field="max_levels")
        if level < MAX_LEVEL:
            caps[code] = level
    if tube_set:
        narrowed = {bank.tubes[code].competence for code in tube_set}
        tube_set |= {
            tube.code for code in chosen - narrowed for tube in bank.competences[code].tubes
        }
    order = list(bank.competences)
    return ProfileSpec(
        competences=tuple(c for c in order if c in chosen),
        tubes=tuple(t for t in bank.tubes if t in tube_set),
        max_levels=tuple(sorted(caps.items())),
    )


def eligible_challenges(bank: Bank, spec: ProfileSpec) -> frozenset[str]:
    """Ids of the validated challenges the profile may serve (tubes and level caps applied)."""
    chosen = set(spec.competences)
    tubes = set(spec.tubes)
    out = set()
    for ch in bank.challenges:
        skill = bank.skills[ch.skill]
        if (
            ch.status == "validated"
            and skill.competence in chosen
            and (not tubes or skill.tube in tubes)
            and skill.level <= spec.max_level(skill.competence)
        ):
            out.add(ch.id)
    return frozenset(out)


def check_servable(bank: Bank, spec: ProfileSpec, locales: Sequence[str]) -> None:
    """`Invalid` unless every chosen competence has a question in every campaign locale."""
    eligible = eligible_challenges(bank, spec)
    for locale in locales:
        served = {
            bank.skills[bank.challenge_by_id[cid].skill].competence
            for cid in eligible
            if locale in bank.challenge_by_id[cid].locales
        }
        missing = [c for c in spec.competences if c not in served]
        if missing:
            raise Invalid(
                "No question of competence {code} exists in this language: {locale}.",
                field="target_profile",
                code=missing[0],
                locale=locale,
            )
