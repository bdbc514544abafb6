"""The hub's own SIF UK XSDs, compiled once, and schema errors turned into SIF errors.

Features:
- `load_schemas()` compiles `message_schemas/SIF_Message.xsd` (and everything it includes)
  once per process, in two variants built from the same files:
  - `strict`: as written (Add events, responses, full objects: ADK-mandatory elements must
    be present);
  - `partial`: for Change/Delete events: every element declared inside the object files
    becomes `minOccurs="0"`; attributes (keys) and the envelope stay as written. Built in
    memory by rewriting the parsed XSD trees; nothing is written to disk.
- `Schemas.validate_message()` / `validate_object()` raise `SifError` (category 1) with:
  code 6 for a missing mandatory element/attribute, 4 for a bad value, 3 otherwise; `desc`
  short; `extended` naming the element path, the rule and the line. Offending values are
  never copied into the error text (they may be personal data).
- `Schemas.element_paths()` / `object_names()` describe the objects for agreement checks.

Validation takes a per-variant lock: lxml keeps one error log per compiled schema.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol, cast

from lxml import etree

from hub.core.envelope import SIF_UK_NS
from hub.core.errors import Xml, xml_error
from message_schemas import SCHEMA_DIR

__all__ = ["ROOT_FILE", "SCHEMA_DIR", "SIF_UK_NS", "Schemas", "build_schemas", "load_schemas"]
ROOT_FILE = "SIF_Message.xsd"

_XS = "http://www.w3.org/2001/XMLSchema"
_XS_SCHEMA = f"{{{_XS}}}schema"
_XS_ELEMENT = f"{{{_XS}}}element"
_XS_INCLUDE = f"{{{_XS}}}include"
_INCLUDE_NAME = re.compile(r"[A-Za-z0-9_]+\.xsd")
_MAX_DEPTH = 40
_MAX_REPORTED = 3


class _LogEntry(Protocol):
    """The fields of an lxml `_LogEntry` used here (lxml-stubs leaves the log untyped)."""

    message: str
    line: int
    path: str | None
    type_name: str


# --------------------------------------------------------------------------------------
# Loading: inline the includes, optionally relax the object files, compile
# --------------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(remove_comments=True, resolve_entities=False, no_network=True)


def _relax(schema: etree._Element) -> None:
    """Make every non-global element declaration optional (the partial variant)."""
    for decl in schema.iter(_XS_ELEMENT):
        parent = decl.getparent()
        if parent is not None and parent.tag != _XS_SCHEMA:
            decl.set("minOccurs", "0")


@dataclass
class _Assembly:
    schema_dir: Path
    relax: bool
    seen: set[str] = field(default_factory=set)
    object_names: set[str] = field(default_factory=set)

    def load(self, name: str) -> etree._Element:
        if not _INCLUDE_NAME.fullmatch(name):
            raise ValueError(f"unexpected schemaLocation {name!r}")
        root = etree.parse(str(self.schema_dir / name), _parser()).getroot()
        if root.tag != _XS_SCHEMA or root.get("targetNamespace") != SIF_UK_NS:
            raise ValueError(f"{name} is not a schema for {SIF_UK_NS}")
        if root.nsmap.get("xs") != _XS or root.nsmap.get("sif") != SIF_UK_NS:
            raise ValueError(f"{name} must bind the prefixes xs and sif like {ROOT_FILE}")
        return root

    def inline(self, schema: etree._Element) -> list[etree._Element]:
        """Remove `schema`'s includes and return the declarations they bring in."""
        found: list[etree._Element] = []
        for include in schema.findall(_XS_INCLUDE):
            schema.remove(include)
            name = include.get("schemaLocation", "")
            if name in self.seen:
                continue
            self.seen.add(name)
            sub = self.load(name)
            found.extend(self.inline(sub))
            if self.relax:
                _relax(sub)
            self.object_names.update(
                str(el.get("name")) for el in sub.findall(_XS_ELEMENT) if el.get("name")
            )
            found.extend(child for child in sub if isinstance(child.tag, str))
        return found


def _assemble(schema_dir: Path, *, relax: bool) -> tuple[etree._Element, frozenset[str]]:
    """One in-memory schema document holding SIF_Message.xsd and all it includes."""
    assembly = _Assembly(schema_dir, relax, seen={ROOT_FILE})
    root = assembly.load(ROOT_FILE)
    root.extend(assembly.inline(root))
    return root, frozenset(assembly.object_names)


# --------------------------------------------------------------------------------------
# A small index of the schema: content models, for paths and for naming missing elements
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Child:
    decl: etree._Element
    required: bool
    many: bool = False  # may repeat (maxOccurs above 1 on it or on a particle around it)


@dataclass(frozen=True)
class _Model:
    children: dict[str, _Child]
    wildcard: bool


class _Index:
    """Global declarations of the assembled schema and the content model of each type."""

    def __init__(self, schema: etree._Element) -> None:
        self._types = self._globals(schema, "complexType")
        self._groups = self._globals(schema, "group")
        self.elements = self._globals(schema, "element")
        self._models: dict[etree._Element, _Model] = {}

    @staticmethod
    def _globals(schema: etree._Element, kind: str) -> dict[str, etree._Element]:
        return {str(el.get("name")): el for el in schema.findall(f"{{{_XS}}}{kind}")}

    @staticmethod
    def _local(qname: str) -> str:
        return qname.rpartition(":")[2]

    def resolve(self, decl: etree._Element) -> etree._Element:
        ref = decl.get("ref")
        return self.elements[self._local(ref)] if ref else decl

    def complex_type(self, decl: etree._Element) -> etree._Element | None:
        decl = self.resolve(decl)
        type_name = decl.get("type")
        if type_name is not None:
            prefix = type_name.partition(":")[0] if ":" in type_name else None
            if decl.nsmap.get(prefix) != SIF_UK_NS:
                return None
            return self._types.get(self._local(type_name))
        return decl.find(f"{{{_XS}}}complexType")

    def model(self, ctype: etree._Element) -> _Model:
        model = self._models.get(ctype)
        if model is None:
            children: dict[str, _Child] = {}
            wildcard = self._collect(ctype, True, children)
            model = self._models[ctype] = _Model(children, wildcard)
        return model

    def _collect(
        self, node: etree._Element, required: bool, out: dict[str, _Child], many: bool = False
    ) -> bool:
        """Add the element particles below `node` to `out`; True if a wildcard allows more."""
        wildcard = False
        for part in node:
            if not isinstance(part.tag, str):
                continue
            kind = etree.QName(part).localname
            here = required and part.get("minOccurs", "1") != "0"
            repeats = many or part.get("maxOccurs", "1") not in ("0", "1")
            if kind == "element":
                name = part.get("name") or self._local(str(part.get("ref")))
                out[name] = _Child(part, here, repeats)
            elif kind == "any":
                wildcard = wildcard or part.get("processContents", "strict") != "skip"
            elif kind == "group":
                group = self._groups[self._local(str(part.get("ref")))]
                wildcard |= self._collect(group, here, out, repeats)
            elif kind == "choice":
                several = len([c for c in part if isinstance(c.tag, str)]) > 1
                wildcard |= self._collect(part, here and not several, out, repeats)
            elif kind in ("sequence", "all", "complexContent", "restriction"):
                wildcard |= self._collect(part, here, out, repeats)
            elif kind == "extension":
                base = self._types.get(self._local(str(part.get("base"))))
                if base is not None:
                    wildcard |= self._collect(base, here, out, repeats)
                wildcard |= self._collect(part, here, out, repeats)
        return wildcard

    def paths(self, decl: etree._Element, *, repeating: bool = False) -> frozenset[str]:
        """Element paths below `decl`; with `repeating`, only those that may repeat."""
        found: set[str] = set()
        self._walk(decl, (), found, (), repeating)
        return frozenset(found)

    def _walk(
        self,
        decl: etree._Element,
        prefix: tuple[str, ...],
        out: set[str],
        stack: tuple[etree._Element, ...],
        repeating: bool = False,
    ) -> None:
        ctype = self.complex_type(decl)
        if ctype is None or ctype in stack or len(prefix) > _MAX_DEPTH:
            return
        for name, child in self.model(ctype).children.items():
            path = (*prefix, name)
            if child.many or not repeating:
                out.add("/".join(path))
            self._walk(child.decl, path, out, (*stack, ctype), repeating)

    def declaration_of(self, chain: list[etree._Element]) -> etree._Element | None:
        """Follow instance elements (validation root first) down the declarations."""
        decl = self.elements.get(etree.QName(chain[0]).localname)
        for element in chain[1:]:
            ctype = None if decl is None else self.complex_type(decl)
            if ctype is None:
                return None
            model = self.model(ctype)
            name = etree.QName(element).localname
            child = model.children.get(name)
            decl = child.decl if child else (self.elements.get(name) if model.wildcard else None)
        return decl

    def required_children(self, decl: etree._Element | None) -> frozenset[str]:
        ctype = None if decl is None else self.complex_type(decl)
        if ctype is None:
            return frozenset()
        return frozenset(n for n, c in self.model(ctype).children.items() if c.required)


# --------------------------------------------------------------------------------------
# Turning libxml2 messages into SIF errors (without the offending values)
# --------------------------------------------------------------------------------------

_HEAD = re.compile(
    r"^Element '(?P<el>[^']*)'(?:, attribute '(?P<attr>[^']*)')?: (?P<rest>.*)$", re.DOTALL
)
_NS = re.compile(r"\{[^}]*\}")
_EXPECTED = re.compile(r"Expected is (?:one of )?\( (?P<names>[^)]*) \)")
_STEP = re.compile(r"^(?:(?P<prefix>[^:\[\]]+):)?(?P<name>[^\[\]]+)(?:\[(?P<index>[0-9]+)\])?$")
_VALUE_TYPES = frozenset(
    {
        "SCHEMAV_CVC_PATTERN_VALID",
        "SCHEMAV_CVC_ENUMERATION_VALID",
        "SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
        "SCHEMAV_CVC_DATATYPE_VALID_1_2_2",
        "SCHEMAV_CVC_DATATYPE_VALID_1_2_3",
        "SCHEMAV_CVC_LENGTH_VALID",
        "SCHEMAV_CVC_MINLENGTH_VALID",
        "SCHEMAV_CVC_MAXLENGTH_VALID",
        "SCHEMAV_CVC_MININCLUSIVE_VALID",
        "SCHEMAV_CVC_MAXINCLUSIVE_VALID",
        "SCHEMAV_CVC_MINEXCLUSIVE_VALID",
        "SCHEMAV_CVC_MAXEXCLUSIVE_VALID",
        "SCHEMAV_CVC_TOTALDIGITS_VALID",
        "SCHEMAV_CVC_FRACTIONDIGITS_VALID",
        "SCHEMAV_CVC_ATTRIBUTE_3",
        "SCHEMAV_CVC_VALID",
        "SCHEMAV_CVC_ELT_5_2_2_2_2",
    }
)
_DESC = {
    Xml.MISSING_MANDATORY: "Missing mandatory element or attribute",
    Xml.INVALID_VALUE: "Invalid value for an element or attribute",
    Xml.INVALID: "Message does not conform to the SIF UK schema",
}


@dataclass(frozen=True)
class _Problem:
    code: Xml
    path: str
    reason: str
    line: int

    def text(self) -> str:
        return f"{self.path}: {self.reason}" + (f" (line {self.line})" if self.line > 0 else "")


def _names(text: str, limit: int = 8) -> list[str]:
    match = _EXPECTED.search(text)
    if match is None:
        return []
    names = [_NS.sub("", n).strip() for n in match["names"].split(",")]
    return names[:limit] + (["..."] if len(names) > limit else [])


def _value_reason(type_name: str, rest: str) -> str:
    """Say which rule a value broke, never what the value was."""
    quoted = re.findall(r"'([^']*)'", rest)
    last = quoted[-1] if quoted else ""
    if type_name == "SCHEMAV_CVC_PATTERN_VALID":
        return f"value does not match the pattern {last}"
    if type_name == "SCHEMAV_CVC_ENUMERATION_VALID":
        allowed = re.search(r"\{(.*)\}", rest, re.DOTALL)
        listed = allowed[1] if allowed else ""
        return "value is not one of the allowed values" + (
            f" {{{listed}}}" if listed and len(listed) < 300 else ""
        )
    if type_name.startswith("SCHEMAV_CVC_DATATYPE_VALID") or "is not a valid value" in rest:
        kind = re.search(r"of the (?:local )?(?:atomic|union|list) type(?: '([^']*)')?", rest)
        return f"value is not a valid {kind[1]}" if kind and kind[1] else "value is not valid"
    if type_name == "SCHEMAV_CVC_MAXLENGTH_VALID":
        return f"value is longer than the maximum length of {last}"
    if type_name == "SCHEMAV_CVC_MINLENGTH_VALID":
        return f"value is shorter than the minimum length of {last}"
    if "INCLUSIVE" in type_name or "EXCLUSIVE" in type_name:
        return "value is outside the allowed range"
    if "DIGITS" in type_name:
        return "value has more digits than allowed"
    return "value is not valid"


def _scrub(text: str) -> str:
    """Last resort for messages not recognised: drop everything quoted."""
    return re.sub(r"'[^']*'", "'...'", _NS.sub("", text)).strip()


def _children(element: etree._Element) -> Iterator[etree._Element]:
    return (c for c in element if isinstance(c.tag, str))


def _find(root: etree._Element, lib_path: str | None) -> etree._Element | None:
    """The element a libxml2 node path (`/*/*[2]/sif:Name`) names, below `root`."""
    if not lib_path or not lib_path.startswith("/"):
        return None
    node = root
    for step in lib_path.strip("/").split("/")[1:]:
        match = _STEP.match(step)
        if match is None:
            return None
        name, prefix, index = match["name"], match["prefix"], int(match["index"] or 1)
        candidates = [
            c
            for c in _children(node)
            if name == "*" or (etree.QName(c).localname == name and c.prefix == prefix)
        ]
        if len(candidates) < index:
            return None
        node = candidates[index - 1]
    return node


def _chain(root: etree._Element, element: etree._Element) -> list[etree._Element]:
    chain = [element]
    while chain[-1] is not root:
        parent = chain[-1].getparent()
        if parent is None:
            break
        chain.append(parent)
    return chain[::-1]


def _line(element: etree._Element) -> int:
    line: object = element.sourceline  # lxml-stubs leaves it untyped
    return line if isinstance(line, int) else 0


def _step(element: etree._Element) -> str:
    """`Name`, or `Name[n]` when siblings share the name (as in a multi-object response)."""
    name = etree.QName(element).localname
    parent = element.getparent()
    if parent is None:
        return name
    same = [c for c in _children(parent) if etree.QName(c).localname == name]
    if len(same) < 2:
        return name
    return f"{name}[{next(i for i, c in enumerate(same, start=1) if c is element)}]"


def _path(chain: list[etree._Element]) -> str:
    return "/" + "/".join([etree.QName(chain[0]).localname, *map(_step, chain[1:])])


_STRUCTURE_REASONS = (
    ("No matching global element declaration", "not a SIF UK object known to the hub"),
    (
        "No matching global declaration available for the validation root",
        "not a SIF UK message or object",
    ),
    ("' is not allowed", "attribute not allowed"),
    ("nilled", "element marked xsi:nil must be empty"),
    ("Character content", "text content not allowed here"),
    ("Element content is not allowed", "child elements not allowed here"),
)


@dataclass(frozen=True)
class _Where:
    """Where libxml2 saw a problem: the instance element chain and the attribute, if any."""

    chain: list[etree._Element]
    path: str
    attr: str | None
    line: int

    def target(self) -> str:
        return f"{self.path}/@{self.attr}" if self.attr else self.path


@dataclass(frozen=True)
class _Variant:
    schema: etree.XMLSchema
    index: _Index
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def problems(self, root: etree._Element) -> list[_Problem]:
        with self.lock:
            try:
                if self.schema.validate(root):
                    return []
            except etree.XMLSchemaValidateError:  # libxml2 gave up; still the sender's XML
                return [_Problem(Xml.INVALID, "/", "the document could not be validated", 0)]
            entries = list(cast(Iterable[_LogEntry], self.schema.error_log))
        return [self._problem(root, entry) for entry in entries]

    def _problem(self, root: etree._Element, entry: _LogEntry) -> _Problem:
        message = " ".join(entry.message.split())
        head = _HEAD.match(message)
        element = _find(root, entry.path)
        chain = _chain(root, element) if element is not None else []
        where = _Where(
            chain=chain,
            path=_path(chain) if chain else f"/.../{_NS.sub('', head['el']) if head else '?'}",
            attr=head["attr"] if head else None,
            line=entry.line or (_line(element) if element is not None else 0),
        )
        rest = head["rest"] if head else message
        if entry.type_name in _VALUE_TYPES or rest.startswith("[facet"):
            return _Problem(
                Xml.INVALID_VALUE, where.target(), _value_reason(entry.type_name, rest), where.line
            )
        return self._structure_problem(where, rest)

    def _structure_problem(self, where: _Where, rest: str) -> _Problem:
        missing_attr = re.match(r"The attribute '([^']*)' is required but missing", rest)
        if missing_attr:
            return _Problem(
                Xml.MISSING_MANDATORY,
                f"{where.path}/@{missing_attr[1]}",
                "missing mandatory attribute",
                where.line,
            )
        if rest.startswith("Missing child element(s)"):
            return self._missing(where, rest)
        if rest.startswith("This element is not expected"):
            return self._unexpected(where, rest)
        for marker, reason in _STRUCTURE_REASONS:
            if marker in rest:
                return _Problem(Xml.INVALID, where.target(), reason, where.line)
        return _Problem(Xml.INVALID, where.target(), _scrub(rest), where.line)

    def _unexpected(self, where: _Where, rest: str) -> _Problem:
        """An element out of place: a mandatory one missing before it, or wrong order."""
        if len(where.chain) > 1:
            parent_chain = where.chain[:-1]
            missing = self._missing_names(parent_chain, rest)
            if missing:
                found = etree.QName(where.chain[-1]).localname
                return _Problem(
                    Xml.MISSING_MANDATORY,
                    f"{_path(parent_chain)}/{missing[0]}",
                    f"missing mandatory element (found {found} in its place)",
                    where.line,
                )
        expected = _names(rest)
        reason = "element not expected here (wrong order, repeated or unknown)"
        if expected:
            reason += f"; expected one of: {', '.join(expected)}"
        return _Problem(Xml.INVALID, where.path, reason, where.line)

    def _missing(self, where: _Where, rest: str) -> _Problem:
        missing = self._missing_names(where.chain, rest) if where.chain else []
        if missing:
            return _Problem(
                Xml.MISSING_MANDATORY,
                f"{where.path}/{missing[0]}",
                "missing mandatory element",
                where.line,
            )
        return _Problem(
            Xml.MISSING_MANDATORY,
            where.path,
            f"missing mandatory child element; expected one of: {', '.join(_names(rest))}",
            where.line,
        )

    def _missing_names(self, chain: list[etree._Element], rest: str) -> list[str]:
        """Expected elements that the parent (last of `chain`) must have and lacks."""
        required = self.index.required_children(self.index.declaration_of(chain))
        present = {etree.QName(c).localname for c in _children(chain[-1])}
        return [n for n in _names(rest, limit=1000) if n in required and n not in present]


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


class Schemas:
    """The compiled strict and partial schema variants and what they say about objects."""

    def __init__(self, strict: _Variant, partial: _Variant, objects: frozenset[str]) -> None:
        self._strict = strict
        self._partial = partial
        self._objects = objects
        self._paths = {name: strict.index.paths(strict.index.elements[name]) for name in objects}
        self._repeating = {
            name: strict.index.paths(strict.index.elements[name], repeating=True)
            for name in objects
        }

    def validate_message(self, doc: etree._Element, *, partial: bool) -> None:
        """Validate a whole SIF_Message; `partial` for Change/Delete events."""
        self._raise_for(self._variant(partial).problems(doc))
        self._check_payloads(doc)

    def validate_object(self, element: etree._Element, *, partial: bool = False) -> None:
        """Validate one bare object element in the SIF UK namespace."""
        name = etree.QName(element)
        if name.namespace != SIF_UK_NS or name.localname not in self._objects:
            line = _line(element)
            raise xml_error(
                Xml.INVALID,
                _DESC[Xml.INVALID],
                _Problem(
                    Xml.INVALID, f"/{name.localname}", "not a SIF UK object known to the hub", line
                ).text(),
            )
        self._raise_for(self._variant(partial).problems(element))

    def element_paths(self, object_name: str) -> frozenset[str]:
        """Every element path below the object root the schema allows ("Name/FamilyName")."""
        try:
            return self._paths[object_name]
        except KeyError:
            raise KeyError(f"unknown object {object_name!r}") from None

    def repeating_paths(self, object_name: str) -> frozenset[str]:
        """The element paths below the object root that may repeat (maxOccurs above 1):
        a JSON mapping gives them as arrays even when one item is present."""
        return self._repeating.get(object_name, frozenset())

    def object_names(self) -> frozenset[str]:
        return self._objects

    def _variant(self, partial: bool) -> _Variant:
        return self._partial if partial else self._strict

    def _check_payloads(self, root: etree._Element) -> None:
        """The wildcards admit any global element; only objects may travel as payload."""
        ns = {"s": SIF_UK_NS}
        payloads = root.xpath(
            "s:SIF_Event/s:SIF_ObjectData/s:SIF_EventObject/* | s:SIF_Response/s:SIF_ObjectData/*",
            namespaces=ns,
        )
        for element in cast(list[etree._Element], payloads):
            if etree.QName(element).localname not in self._objects:
                problem = _Problem(
                    Xml.INVALID,
                    _path(_chain(root, element)),
                    "not a SIF UK object known to the hub",
                    _line(element),
                )
                raise xml_error(Xml.INVALID, _DESC[Xml.INVALID], problem.text())

    @staticmethod
    def _raise_for(problems: list[_Problem]) -> None:
        if not problems:
            return
        first = problems[0]
        texts = [p.text() for p in problems[:_MAX_REPORTED]]
        if len(problems) > _MAX_REPORTED:
            texts.append(f"and {len(problems) - _MAX_REPORTED} more")
        raise xml_error(first.code, _DESC[first.code], "; ".join(texts))


def _variant(schema_dir: Path, *, relax: bool) -> tuple[_Variant, frozenset[str]]:
    root, objects = _assemble(schema_dir, relax=relax)
    return _Variant(etree.XMLSchema(root), _Index(root)), objects


def build_schemas(schema_dir: Path = SCHEMA_DIR) -> Schemas:
    """Compile both variants from `schema_dir` (uncached; use `load_schemas()`)."""
    strict, objects = _variant(schema_dir, relax=False)
    partial, _ = _variant(schema_dir, relax=True)
    return Schemas(strict, partial, objects)


@cache
def load_schemas() -> Schemas:
    """The hub's compiled schemas; compiled on first call, shared afterwards."""
    return build_schemas()
