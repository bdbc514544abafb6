"""Integris-style CSV upload: rows of a school's CSV file become the SIF UK objects an
agent's SIF_Event would carry (format only; hub.pipeline.csv_ingest stores and routes them).

Features:
- a versioned mapping file (YAML; `deploy/examples/csv-mapping-v1.yaml`) names, per kind
  (`attendance`, `exclusions`, `pupils`), the SIF UK object, the columns (mandatory or
  optional, each with its check), where each value goes in the object, and fixed and
  derived elements in the object's schema order;
- header names matched ignoring case, spaces and underscores; unknown columns ignored; a
  missing mandatory column refuses the whole file (`CsvFileError`);
- every row checked: UPN format and check letter (python-stdnum), dates (ISO or
  DD/MM/YYYY), sessions, DfE code lists, the school's DfE number (one the hub knows); a bad
  row is reported as (line, column, problem), never with its value, and the others go on;
- RefIds the CSV does not carry are derived (UUIDv5 over the school, the UPN and the kind's
  key columns), so a mark sent again is the same object and a school's pupils and marks
  name the same learner; the school is in every id, so no school names another's learner;
- streamed: `read_rows` yields one row at a time from a text stream.

URL form: `POST /ingest/{zone}/csv/{kind}` (text/csv, UTF-8, HTTP Basic as the agent).
Config form: `HUB_CSV_MAPPING_FILE=/etc/sif-hub/csv-mapping-v1.yaml` (default: the example).
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal, Self, TextIO

import yaml
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.gb import upn as upn_check

from hub.core.envelope import SIF_UK_NS
from hub.core.records import CsvRowError

DEFAULT_MAPPING = Path(__file__).resolve().parent.parent / "deploy/examples/csv-mapping-v1.yaml"
# Derived RefIds: stable across hubs and uploads (the namespace is this hub's product id).
REFID_NAMESPACE = uuid.UUID("6f0c9f3e-5e2a-4c1b-9a57-0b6a2d7c8e11")
MAX_TEXT = 255
_NSMAP = {None: SIF_UK_NS}

Check = Literal[
    "upn", "laestab", "date", "session", "yes_no", "yes_no_unknown", "count", "text", "token"
]
Derived = Literal["row_refid", "learner_refid", "enrolment_refid", "school_refid", "la_code"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    name: str
    required: bool = False
    check: Check | None = None
    codes: str | None = Field(default=None, description="a code list of the mapping")
    path: str | None = Field(default=None, description="where the value goes in the object")
    default: str | None = None
    match: bool = Field(default=False, description="matching field: checked, not copied")

    @model_validator(mode="after")
    def _one_check(self) -> Self:
        if (self.check is None) == (self.codes is None):
            raise ValueError(f"column {self.name!r} needs exactly one of check or codes")
        return self


class KindSpec(_Model):
    object: str
    description: str = ""
    key: list[str] = Field(default_factory=list)
    attributes: dict[str, Derived | Literal["establishment"]]
    columns: list[ColumnSpec]
    values: dict[str, str] = Field(default_factory=dict)
    derived: dict[str, Derived | Literal["establishment"]] = Field(default_factory=dict)
    order: list[str]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = {c.name for c in self.columns}
        placed = [c.path for c in self.columns if c.path] + [*self.values, *self.derived]
        problems = [f"key column {k!r} is not a column" for k in self.key if k not in names]
        problems += [f"{p!r} is not in order" for p in placed if p not in self.order]
        problems += [f"{p!r} has no value" for p in self.order if p not in placed]
        if not {"UPN", "DfE No"} <= names:
            problems.append("the columns UPN and DfE No are mandatory in every kind")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CsvMapping(_Model):
    version: int = Field(ge=1)
    kinds: dict[str, KindSpec]
    codes: dict[str, list[str]]

    @model_validator(mode="after")
    def _codes_exist(self) -> Self:
        missing = {
            c.codes
            for k in self.kinds.values()
            for c in k.columns
            if c.codes and c.codes not in self.codes
        }
        if missing:
            raise ValueError(f"unknown code lists: {', '.join(sorted(missing))}")
        return self


class MappingError(Exception):
    """The mapping file cannot be used (the hub refuses to start with it)."""


def load_mapping(path: Path = DEFAULT_MAPPING) -> CsvMapping:
    try:
        return CsvMapping.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise MappingError(f"CSV mapping {path}: {exc}") from exc


class CsvFileError(Exception):
    """The file as a whole cannot be read: `type` names the problem for problem+json."""

    def __init__(self, type_: str, detail: str) -> None:
        super().__init__(detail)
        self.type, self.detail = type_, detail


@dataclass(frozen=True, kw_only=True)
class MappedRow:
    """One data row: its object (None when the row is refused), what it names beside the
    object (school, UPN), its problems, and its values as read (kept as the payload)."""

    line: int
    values: tuple[str, ...]
    element: etree._Element | None
    laestab: str | None
    upn: str | None
    errors: tuple[CsvRowError, ...]


class _Bad(ValueError):
    """A value failed its check; the message describes the problem, never the value."""


def normalize_header(name: str) -> str:
    return re.sub(r"[\s_]+", "", name).casefold()


class RowMapper:
    """Maps the rows of one kind, for a hub that knows `schools` (DfE number -> SchoolInfo
    RefId, or None when the configuration gives none)."""

    def __init__(self, mapping: CsvMapping, kind: str, schools: Mapping[str, str | None]) -> None:
        self.spec = mapping.kinds[kind]
        self.kind = kind
        self._codes = {name: frozenset(values) for name, values in mapping.codes.items()}
        self._schools = schools
        self._index: dict[str, int] = {}

    def header(self, names: Sequence[str]) -> None:
        """Where each mapped column is; a missing mandatory column refuses the file."""
        found = {normalize_header(n): i for i, n in enumerate(names)}
        self._index = {
            c.name: found[normalize_header(c.name)]
            for c in self.spec.columns
            if normalize_header(c.name) in found
        }
        missing = [c.name for c in self.spec.columns if c.required and c.name not in self._index]
        if missing:
            raise CsvFileError(
                "missing-columns", f"mandatory column(s) missing: {', '.join(missing)}"
            )

    def row(self, line: int, values: Sequence[str]) -> MappedRow:
        read, errors = self._checked(line, values)
        laestab, upn = read.get("DfE No"), read.get("UPN")
        element = None
        if not errors and laestab and upn:
            element, problem = self._build(read, laestab, upn)
            if problem:
                errors.append(CsvRowError(line=line, column="DfE No", problem=problem))
        return MappedRow(
            line=line,
            values=tuple(values),
            element=element,
            laestab=laestab,
            upn=upn,
            errors=tuple(errors),
        )

    def _checked(
        self, line: int, values: Sequence[str]
    ) -> tuple[dict[str, str], list[CsvRowError]]:
        read: dict[str, str] = {}
        errors: list[CsvRowError] = []
        for column in self.spec.columns:
            index = self._index.get(column.name)
            raw = values[index].strip() if index is not None and index < len(values) else ""
            if not raw:
                if column.required:
                    errors.append(CsvRowError(line=line, column=column.name, problem="missing"))
                elif column.default is not None:
                    read[column.name] = column.default
                continue
            try:
                read[column.name] = self._check(column, raw)
            except _Bad as bad:
                errors.append(CsvRowError(line=line, column=column.name, problem=str(bad)))
        return read, errors

    def _check(self, column: ColumnSpec, raw: str) -> str:
        if column.codes is not None:
            code = raw.upper()
            if code not in self._codes[column.codes]:
                raise _Bad(f"not a code of the list {column.codes}")
            return code
        assert column.check is not None
        value = CHECKS[column.check](raw)
        if column.check == "laestab" and value not in self._schools:
            raise _Bad("not a school this hub knows")
        return value

    def _build(
        self, read: dict[str, str], laestab: str, upn: str
    ) -> tuple[etree._Element | None, str | None]:
        derived = self._derived(read, laestab, upn)
        if derived["school_refid"] is None and "school_refid" in self._wanted():
            return None, "the hub has no SchoolInfo RefId for this school"
        by_path = {c.path: read.get(c.name) for c in self.spec.columns if c.path and not c.match}
        root = etree.Element(f"{{{SIF_UK_NS}}}{self.spec.object}", nsmap=_NSMAP)  # type: ignore[arg-type]
        for path in self.spec.order:
            if path in by_path:
                value = by_path[path]
            elif path in self.spec.values:
                value = self.spec.values[path]
            else:
                value = derived[self.spec.derived[path]]
            if value:
                _place(root, path, value, create=True)
        for path, source in self.spec.attributes.items():
            value = derived[source]
            assert value is not None
            _place(root, path if "@" in path else f"@{path}", value, create=False)
        return root, None

    def _wanted(self) -> set[str]:
        return {*self.spec.attributes.values(), *self.spec.derived.values()}

    def _derived(self, read: dict[str, str], laestab: str, upn: str) -> dict[str, str | None]:
        key = [read.get(k, "") for k in self.spec.key]
        return {
            "row_refid": derive_refid(self.kind, laestab, upn, *key),
            "learner_refid": learner_refid(laestab, upn),
            "enrolment_refid": derive_refid("enrolment", laestab, upn),
            "school_refid": self._schools.get(laestab),
            "la_code": laestab[:3],
            "establishment": laestab[3:],
        }


def derive_refid(*parts: str) -> str:
    return uuid.uuid5(REFID_NAMESPACE, "|".join(parts)).hex.upper()


def learner_refid(laestab: str, upn: str) -> str:
    """The LearnerPersonal RefId a CSV upload gives the pupil with `upn` at `laestab`."""
    return derive_refid("learner", laestab, upn)


def _place(root: etree._Element, path: str, value: str, *, create: bool) -> None:
    """Put `value` at `path` (parts in the SIF namespace; `@x` last for an attribute). The
    final element is always new (document order); a parent is the last child of that name
    when building (`create`), else the first one found (attributes set afterwards)."""
    parts = path.split("/")
    leaf = parts.pop() if parts[-1].startswith("@") else None
    node = root
    for i, part in enumerate(parts):
        tag = f"{{{SIF_UK_NS}}}{part}"
        if leaf is None and i == len(parts) - 1:
            node = etree.SubElement(node, tag)
            continue
        found = (node[-1] if len(node) else None) if create else node.find(tag)
        node = found if found is not None and found.tag == tag else etree.SubElement(node, tag)
    if leaf:
        node.set(leaf[1:], value)
    else:
        node.text = value


# --- checks: each returns the value in SIF form, or raises _Bad naming the problem -------


def check_upn(raw: str) -> str:
    try:
        return str(upn_check.validate(raw.upper()))
    except StdnumError:
        raise _Bad("not a valid UPN (format or check letter)") from None


def check_laestab(raw: str) -> str:
    digits = re.sub(r"[\s/-]", "", raw)
    if not re.fullmatch(r"[0-9]{7}", digits):
        raise _Bad("not a DfE number (LA code and establishment number, 7 digits)")
    return digits


def check_date(raw: str) -> str:
    for form in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            parsed = datetime.strptime(raw, form).date()
        except ValueError:
            continue
        return _in_range(parsed).isoformat()
    raise _Bad("not a date (YYYY-MM-DD or DD/MM/YYYY)")


def _in_range(day: date) -> date:
    if not 1900 <= day.year <= 2100:
        raise _Bad("date out of range")
    return day


def check_session(raw: str) -> str:
    session = raw.upper()
    if session not in ("AM", "PM"):
        raise _Bad("not a session (AM or PM)")
    return session


_YES_NO = {"yes": "Yes", "y": "Yes", "true": "Yes", "no": "No", "n": "No", "false": "No"}


def check_yes_no(raw: str) -> str:
    value = _YES_NO.get(raw.casefold())
    if value is None:
        raise _Bad("not Yes or No")
    return value


def check_yes_no_unknown(raw: str) -> str:
    if raw.casefold() in ("unknown", "u"):
        return "Unknown"
    value = _YES_NO.get(raw.casefold())
    if value is None:
        raise _Bad("not Yes, No or Unknown")
    return value


def check_count(raw: str) -> str:
    if not raw.isdigit() or len(raw) > 6:
        raise _Bad("not a whole number")
    return str(int(raw))


def check_text(raw: str) -> str:
    if len(raw) > MAX_TEXT:
        raise _Bad(f"longer than {MAX_TEXT} characters")
    return raw


def check_token(raw: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z .\-]{0,31}", raw):
        raise _Bad("not a code (1 to 32 letters or digits)")
    return raw


CHECKS: dict[str, Callable[[str], str]] = {
    "upn": check_upn,
    "laestab": check_laestab,
    "date": check_date,
    "session": check_session,
    "yes_no": check_yes_no,
    "yes_no_unknown": check_yes_no_unknown,
    "count": check_count,
    "text": check_text,
    "token": check_token,
}


def read_rows(text: TextIO, mapper: RowMapper) -> Iterator[MappedRow]:
    """The file's data rows, one at a time (the header first sets the columns). Blank
    lines are skipped; a line number is the file's line where the row ends."""
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise CsvFileError("empty", "the file has no header row")
        mapper.header(header)
        for values in reader:
            if any(v.strip() for v in values):
                yield mapper.row(reader.line_num, values)
    except csv.Error as exc:
        raise CsvFileError(
            "malformed", f"line {reader.line_num}: not well-formed CSV ({_csv_reason(exc)})"
        ) from None


def _csv_reason(exc: csv.Error) -> str:
    """csv.Error texts can quote a character of the file; keep only the kind of problem."""
    text = str(exc)
    return "unexpected end of data" if "EOF" in text else "bad quoting"
