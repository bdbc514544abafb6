"""Facts read off an object with the catalogue's paths: whose data, which school, which UPN."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from hub.core.objects import ObjectSpec
from hub.sif.names import XPATH_NS


@dataclass(frozen=True)
class ObjectFacts:
    subject_refid: str | None
    school_refids: tuple[str, ...]
    school_laestabs: tuple[str, ...]
    upn: str | None


def _xpath(path: str) -> str:
    return "/".join(f"s:{part}" for part in path.split("/"))


def _values(element: etree._Element, path: str) -> list[str]:
    if path.startswith("@"):
        value = element.get(path[1:])
        return [value] if value else []
    return [(e.text or "").strip() for e in element.iterfind(_xpath(path), XPATH_NS) if e.text]


def _first(element: etree._Element, path: str | None) -> str | None:
    if path is None:
        return None
    values = _values(element, path)
    return values[0] if values else None


def object_facts(element: etree._Element, spec: ObjectSpec) -> ObjectFacts:
    refids = tuple(v for path in spec.school_refids for v in _values(element, path))
    laestabs = tuple(
        la + est
        for ref in spec.school_dfe
        for la, est in zip(
            _values(element, ref.la), _values(element, ref.establishment), strict=False
        )
    )
    return ObjectFacts(
        _first(element, spec.subject_ref), refids, laestabs, _first(element, spec.upn)
    )


def values_at(element: etree._Element, paths: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """The text values at each path, for agreement conditions such as AttendanceDomain."""
    return {path: tuple(_values(element, path)) for path in paths}
