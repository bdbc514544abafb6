"""Applies a compiled PathFilter to an object: the one place a copy's content is cut down.

Every path that releases data (queue dispatch, preview, replay, export) calls `apply_filter`.
Root attributes (the object's keys) always survive; so do attributes of kept elements.
"""

from __future__ import annotations

import copy

from lxml import etree

from hub.core.paths import Path, PathFilter, Verdict
from hub.sif.names import local_name


def apply_filter(element: etree._Element, flt: PathFilter) -> etree._Element:
    """Return a filtered deep copy; the input is left untouched."""
    result = copy.deepcopy(element)
    _prune(result, (), flt)
    return result


def _prune(parent: etree._Element, path: Path, flt: PathFilter) -> None:
    for child in list(parent.iterchildren(tag=etree.Element)):
        child_path = (*path, local_name(child.tag))
        verdict = flt.verdict(child_path)
        if verdict is Verdict.DROP or not _item_kept(child, child_path, flt):
            # emptied first: lxml re-homes every node of a removed subtree one by one, in
            # time quadratic in its size (seconds for a 10 MB object); freeing is linear
            child.clear()
            parent.remove(child)
        elif verdict is Verdict.DESCEND:
            _prune(child, child_path, flt)
            if len(child) == 0 and not (child.text or "").strip():
                parent.remove(child)  # a container whose allowed content is absent


def _item_kept(element: etree._Element, path: Path, flt: PathFilter) -> bool:
    rule = flt.item_rule(path)
    if rule is None:
        return True
    attribute = element.get(rule.attribute) if rule.attribute else None
    child = None
    if rule.child:
        found = next(
            (c for c in element.iterchildren(tag=etree.Element) if local_name(c.tag) == rule.child),
            None,
        )
        child = (found.text or "").strip() if found is not None else None
    return rule.keeps(attribute, child)


def released_paths(element: etree._Element) -> list[str]:
    """Leaf element paths present in a (filtered) object, for the disclosure log."""
    out: set[str] = set()

    def walk(node: etree._Element, path: Path) -> None:
        children = list(node.iterchildren(tag=etree.Element))
        if not children and path:
            out.add("/".join(path))
        for child in children:
            walk(child, (*path, local_name(child.tag)))

    walk(element, ())
    return sorted(out)
