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
class RecipientDiff:
    """What one recipient's scope gains and loses (its partner rules, or the agreement's)."""

    objects: dict[str, ObjectDiff]
    gained: bool = False  # a new recipient
    lost: bool = False
    cohort_relaxed: bool = False  # a cohort restriction was dropped or changed

    @property
    def widens(self) -> bool:
        return (
            self.gained
            or self.cohort_relaxed
            or any(d.gained or d.actions_gained or d.filters_relaxed for d in self.objects.values())
        )


@dataclass(frozen=True)
class VersionDiff:
    objects: dict[str, ObjectDiff]  # the agreement-level rules
    recipients_gained: list[str]
    recipients_lost: list[str]
    cohort_relaxed: bool = False  # a cohort restriction was dropped or changed
    recipients: dict[str, RecipientDiff] = field(default_factory=dict)

    @property
    def widened_for(self) -> frozenset[str]:
        """The recipients whose scope this version widens: each needs re-approval."""
        return frozenset(r for r, d in self.recipients.items() if d.widens)

    @property
    def widens(self) -> bool:
        return bool(self.widened_for)


def released(
    version: CompiledVersion | None,
    object_name: str,
    paths_of: PathsOf,
    recipient: str | None = None,
) -> set[str]:
    """Leaf element paths a copy of `object_name` may carry under `version` (for
    `recipient`, or under the agreement-level rules)."""
    rules = _rules(version, recipient)
    rule = rules.get(object_name)
    if rule is None:
        return set()
    every = paths_of(object_name)
    leaves = {p for p in every if not any(o.startswith(p + "/") for o in every)}
    return {p for p in leaves if rule.filter.allows(parse_path(p))}


def diff(old: CompiledVersion | None, new: CompiledVersion, paths_of: PathsOf) -> VersionDiff:
    old_recipients = set(old.spec.recipients) if old else set()
    recipients = {
        r: RecipientDiff(
            objects=_objects(_rules(old, r), _rules(new, r), old, new, paths_of, r),
            gained=r not in old_recipients,
            lost=r not in new.spec.recipients,
            cohort_relaxed=old is not None
            and r in new.spec.recipients
            and old.spec.cohort_for(r) not in (None, new.spec.cohort_for(r)),
        )
        for r in sorted(old_recipients | set(new.spec.recipients))
    }
    return VersionDiff(
        objects=_objects(_rules(old, None), new.rules, old, new, paths_of, None),
        recipients_gained=sorted(set(new.spec.recipients) - old_recipients),
        recipients_lost=sorted(old_recipients - set(new.spec.recipients)),
        cohort_relaxed=old is not None and old.spec.cohort not in (None, new.spec.cohort),
        recipients=recipients,
    )


def _rules(version: CompiledVersion | None, recipient: str | None) -> dict[str, CompiledRule]:
    if version is None:
        return {}
    return version.rules if recipient is None else version.scopes.get(recipient, {})


def _objects(
    old_rules: dict[str, CompiledRule],
    new_rules: dict[str, CompiledRule],
    old: CompiledVersion | None,
    new: CompiledVersion,
    paths_of: PathsOf,
    recipient: str | None,
) -> dict[str, ObjectDiff]:
    objects = {}
    for name in sorted(set(new_rules) | set(old_rules)):
        before = released(old, name, paths_of, recipient)
        after = released(new, name, paths_of, recipient)
        old_rule, new_rule = old_rules.get(name), new_rules.get(name)
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
    return objects


def _conditions(rule: CompiledRule) -> set[tuple[str, tuple[str, ...]]]:
    return {(c.path, tuple(sorted(c.values))) for c in rule.where}
