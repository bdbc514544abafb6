"""Whose data an agreement covers: the version a school approved, its pupil list, and the
recipient's cohort.

Widening an agreement (new objects, paths, actions or recipients) needs re-approval: a
school that has not re-approved stays on the last version it approved. Narrowing carries
its approval forward.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from hub.core.agreements.model import PupilAccess

V = TypeVar("V")


def effective_version(versions: Sequence[tuple[int, bool, V]], approved: Iterable[int]) -> V | None:
    """`versions` ascending as (number, widens-its-predecessor, value); the value of the
    newest version this school's approvals reach, or None when it approved none."""
    approved_set = set(approved)
    current: V | None = None
    carrying = False
    for number, widens, value in versions:
        if number in approved_set:
            current, carrying = value, True
        elif carrying and not widens:
            current = value
        else:
            carrying = False
    return current


def _named(learners: Iterable[str], refid: str | None, upn: str | None) -> bool:
    ids = {x for x in (refid, upn) if x}
    return not ids.isdisjoint(learners)


def pupil_allowed(access: PupilAccess, refid: str | None, upn: str | None) -> bool:
    if access.mode == "all":
        return True
    named = _named(access.learners, refid, upn)
    return not named if access.mode == "all_except" else named


def in_cohort(members: frozenset[str], refid: str | None, upn: str | None) -> bool:
    return _named(members, refid, upn)
