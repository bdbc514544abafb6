"""Special category data (UK GDPR Art 9) and what never leaves, per object (SIF-DIGEST §1a).

Without an Art 9(2) condition these paths are stripped from every copy, whatever a rule
includes, filters on or tests, and a rule that names one (to include, to filter items on, or
as a condition) is refused; objects that are special category as a whole are not delivered
at all.
"""

from __future__ import annotations

from hub.core.paths import Path, parse_path

_PERSON = (
    "PersonalInformation/Demographics/EthnicityList",
    "PersonalInformation/Demographics/Traveller",
    "PersonalInformation/Demographics/Religion",
)
SPECIAL_PATHS: dict[str, tuple[str, ...]] = {
    "LearnerPersonal": (*_PERSON, "MedicalAlertMsgList", "Pregnant"),
    "WorkforcePersonal": (*_PERSON, "MedicalAlertMsgList"),
    "ContactPersonal": _PERSON,
}
# SEN types and medical notes: health data throughout.
SPECIAL_OBJECTS = frozenset({"LearnerSpecialNeeds"})
# Credentials: never released under any agreement.
NEVER_PATHS: dict[str, tuple[str, ...]] = {"Identity": ("PasswordList",)}


def special_paths(object_name: str) -> frozenset[Path]:
    return frozenset(parse_path(p) for p in SPECIAL_PATHS.get(object_name, ()))


def never_paths(object_name: str) -> frozenset[Path]:
    return frozenset(parse_path(p) for p in NEVER_PATHS.get(object_name, ()))


def special_paths_requested(object_name: str, named: list[str] | None) -> list[str]:
    """The paths among `named` (a rule's include, item filter and condition paths) that are
    at or below a special-category path; "the whole object" for a special object."""
    if object_name in SPECIAL_OBJECTS:
        return ["the whole object"]
    special = special_paths(object_name)
    return sorted({p for p in named or () if any(parse_path(p)[: len(s)] == s for s in special)})
