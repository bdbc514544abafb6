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
from hub.core.identifiers import is_refid, is_upn

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


def _may_name(learners: Iterable[str], refid: str | None, upn: str | None) -> bool:
    """Could the list name this learner by an identifier the hub does not know yet?"""
    return any((refid is None and is_refid(x)) or (upn is None and is_upn(x)) for x in learners)


def pupil_allowed(
    access: PupilAccess,
    refid: str | None,
    upn: str | None,
    former_upns: frozenset[str] = frozenset(),
) -> bool | None:
    """Does the school's pupil list let this learner's data flow? None: it cannot be told
    until the learner's identity (the UPN or RefId the list names learners by) is known.
    A learner left out by a UPN it had before stays left out; an `only` list admits by
    the current UPN (or RefId) alone."""
    if access.mode == "all":
        return True
    if access.mode == "all_except" and former_upns & frozenset(access.learners):
        return False
    if _named(access.learners, refid, upn):
        return access.mode == "only"
    if _may_name(access.learners, refid, upn):
        return None
    return access.mode == "all_except"


def in_cohort(members: frozenset[str], refid: str | None, upn: str | None) -> bool | None:
    """Is the learner in the recipient's cohort? None: not until its identity is known."""
    if _named(members, refid, upn):
        return True
    return None if _may_name(members, refid, upn) else False
