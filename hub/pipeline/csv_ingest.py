"""CSV uploads: a school's file of rows becomes SIF objects on the one ingest path.

The edge (hub.api.csv_routes) spools the body to disk while hashing it, and maps rows with
adapters.csv_upload. Here: one transaction per file (agent + kind + SHA-256: the same file
sent again is the same transaction, not ingested again), then the rows in chunks of
`chunk_rows`. Each chunk is validated against the XSDs in a worker thread and stored in ONE
database transaction through `ingest.add_objects` (school checks, learner index, outbox,
audit: as an agent's SIF_Event) together with its counts and its refused rows. Only a
chunk's rows are in memory at once. An upload not complete (database down, hub killed) is
resumed when the same file is sent again: its stored chunks are known by their message id
and skipped.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import count, islice
from typing import Protocol

from lxml import etree

from hub.core.config import Agent
from hub.core.envelope import Action
from hub.core.errors import Category, SifError
from hub.core.ports import AlreadyExists, DuplicateMessage, StoreUnavailable
from hub.core.records import AuditRecord, CsvRowError, CsvTransactionRecord
from hub.pipeline.ingest import Incoming, IngestContext, add_objects
from hub.pipeline.resolve import Entry, Shown

PROCESSING, COMPLETE, FAILED = "processing", "complete", "failed"
CHUNK_ROWS = 500
MAX_LISTED_ERRORS = 10_000  # problems listed per upload; beyond, only counted


class Row(Protocol):
    """A mapped CSV row (adapters.csv_upload.MappedRow)."""

    @property
    def line(self) -> int: ...
    @property
    def values(self) -> tuple[str, ...]: ...
    @property
    def element(self) -> etree._Element | None: ...
    @property
    def laestab(self) -> str | None: ...
    @property
    def upn(self) -> str | None: ...
    @property
    def errors(self) -> tuple[CsvRowError, ...]: ...


@dataclass(frozen=True, kw_only=True)
class Upload:
    agent: Agent
    zone: str
    kind: str
    sha256: str
    mapping_version: int


@dataclass(frozen=True, kw_only=True)
class _Prepared:
    line: int
    obj: Entry | None
    errors: tuple[CsvRowError, ...]


@dataclass(frozen=True, kw_only=True)
class _Chunk:
    rows: list[_Prepared]
    payload: bytes  # the chunk's rows as CSV (header first): the stored message


async def open_transaction(hub: IngestContext, upload: Upload) -> tuple[CsvTransactionRecord, bool]:
    """The agent's transaction for this file, and whether its rows are to be ingested now:
    a new file, or one not complete (failed, or cut short: the database went down, the hub
    was killed) resumed. Resuming is safe even beside a concurrent upload of the same file:
    a chunk is stored and counted once, by whoever stores it first."""
    for _ in range(2):  # a concurrent upload of the same file may win the insert
        async with hub.store.transaction() as tx:
            found = await tx.csv_transactions.find(upload.agent.id, upload.kind, upload.sha256)
            if found is not None and found.status == COMPLETE:
                return found, False
            now = hub.clock()
            if found is not None:
                await tx.csv_transactions.set_status(found.id, PROCESSING, now)
                return dataclasses.replace(found, status=PROCESSING, updated_at=now), True
            record = _new_record(upload, now)
            try:
                await tx.csv_transactions.add(record)
            except AlreadyExists:
                continue
            detail = {"transaction": record.id, "kind": upload.kind, "sha256": upload.sha256}
            await tx.audit.add(
                AuditRecord(now, f"agent:{upload.agent.id}", "csv.upload", upload.zone, detail)
            )
            return record, True
    raise RuntimeError("CSV transaction neither found nor created")  # pragma: no cover


def _new_record(upload: Upload, now: datetime) -> CsvTransactionRecord:
    return CsvTransactionRecord(
        id=uuid.uuid4().hex,
        agent_id=upload.agent.id,
        zone=upload.zone,
        kind=upload.kind,
        sha256=upload.sha256,
        mapping_version=upload.mapping_version,
        status=PROCESSING,
        created_at=now,
        updated_at=now,
    )


async def ingest_rows(
    hub: IngestContext,
    agent: Agent,
    record: CsvTransactionRecord,
    header: Sequence[str],
    rows: Iterator[Row],
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> CsvTransactionRecord:
    """Ingest every row, chunk by chunk; the transaction ends complete, or failed (and
    the error raised) when a chunk cannot be stored."""
    listed = record.rejected  # a resumed upload has listed about this many already
    try:
        for number in count():
            chunk = await hub.offload.run(
                hub.offload.threshold_bytes, lambda: _prepare(hub, header, rows, chunk_rows)
            )
            if not chunk.rows:
                break
            incoming = Incoming(agent, record.zone, chunk.payload)
            listed += await _store(hub, record.id, incoming, number, chunk, listed)
    except BaseException:
        with contextlib.suppress(StoreUnavailable):  # left "processing": resumed all the same
            await _finish(hub, record.id, FAILED)
        raise
    return await _finish(hub, record.id, COMPLETE)


async def _store(
    hub: IngestContext,
    transaction_id: str,
    incoming: Incoming,
    number: int,
    chunk: _Chunk,
    listed: int,
) -> int:
    """One chunk in one database transaction; returns how many problems it listed."""
    objects = [p.obj for p in chunk.rows if p.obj is not None]
    try:
        return await _store_once(hub, transaction_id, incoming, number, chunk, objects, listed)
    except DuplicateMessage:
        return 0  # a concurrent upload of the same file stored this chunk first


async def _store_once(
    hub: IngestContext,
    transaction_id: str,
    incoming: Incoming,
    number: int,
    chunk: _Chunk,
    objects: list[Entry],
    listed: int,
) -> int:
    async with hub.store.transaction() as tx:
        answers = await add_objects(
            hub, tx, incoming, sif_msg_id=f"CSV-{transaction_id}-{number}", objects=objects
        )
        if answers is None:
            return 0  # stored before this upload was resumed
        errors = _errors(chunk.rows, iter(answers))
        room = max(0, MAX_LISTED_ERRORS - listed)
        refused = len({e.line for e in errors})
        await tx.csv_transactions.add_chunk(
            transaction_id,
            rows=len(chunk.rows),
            accepted=len(chunk.rows) - refused,
            rejected=refused,
            errors=errors[:room],
            not_listed=max(0, len(errors) - room),
            at=hub.clock(),
        )
    if objects:
        hub.routed()
    return min(room, len(errors))


def _errors(rows: list[_Prepared], answers: Iterator[SifError | None]) -> list[CsvRowError]:
    """Each row's problems: its own, or the ingest's refusal of its object."""
    errors: list[CsvRowError] = []
    for row in rows:
        errors.extend(row.errors)
        if row.obj is not None and (refusal := next(answers)) is not None:
            errors.append(CsvRowError(line=row.line, column="DfE No", problem=_why(refusal)))
    return errors


def _why(error: SifError) -> str:
    """Refusal texts name schools and agents; a row's problem names neither."""
    if error.category == Category.ACCESS:
        return "the agent may not post for this school or this learner's school"
    return f"refused by the hub (SIF error {int(error.category)}/{error.code})"


async def _finish(hub: IngestContext, transaction_id: str, status: str) -> CsvTransactionRecord:
    async with hub.store.transaction() as tx:
        await tx.csv_transactions.set_status(transaction_id, status, hub.clock())
        record = await tx.csv_transactions.get(transaction_id)
    assert record is not None
    return record


async def report(
    hub: IngestContext, agent_id: str, transaction_id: str
) -> tuple[CsvTransactionRecord, list[CsvRowError]] | None:
    """The transaction and its listed problems, for the agent that uploaded it only."""
    async with hub.store.transaction() as tx:
        record = await tx.csv_transactions.get(transaction_id)
        if record is None or record.agent_id != agent_id:
            return None
        return record, await tx.csv_transactions.errors(transaction_id, MAX_LISTED_ERRORS)


def _prepare(hub: IngestContext, header: Sequence[str], rows: Iterator[Row], size: int) -> _Chunk:
    """The next rows, each validated against the XSDs and serialized (CPU only: runs in a
    worker thread)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    prepared = []
    for row in islice(rows, size):
        writer.writerow(row.values)
        prepared.append(_validated(hub, row))
    return _Chunk(rows=prepared, payload=out.getvalue().encode())


def _validated(hub: IngestContext, row: Row) -> _Prepared:
    if row.element is None or row.errors:
        return _Prepared(line=row.line, obj=None, errors=row.errors)
    try:
        hub.schemas.validate_object(row.element)
    except SifError as error:
        problem = f"the object does not match the SIF UK schema ({error.extended or error.desc})"
        bad = CsvRowError(line=row.line, column="", problem=problem)
        return _Prepared(line=row.line, obj=None, errors=(bad,))
    shown = Shown(laestabs=(row.laestab,) if row.laestab else (), upn=row.upn)
    xml = etree.tostring(row.element, encoding="UTF-8")
    obj = Entry(element=row.element, action=Action.ADD, object_xml=xml, shown=shown)
    return _Prepared(line=row.line, obj=obj, errors=())
