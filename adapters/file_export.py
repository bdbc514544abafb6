"""Scheduled file exports: released copies as rows of a CSV file written to a directory,
with a JSON manifest beside it, for line-of-business imports (Capita ONE B2B, Synergy).

Features: cells are read only from the released copy (the SIF_Event the queue route
carries), at paths relative to the object as agreement rules name them; an element path
gives the element's text, `.../@Attr` an attribute; the first of repeated elements wins; a
path the agreement filtered out is an empty cell, never looked up elsewhere. CSV is RFC
4180 (UTF-8, CRLF, minimal quoting) with a header row; a cell starting with = + - @, tab or
carriage return is prefixed with ' so that spreadsheets never run it as a formula (OWASP
CSV injection). Writes are atomic: a temporary file in the same directory, fsync, then a
hard link to the final name (which refuses to replace an existing file) and the directory
fsynced; the manifest (`<name>.manifest.json`: file name, rows per object, SHA-256 of the
CSV, agreement ids@versions, created at) is written the same way after the CSV, so an
importer that waits for the manifest never reads a partial file.

Config form (in a subscriber):
    delivery: {type: file, directory: /var/lib/sifhub/exports/capita-one,
               export: {LearnerPersonal: {UPN: UPN, Surname: PersonalInformation/Name/FamilyName,
                                          RefId: "@RefId"}},
               filename: "capita-{created:%Y%m%d}-{seq}.csv", quiet_seconds: 5}
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from hub.core.ports import WrittenFile

SIF_EVENT_OBJECT = "SIF_Event/SIF_ObjectData/SIF_EventObject"
# Characters a spreadsheet reads as the start of a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MANIFEST_SUFFIX = ".manifest.json"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)


def released_object(body: bytes) -> etree._Element | None:
    """The object inside a released copy (SIF_Message/SIF_Event/.../SIF_EventObject/*)."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError:
        return None
    holder: etree._Element | None = root
    for step in SIF_EVENT_OBJECT.split("/"):
        holder = _child(holder, step)
    return next(holder.iterchildren(tag=etree.Element), None) if holder is not None else None


def cell(obj: etree._Element, path: str) -> str:
    """The value at `path` below the object, or "" when the copy does not hold it."""
    *steps, last = path.split("/")
    node: etree._Element | None = obj
    for step in steps:
        node = _child(node, step)
    if node is None:
        return ""
    if last.startswith("@"):
        return str(node.get(last[1:], "")).strip()
    leaf = _child(node, last)
    return "".join(str(t) for t in leaf.itertext()).strip() if leaf is not None else ""


def cells(body: bytes, columns: Mapping[str, str]) -> dict[str, str] | None:
    """{column: value} for one released copy; None when the body holds no object."""
    obj = released_object(body)
    if obj is None:
        return None
    return {name: cell(obj, path) for name, path in columns.items()}


def escape(value: str) -> str:
    """A cell a spreadsheet shows as text, never evaluates."""
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([escape(h) for h in header])
    writer.writerows([escape(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


def manifest_name(file_name: str) -> str:
    return file_name + MANIFEST_SUFFIX


def write_atomic(directory: Path, name: str, data: bytes) -> None:
    """Write `data` as directory/name all at once or not at all; FileExistsError if the
    name is taken."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, directory / name)  # unlike rename, never replaces an existing file
    finally:
        os.unlink(temp)
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CsvFiles:
    """CSV files and manifests in local directories (implements hub.core.ports.ExportFiles)."""

    def cells(self, body: bytes, columns: Mapping[str, str]) -> dict[str, str] | None:
        return cells(body, columns)

    def write(
        self,
        directory: str,
        file_name: str,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        manifest: Mapping[str, Any],
    ) -> WrittenFile:
        data = csv_bytes(header, rows)
        digest = hashlib.sha256(data).hexdigest()
        where = Path(directory)
        write_atomic(where, file_name, data)
        described = {"file": file_name, "sha256": digest, "size_bytes": len(data), **manifest}
        name = manifest_name(file_name)
        try:
            write_atomic(where, name, json.dumps(described, indent=2).encode() + b"\n")
        except BaseException:
            self.remove(directory, [file_name])
            raise
        return WrittenFile(manifest_name=name, sha256=digest, size_bytes=len(data))

    def remove(self, directory: str, names: Sequence[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                (Path(directory) / name).unlink()


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname


def _child(node: etree._Element | None, name: str) -> etree._Element | None:
    if node is None:
        return None
    return next((c for c in node.iterchildren(tag=etree.Element) if _local(c) == name), None)
