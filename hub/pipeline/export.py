"""Where a file subscriber's copies leave: staged as rows, then cut into CSV files.

Dispatch has already decided, filtered and published each copy into the subscriber's
queue; this stage only changes its form, so a file can never hold more than the queue
route would. The stager consumes the queue: a copy leaves only once its disclosure row is
committed (`await_release`; set aside like a pushed copy while it is not), becomes one
staged row (idempotent on the copy's message id) and is acked. The cutter writes the
waiting rows to one file once the subscriber's copies have stopped arriving for
`quiet_seconds` (copies held for an agreement's window are released together, so each
window gives one file), or at once when `max_rows` are waiting; the file and its manifest
are in place before the transaction that records the file and acknowledges its copies'
disclosures. A crash in between leaves a file whose rows come again in the next one
(at-least-once; the copy_id column de-duplicates). Files follow their agreements'
retention (hub.pipeline.retention).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.core import naming
from hub.core.config import FileDelivery
from hub.core.ports import (
    Delivered,
    DeliverySource,
    ExportFiles,
    Settle,
    Store,
    StoreUnavailable,
)
from hub.core.records import AuditRecord, ExportFileRecord, StagedRowRecord
from hub.pipeline.deliver import PushContext, await_release, set_aside
from hub.pipeline.dispatch import sleep_or_wake

PathsOf = Callable[[str], frozenset[str]]

log = logging.getLogger("hub.export")
# The columns every file starts with: the copy's id (de-duplicate on it), object and action.
LEADING = ("copy_id", "object", "action")
STAGE_CONCURRENCY = 200  # prefetch: copies in hand at once, staged in batches


class CutConflict(Exception):
    """Another hub put some of these rows in a file first."""


class ExportSpecInvalid(ValueError):
    """A file subscriber's columns name what the schemas do not have: refused at start,
    since such a column would be empty in every file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def check_columns(subscribers: Sequence[tuple[str, FileDelivery]], paths_of: PathsOf) -> None:
    problems = [p for sub, target in subscribers for p in column_problems(sub, target, paths_of)]
    if problems:
        raise ExportSpecInvalid(problems)


@dataclass
class ExportContext:
    store: Store
    files: ExportFiles
    push: PushContext  # the delivery routes' shared waits and retry ladder (set_aside)
    # Days a copy released under (agreement id, version) is kept: the version's
    # retention_days, or the hub-wide default for one no longer known (as for feeds).
    retention_days: Callable[[str, int], int]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    staged: dict[str, asyncio.Event] = field(default_factory=dict)  # wakes each cutter
    batcher: StageBatcher = field(init=False)
    status: dict[str, str] = field(default_factory=dict)  # per "file:<id>" task, readiness

    def __post_init__(self) -> None:
        self.batcher = StageBatcher(self.store)

    def wake(self, subscriber: str) -> asyncio.Event:
        return self.staged.setdefault(subscriber, asyncio.Event())


async def stage_copy(
    ctx: ExportContext, subscriber: str, target: FileDelivery, copy: Delivered
) -> Settle:
    """Stage one copy as a row and say what becomes of it."""
    done = Settle(kind="done", attempts=copy.attempts, deferrals=copy.deferrals)
    record = staged_row(subscriber, target, copy, ctx.files, ctx.clock())
    if record is None:
        # Config validation makes every released object exportable; this copy's agreement
        # changed since. Its disclosure stays unacknowledged: it never reached the recipient.
        log.warning(
            "export.not_exported subscriber=%s object=%s",
            subscriber,
            copy.headers.get(naming.H_OBJECT),
        )
        return done
    try:
        outcome = await ctx.batcher.submit(record)
        if outcome == UNRELEASED:
            # Dispatch writes the row just after the publish confirm: wait as every route does.
            waits = ctx.push.disclosure_waits
            if await await_release(ctx.store, copy.message_id, waits) is None:
                return set_aside(ctx.push, copy, unreleased=True)
            outcome = await ctx.batcher.submit(record)
    except StoreUnavailable:
        return set_aside(ctx.push, copy)
    if outcome == STAGED:
        ctx.wake(subscriber).set()
    return done  # staged, or acknowledged already (in a file: a re-sent duplicate)


STAGED, ACKNOWLEDGED, UNRELEASED = "staged", "acknowledged", "unreleased"


@dataclass
class _Waiting:
    record: StagedRowRecord
    outcome: asyncio.Future[str]


class StageBatcher:
    """Stages the copies handled at the same moment in one transaction (is each released
    yet, already acknowledged, then its row): one commit per batch instead of two per
    copy. Each caller learns its copy's outcome, or the batch's StoreUnavailable."""

    def __init__(self, store: Store, max_batch: int = 500) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, record: StagedRowRecord) -> str:
        waiting = _Waiting(record, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await waiting.outcome

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the copies handled together join the batch
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    outcomes = await self._commit([w.record for w in batch])
                except Exception as exc:  # the batch failed as one: each waiter hears it
                    for w in batch:
                        if not w.outcome.done():
                            w.outcome.set_exception(exc)
                    continue
                for w in batch:
                    if not w.outcome.done():
                        w.outcome.set_result(outcomes[w.record.copy_msg_id])
        finally:
            self._flusher = None

    async def _commit(self, records: Sequence[StagedRowRecord]) -> dict[str, str]:
        async with self._store.transaction() as tx:
            released = await tx.disclosures.recorded([r.copy_msg_id for r in records])
            await tx.exports.stage([r for r in records if released.get(r.copy_msg_id) is False])
        outcomes = {True: ACKNOWLEDGED, False: STAGED, None: UNRELEASED}
        return {r.copy_msg_id: outcomes[released.get(r.copy_msg_id)] for r in records}


def staged_row(
    subscriber: str, target: FileDelivery, copy: Delivered, files: ExportFiles, at: datetime
) -> StagedRowRecord | None:
    """The copy's row: its cells read from the copy alone; None if it has no columns."""
    object_name = copy.headers.get(naming.H_OBJECT, "")
    columns = target.export.get(object_name)
    values = files.cells(copy.body, columns) if columns is not None else None
    if values is None:
        return None
    return StagedRowRecord(
        copy_msg_id=copy.message_id,
        subscriber=subscriber,
        object_name=object_name,
        action=copy.headers.get(naming.H_ACTION, ""),
        agreement_id=copy.headers.get(naming.H_AGREEMENT, ""),
        agreement_version=int(copy.headers.get(naming.H_AGREEMENT_VERSION) or 0),
        cells=values,
        staged_at=at,
    )


def column_problems(subscriber: str, target: FileDelivery, paths_of: PathsOf) -> list[str]:
    """Columns naming an object or an element the hub's schemas do not know (an attribute
    is checked as far as its element)."""
    out = []
    for object_name, columns in target.export.items():
        try:
            known = paths_of(object_name)
        except KeyError:
            out.append(f"subscriber {subscriber}: export names unknown object {object_name}")
            continue
        for column, path in columns.items():
            element = path.rpartition("/@")[0] if "/@" in path else path
            if not element.startswith("@") and element not in known:
                out.append(
                    f"subscriber {subscriber}: column {column!r}: {object_name} has no {element}"
                )
    return out


def header(target: FileDelivery) -> list[str]:
    """The leading columns, then every object's columns in the order configured."""
    names = [c for columns in target.export.values() for c in columns]
    return [*LEADING, *dict.fromkeys(n for n in names if n not in LEADING)]


def matrix(head: Sequence[str], rows: Sequence[StagedRowRecord]) -> list[list[str]]:
    """One CSV row per staged row; a column another object has is empty."""
    fixed = len(LEADING)
    return [
        [r.copy_msg_id, r.object_name, r.action, *(r.cells.get(c, "") for c in head[fixed:])]
        for r in rows
    ]


def counts_of(rows: Sequence[StagedRowRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.object_name] = out.get(r.object_name, 0) + 1
    return dict(sorted(out.items()))


async def due(ctx: ExportContext, subscriber: str, target: FileDelivery) -> bool:
    """Rows are waiting and either the queue has been quiet long enough or a file's worth
    is waiting."""
    async with ctx.store.transaction() as tx:
        waiting, newest = await tx.exports.waiting(subscriber)
    if not waiting or newest is None:
        return False
    quiet = ctx.clock() - newest >= timedelta(seconds=target.quiet_seconds)
    return quiet or waiting >= target.max_rows


async def cut_once(
    ctx: ExportContext, subscriber: str, target: FileDelivery, *, force: bool = False
) -> ExportFileRecord | None:
    """Write the waiting rows to one file if it is time (or `force`)."""
    if not (force or await due(ctx, subscriber, target)):
        return None
    async with ctx.store.transaction() as tx:
        rows = await tx.exports.pending(subscriber, target.max_rows)
        seq = await tx.exports.last_seq(subscriber) + 1
    if not rows:
        return None
    now = ctx.clock()
    record = _file_record(ctx, subscriber, target, rows, seq, now)
    head = header(target)
    written = await asyncio.to_thread(
        ctx.files.write,
        target.directory,
        record.file_name,
        head,
        matrix(head, rows),
        _manifest(record),
    )
    record = replace(
        record,
        manifest_name=written.manifest_name,
        sha256=written.sha256,
        size_bytes=written.size_bytes,
    )
    try:
        await _commit(ctx, record, rows, now)
    except (CutConflict, StoreUnavailable):
        names = [record.file_name, record.manifest_name]
        await asyncio.to_thread(ctx.files.remove, target.directory, names)
        raise
    log.info("export.written subscriber=%s seq=%d rows=%d", subscriber, seq, len(rows))
    return record


def _file_record(
    ctx: ExportContext,
    subscriber: str,
    target: FileDelivery,
    rows: Sequence[StagedRowRecord],
    seq: int,
    now: datetime,
) -> ExportFileRecord:
    agreements = sorted({(r.agreement_id, r.agreement_version) for r in rows})
    keep = max(ctx.retention_days(a, v) for a, v in agreements)
    return ExportFileRecord(
        id=uuid.uuid4().hex,
        subscriber=subscriber,
        seq=seq,
        directory=target.directory,
        file_name=target.filename.format(subscriber=subscriber, created=now, seq=seq),
        manifest_name="",
        rows=len(rows),
        counts=counts_of(rows),
        agreements=[f"{a}@{v}" for a, v in agreements],
        sha256="",
        size_bytes=0,
        created_at=now,
        purge_after=now + timedelta(days=keep),
    )


def _manifest(record: ExportFileRecord) -> dict[str, object]:
    return {
        "subscriber": record.subscriber,
        "seq": record.seq,
        "rows": record.rows,
        "counts": record.counts,
        "agreements": record.agreements,
        "created_at": record.created_at.isoformat(),
        "delete_after": record.purge_after.isoformat(),
    }


async def _commit(
    ctx: ExportContext, record: ExportFileRecord, rows: Sequence[StagedRowRecord], now: datetime
) -> None:
    """The file row, its rows claimed, their disclosures acknowledged: one transaction."""
    ids = [r.copy_msg_id for r in rows]
    detail = {"export_id": record.id, "rows": record.rows, "counts": record.counts}
    async with ctx.store.transaction() as tx:
        if await tx.exports.add_file(record, ids) != len(ids):
            raise CutConflict(record.subscriber)
        await tx.disclosures.acknowledge(ids, now)
        await tx.audit.add(AuditRecord(now, "hub", "export.written", record.subscriber, detail))


async def run_stager(
    ctx: ExportContext,
    source: DeliverySource,
    subscriber: str,
    target: FileDelivery,
    stop: asyncio.Event,
) -> None:
    """Stage one file subscriber's copies from its queue until `stop`."""

    async def handle(copy: Delivered) -> Settle:
        return await stage_copy(ctx, subscriber, target, copy)

    await _tracked(
        ctx,
        f"file:{subscriber}",
        source.run(subscriber, handle, concurrency=STAGE_CONCURRENCY, stop=stop),
    )


async def run_cutter(
    ctx: ExportContext, subscriber: str, target: FileDelivery, stop: asyncio.Event
) -> None:
    """Cut files for one subscriber until `stop`, looking whenever a row is staged and a
    few times per quiet period."""
    poll = max(0.1, min(1.0, target.quiet_seconds / 4))
    wake = ctx.wake(subscriber)

    async def loop() -> None:
        while not stop.is_set():
            wake.clear()
            await cut_and_report(ctx, subscriber, target)
            await sleep_or_wake(wake, stop, poll)

    await _tracked(ctx, f"export:{subscriber}", loop())


async def cut_and_report(ctx: ExportContext, subscriber: str, target: FileDelivery) -> None:
    """One look by the cutter; readiness says `failing` while files cannot be written (a
    directory gone or read-only, the database away) and `running` once one can."""
    name = f"export:{subscriber}"
    try:
        await cut_once(ctx, subscriber, target)
    except (StoreUnavailable, CutConflict, OSError) as exc:
        ctx.status[name] = "failing"
        error = type(exc).__name__
        log.warning("export.cut_failed subscriber=%s error=%s", subscriber, error)
        return
    ctx.status[name] = "running"


async def _tracked(ctx: ExportContext, name: str, work: Coroutine[Any, Any, None]) -> None:
    ctx.status[name] = "running"
    try:
        await work
    except Exception:
        log.exception("export.crashed task=%s", name)
        raise
    finally:
        ctx.status[name] = "stopped"
