"""Element-path filters compiled from agreement rules: what part of an object may leave.

A path is a tuple of element local names below the object root. The verdict for an element
tells the applier (hub.sif.filter) to keep its subtree, drop it, or keep it as a container
and look at its children. Key attributes of the root are always kept by the applier.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

Path = tuple[str, ...]


class Verdict(Enum):
    KEEP = "keep"
    DROP = "drop"
    DESCEND = "descend"


def parse_path(text: str) -> Path:
    return tuple(part for part in text.strip("/").split("/") if part)


def _is_prefix(prefix: Path, path: Path) -> bool:
    return path[: len(prefix)] == prefix


@dataclass(frozen=True)
class PathFilter:
    include: frozenset[Path] | None = None
    exclude: frozenset[Path] = frozenset()

    @classmethod
    def of(cls, include: list[str] | None, exclude: list[str] | tuple[str, ...] = ()) -> PathFilter:
        inc = None if include is None else frozenset(parse_path(p) for p in include)
        return cls(inc, frozenset(parse_path(p) for p in exclude))

    def verdict(self, path: Path) -> Verdict:
        if any(_is_prefix(e, path) for e in self.exclude):
            return Verdict.DROP
        excluded_below = any(_is_prefix(path, e) for e in self.exclude)
        if self.include is None or any(_is_prefix(i, path) for i in self.include):
            return Verdict.DESCEND if excluded_below else Verdict.KEEP
        if any(_is_prefix(path, i) for i in self.include):
            return Verdict.DESCEND
        return Verdict.DROP

    def allows(self, path: Path) -> bool:
        """True when an element at `path` may appear (whole or as a container) in a copy."""
        return self.verdict(path) is not Verdict.DROP

    def narrowed(self, extra_exclude: frozenset[Path]) -> PathFilter:
        return PathFilter(self.include, self.exclude | extra_exclude)
