"""What a new version of an agreement releases that the old one did not, and vice versa.

Computed over every element path the schema allows, through the same compiled filters
dispatch uses, so a diff shows exactly what a school or DPO is being asked to approve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.core.agreements.compile import CompiledRule, CompiledVersion
from hub.core.paths import parse_path

PathsOf = Callable[[str], frozenset[str]]


@dataclass(frozen=True)
class ObjectDiff:
    gained: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    actions_gained: list[str] = field(default_factory=list)
    actions_lost: list[str] = field(default_factory=list)
    filters_relaxed: bool = False  # a value filter or condition was dropped


@dataclass(frozen=True)
class VersionDiff:
    objects: dict[str, ObjectDiff]
    recipients_gained: list[str]
    recipients_lost: list[str]
    cohort_relaxed: bool = False  # a cohort restriction was dropped or changed

    @property
    def widens(self) -> bool:
        return (
            bool(self.recipients_gained)
            or self.cohort_relaxed
            or any(d.gained or d.actions_gained or d.filters_relaxed for d in self.objects.values())
        )


def released(version: CompiledVersion | None, object_name: str, paths_of: PathsOf) -> set[str]:
    """Leaf element paths a copy of `object_name` may carry under `version`."""
    rule = version.rules.get(object_name) if version else None
    if rule is None:
        return set()
    every = paths_of(object_name)
    leaves = {p for p in every if not any(o.startswith(p + "/") for o in every)}
    return {p for p in leaves if rule.filter.allows(parse_path(p))}


def diff(old: CompiledVersion | None, new: CompiledVersion, paths_of: PathsOf) -> VersionDiff:
    names = sorted(set(new.rules) | set(old.rules if old else ()))
    objects = {}
    for name in names:
        before, after = released(old, name, paths_of), released(new, name, paths_of)
        old_rule = old.rules.get(name) if old else None
        new_rule = new.rules.get(name)
        acts_before = {a.value for a in old_rule.actions} if old_rule else set()
        acts_after = {a.value for a in new_rule.actions} if new_rule else set()
        relaxed = bool(
            old_rule
            and new_rule
            and (
                not set(old_rule.filter.items) <= set(new_rule.filter.items)
                or not _conditions(old_rule) <= _conditions(new_rule)
            )
        )
        entry = ObjectDiff(
            sorted(after - before),
            sorted(before - after),
            sorted(acts_after - acts_before),
            sorted(acts_before - acts_after),
            relaxed,
        )
        if entry != ObjectDiff():
            objects[name] = entry
    old_recipients = set(old.spec.recipients) if old else set()
    cohort_relaxed = old is not None and old.spec.cohort not in (None, new.spec.cohort)
    return VersionDiff(
        objects,
        sorted(set(new.spec.recipients) - old_recipients),
        sorted(old_recipients - set(new.spec.recipients)),
        cohort_relaxed,
    )


def _conditions(rule: CompiledRule) -> set[tuple[str, tuple[str, ...]]]:
    return {(c.path, tuple(sorted(c.values))) for c in rule.where}
