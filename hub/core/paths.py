"""Element-path filters compiled from agreement rules: what part of an object may leave.

A path is a tuple of element local names below the object root. The verdict for an element
tells the applier (hub.sif.filter) to keep its subtree, drop it, or keep it as a container
and look at its children. Key attributes of the root are always kept by the applier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

Path = tuple[str, ...]
MEMO_LIMIT = 4096  # verdicts remembered per filter


class Verdict(Enum):
    KEEP = "keep"
    DROP = "drop"
    DESCEND = "descend"


def parse_path(text: str) -> Path:
    return tuple(part for part in text.strip("/").split("/") if part)


def _is_prefix(prefix: Path, path: Path) -> bool:
    return path[: len(prefix)] == prefix


@dataclass(frozen=True)
class ItemRule:
    """Repeated items at `path` survive only when their attribute (or child) is in `values`."""

    path: Path
    attribute: str | None
    child: str | None
    values: frozenset[str]

    def keeps(self, attribute_value: str | None, child_value: str | None) -> bool:
        value = attribute_value if self.attribute is not None else child_value
        return value is not None and value in self.values


@dataclass(frozen=True)
class PathFilter:
    """What a rule lets through. Precedence, strongest first: `strip` (special category
    data without an Art 9 condition, and what never leaves), then `exclude`, then
    `include`. Item rules only ever remove items: the child an item rule tests decides
    whether its item survives, but is itself delivered only when the include/exclude lists
    let it through like any other element."""

    include: frozenset[Path] | None = None
    exclude: frozenset[Path] = frozenset()
    items: tuple[ItemRule, ...] = ()
    strip: frozenset[Path] = frozenset()
    _removed: frozenset[Path] = field(init=False, repr=False, compare=False)
    # Verdicts already worked out: a compiled filter is applied to every copy of its
    # agreement version, over the few paths its objects' schema allows.
    _verdicts: dict[Path, Verdict] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_removed", self.strip | self.exclude)
        object.__setattr__(self, "_verdicts", {})

    @classmethod
    def of(cls, include: list[str] | None, exclude: list[str] | tuple[str, ...] = ()) -> PathFilter:
        inc = None if include is None else frozenset(parse_path(p) for p in include)
        return cls(inc, frozenset(parse_path(p) for p in exclude))

    def verdict(self, path: Path) -> Verdict:
        known = self._verdicts.get(path)
        if known is None:
            known = self._verdict(path)
            if len(self._verdicts) < MEMO_LIMIT:  # bounded, whatever the objects hold
                self._verdicts[path] = known
        return known

    def _verdict(self, path: Path) -> Verdict:
        removed = self._removed
        if any(_is_prefix(e, path) for e in removed):
            return Verdict.DROP
        # Something below must still be looked at: a removal, or a value filter on items.
        cut_below = any(_is_prefix(path, e) for e in removed) or any(
            len(r.path) > len(path) and _is_prefix(path, r.path) for r in self.items
        )
        if self.include is None or any(_is_prefix(i, path) for i in self.include):
            return Verdict.DESCEND if cut_below else Verdict.KEEP
        if any(_is_prefix(path, i) for i in self.include):
            return Verdict.DESCEND
        return Verdict.DROP

    def allows(self, path: Path) -> bool:
        """True when an element at `path` may appear (whole or as a container) in a copy."""
        return self.verdict(path) is not Verdict.DROP

    def item_rule(self, path: Path) -> ItemRule | None:
        if not self.items:
            return None
        return next((rule for rule in self.items if rule.path == path), None)
