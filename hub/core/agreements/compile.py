"""One agreement version -> the filters its copies pass through.

Special-category paths are stripped unless the version has an Art 9 condition; paths that
must never leave are stripped always. Everything a copy may hold is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.core.agreements.model import Agreement, Condition, ItemFilter, Rule
from hub.core.agreements.special import SPECIAL_OBJECTS, never_paths, special_paths
from hub.core.envelope import Action
from hub.core.objects import CATALOGUE
from hub.core.paths import ItemRule, Path, PathFilter, parse_path


@dataclass(frozen=True)
class CompiledRule:
    object_name: str
    actions: frozenset[Action]
    filter: PathFilter
    where: tuple[Condition, ...]

    def matches(self, values: dict[str, tuple[str, ...]]) -> bool:
        """Object-level conditions over the values dispatch read off the object."""
        return all(set(values.get(c.path, ())) & set(c.values) for c in self.where)


@dataclass(frozen=True)
class CompiledVersion:
    spec: Agreement
    rules: dict[str, CompiledRule]

    @property
    def agreement_id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> int:
        return self.spec.version


def compile_version(spec: Agreement) -> CompiledVersion:
    art9 = spec.lawful_basis.article9 is not None
    rules = {
        rule.object: _compile_rule(rule, art9)
        for rule in spec.rules
        if art9 or rule.object not in SPECIAL_OBJECTS
    }
    return CompiledVersion(spec, rules)


def key_elements(object_name: str) -> frozenset[Path]:
    """References that identify the object but are elements, not root attributes
    (e.g. LearnerEntitlement/LearnerPersonalRefId): kept like keys."""
    spec = CATALOGUE[object_name]
    refs = (spec.subject_ref, *spec.school_refids)
    return frozenset(parse_path(r) for r in refs if r and not r.startswith("@"))


def _compile_rule(rule: Rule, art9: bool) -> CompiledRule:
    keys = key_elements(rule.object)
    exclude = {parse_path(p) for p in rule.exclude} - keys | never_paths(rule.object)
    if not art9:
        exclude |= special_paths(rule.object)
    include = (
        None if rule.include is None else frozenset({parse_path(p) for p in rule.include} | keys)
    )
    items = tuple(_item_rule(f) for f in rule.keep_items)
    flt = PathFilter(include, frozenset(exclude), items)
    return CompiledRule(rule.object, frozenset(rule.actions), flt, tuple(rule.where))


def _item_rule(f: ItemFilter) -> ItemRule:
    return ItemRule(parse_path(f.path), f.attribute, f.child, frozenset(f.values))


def condition_paths(versions: list[CompiledVersion], object_name: str) -> frozenset[str]:
    """Element paths whose values `where` conditions need, for dispatch to read."""
    return frozenset(
        c.path
        for v in versions
        if (rule := v.rules.get(object_name)) is not None
        for c in rule.where
    )
