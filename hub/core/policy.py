"""Who receives which copy of what: the single routing decision every delivery path calls.

`compile_policy` turns configuration into an immutable index once; `decide` is pure and
cheap, called by dispatch for every object. Default deny: no agreement, no copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.core.config import HubConfig
from hub.core.envelope import Action
from hub.core.objects import CATALOGUE
from hub.core.paths import PathFilter


@dataclass(frozen=True)
class Item:
    """What dispatch knows about one object waiting to be routed."""

    object_name: str
    action: Action
    school: str | None
    subject_refid: str | None = None


@dataclass(frozen=True)
class Copy:
    """One entitled recipient and the filter its copy must pass through."""

    subscriber: str
    agreement_id: str
    agreement_version: int
    filter: PathFilter


@dataclass(frozen=True)
class _Grant:
    agreement_id: str
    version: int
    subscriber: str
    actions: frozenset[Action]
    filter: PathFilter


@dataclass(frozen=True)
class Policy:
    grants: dict[str, tuple[_Grant, ...]] = field(default_factory=dict)


def compile_policy(config: HubConfig) -> Policy:
    grants: dict[str, list[_Grant]] = {}
    for agreement in config.agreements:
        for rule in agreement.rules:
            flt = PathFilter.of(rule.include, rule.exclude)
            for recipient in agreement.recipients:
                grant = _Grant(agreement.id, 1, recipient, frozenset(rule.actions), flt)
                grants.setdefault(rule.object, []).append(grant)
    return Policy({name: tuple(items) for name, items in grants.items()})


def decide(item: Item, policy: Policy) -> list[Copy]:
    spec = CATALOGUE.get(item.object_name)
    if spec is None or not spec.routable:
        return []
    seen: set[str] = set()
    copies = []
    for grant in policy.grants.get(item.object_name, ()):
        if item.action not in grant.actions or grant.subscriber in seen:
            continue
        seen.add(grant.subscriber)
        copies.append(Copy(grant.subscriber, grant.agreement_id, grant.version, grant.filter))
    return copies
