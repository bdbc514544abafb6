"""Learner identifiers in one canonical form, wherever they are stored or compared:
suppressions, pupil lists, cohorts, the learner index and subject access.

A learner is named by a UPN (English Unique Pupil Number) or a LearnerPersonal RefId. Both
are compared upper case with all white space removed, so " p830200123843 " and
"P830200123843" are the same child. A UPN's check letter is verified with python-stdnum;
its LA number is not checked against stdnum's 2011 list, which lacks LAs created since
(Dorset 838, BCP 839, North and West Northamptonshire 940/941, Cumberland and Westmorland
942/943).
"""

from __future__ import annotations

import re

from stdnum.gb import upn as upn_check

_REFID = re.compile(r"^[0-9A-F]{32}$")
# Check letter, 11 digits, then a digit (permanent) or letter (temporary UPN).
_UPN = re.compile(r"^[A-Z][0-9]{11}[0-9A-Z]$")


class InvalidIdentifier(ValueError):
    """Neither a UPN with a valid check letter nor a 32-hex-digit RefId. The message never
    quotes the value (it is personal data)."""


def canonical(text: str) -> str:
    """Upper case, every white space character removed."""
    return "".join(text.split()).upper()


def is_refid(value: str) -> bool:
    return bool(_REFID.match(value))


def is_upn(value: str) -> bool:
    """A canonical UPN whose check letter is right."""
    return bool(_UPN.match(value)) and upn_check.calc_check_digit(value[1:]) == value[0]


def learner_id(text: str) -> str:
    """The canonical form of a UPN or RefId given by a person (admin API, configuration);
    raises InvalidIdentifier for anything else."""
    value = canonical(text)
    if is_refid(value) or is_upn(value):
        return value
    if _UPN.match(value):
        raise InvalidIdentifier("not a valid UPN: its check letter is wrong")
    raise InvalidIdentifier("not a UPN (13 characters) or a LearnerPersonal RefId (32 hex digits)")


def learner_ids(texts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Canonical, de-duplicated, sorted; raises InvalidIdentifier naming the position."""
    out = set()
    for i, text in enumerate(texts):
        try:
            out.add(learner_id(text))
        except InvalidIdentifier as exc:
            raise InvalidIdentifier(f"learner {i + 1}: {exc}") from None
    return tuple(sorted(out))


def data_id(text: str | None) -> str | None:
    """An identifier read off a SIF object: canonical, or None when absent or blank. Data is
    not refused here (the schema has already checked its shape)."""
    if text is None:
        return None
    return canonical(text) or None
