"""One agreement version -> the filters its copies pass through.

Special-category paths are stripped unless the version has an Art 9 condition; paths that
must never leave are stripped always. Stripping is the filter's last word: no include,
item filter or condition can bring a stripped path back. Everything a copy may hold is
decided here.
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
    # A condition on stripped data (refused when an agreement is created): never matches,
    # since choosing objects by that data would disclose it.
    blind: bool = False

    def matches(self, values: dict[str, tuple[str, ...]]) -> bool:
        """Object-level conditions over the values dispatch read off the object."""
        if self.blind:
            return False
        return all(set(values.get(c.path, ())) & set(c.values) for c in self.where)


@dataclass(frozen=True)
class CompiledVersion:
    """`rules` is the agreement-level scope; `scopes` what each recipient gets (its partner
    rules, or the agreement's), so one partner never receives another partner's fields."""

    spec: Agreement
    rules: dict[str, CompiledRule]
    scopes: dict[str, dict[str, CompiledRule]]

    @property
    def agreement_id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> int:
        return self.spec.version

    @property
    def object_names(self) -> frozenset[str]:
        return frozenset(n for rules in (self.rules, *self.scopes.values()) for n in rules)

    def rule(self, recipient: str, object_name: str) -> CompiledRule | None:
        return self.scopes.get(recipient, {}).get(object_name)


def compile_version(spec: Agreement) -> CompiledVersion:
    art9 = spec.lawful_basis.article9 is not None

    def compiled(rules: list[Rule]) -> dict[str, CompiledRule]:
        return {
            rule.object: _compile_rule(rule, art9)
            for rule in rules
            if art9 or rule.object not in SPECIAL_OBJECTS
        }

    default = compiled(spec.rules)
    scopes = {
        r: compiled(partner.rules) if (partner := spec.partner(r)) else default
        for r in spec.recipients
    }
    return CompiledVersion(spec, default, scopes)


def key_elements(object_name: str) -> frozenset[Path]:
    """References that identify the object but are elements, not root attributes
    (e.g. LearnerEntitlement/LearnerPersonalRefId): kept like keys."""
    spec = CATALOGUE[object_name]
    refs = (spec.subject_ref, *spec.school_refids)
    return frozenset(parse_path(r) for r in refs if r and not r.startswith("@"))


def _compile_rule(rule: Rule, art9: bool) -> CompiledRule:
    keys = key_elements(rule.object)
    strip = never_paths(rule.object) | (frozenset() if art9 else special_paths(rule.object))
    exclude = frozenset({parse_path(p) for p in rule.exclude} - keys)
    include = (
        None if rule.include is None else frozenset({parse_path(p) for p in rule.include} | keys)
    )
    items = tuple(_item_rule(f, strip) for f in rule.keep_items)
    flt = PathFilter(include, exclude, items, strip)
    where = tuple(rule.where)
    blind = any(_under(parse_path(c.path), strip) for c in where)
    return CompiledRule(rule.object, frozenset(rule.actions), flt, where, blind)


def _under(path: Path, prefixes: frozenset[Path]) -> bool:
    return any(path[: len(p)] == p for p in prefixes)


def _item_rule(f: ItemFilter, strip: frozenset[Path]) -> ItemRule:
    path = parse_path(f.path)
    # An item chosen by stripped data would disclose that data by its presence: such a
    # filter (refused when an agreement is created) keeps no item at all.
    tested = (*path, f.child) if f.child else path
    values = frozenset() if _under(tested, strip) else frozenset(f.values)
    return ItemRule(path, f.attribute, f.child, values)


def condition_paths(versions: list[CompiledVersion], object_name: str) -> frozenset[str]:
    """Element paths whose values `where` conditions need, for dispatch to read."""
    return frozenset(
        c.path
        for v in versions
        for rules in v.scopes.values()
        if (rule := rules.get(object_name)) is not None
        for c in rule.where
    )
