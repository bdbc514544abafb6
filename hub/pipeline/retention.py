"""Storage limitation (UK GDPR Art 5(1)(e)): stored payloads go once no agreement that could
still release them needs them; accountability records go after their own, longer period.

- An object's payload (its outbox row, and the message it came in once none of the
  message's objects is left) is kept after routing for the longest retention of the
  agreements concerned (`retention_days`), or `uncovered_days` when no agreement covered
  it; never while a copy of it is still held.
- A message with nothing to route, or a SIF_Response that never completed, is kept
  `uncovered_days` from receipt; rejection rows (never a payload) `rejected_days`.
- Disclosure and audit rows (who received what, who did what) `accountability_days`.
- Export files (and their manifests and staged rows) once the longest retention of the
  agreements their rows were released under has passed: the file first, then its rows,
  so a failure in between is finished by the next run.
- Staged export rows no file took (their subscriber no longer takes files) after
  `uncovered_days`; their disclosure rows stay unacknowledged.
- Copies kept for a pulling subscriber's feed (hub.pipeline.feed): the retention_days of
  the agreement each was released under, from its release.
Runs on a schedule in the hub and as `hub purge`; every run is audited with its counts;
freed space is handed back to the file system on SQLite. Safe with several hubs on one
PostgreSQL database (an advisory lock: one purges, the others skip the round).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from hub.core.ports import ExportFiles, Store, StoreUnavailable
from hub.core.records import AuditRecord, PurgeCounts

log = logging.getLogger("hub.retention")
DRY_RUN_LIMIT = 1_000_000


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    uncovered_days: int = 30
    rejected_days: int = 30
    accountability_days: int = 6 * 365
    batch: int = 1000


async def purge(
    store: Store,
    policy: RetentionPolicy,
    now: datetime,
    *,
    dry_run: bool = False,
    actor: str = "hub",
    files: ExportFiles | None = None,
) -> PurgeCounts | None:
    """Purge (or count, in a dry run) what retention no longer keeps, in batches until none
    is full. None when another hub holds the purge lock. Export files are deleted from
    disk only when `files` is given (their rows go either way)."""
    total = await _export_files(store, now, policy.batch, dry_run, files)
    limit = DRY_RUN_LIMIT if dry_run else policy.batch
    while True:
        counts = await _batch(store, policy, now, limit, dry_run)
        if counts is None:
            return None
        total += counts
        if dry_run or max(asdict(counts).values()) < limit:
            break
    action = "retention.dry_run" if dry_run else "retention.purged"
    async with store.transaction() as tx:
        await tx.audit.add(AuditRecord(now, actor, action, "hub", asdict(total)))
    if not dry_run and total.total:
        await store.reclaim_space()
    return total


async def _export_files(
    store: Store, now: datetime, limit: int, dry_run: bool, files: ExportFiles | None
) -> PurgeCounts:
    total = PurgeCounts()
    while True:
        async with store.transaction() as tx:
            expired = await tx.exports.expired(now, DRY_RUN_LIMIT if dry_run else limit)
        if dry_run:
            return PurgeCounts(export_files=len(expired), export_rows=sum(f.rows for f in expired))
        for f in expired:
            if files is not None:
                await asyncio.to_thread(files.remove, f.directory, [f.file_name, f.manifest_name])
        async with store.transaction() as tx:
            rows = await tx.exports.delete_files([f.id for f in expired])
        total += PurgeCounts(export_files=len(expired), export_rows=rows)
        if len(expired) < limit:
            return total


async def _batch(
    store: Store, policy: RetentionPolicy, now: datetime, limit: int, dry_run: bool
) -> PurgeCounts | None:
    async with store.transaction() as tx:
        if not await tx.retention.exclusive():
            return None
        routed = await tx.retention.purge_routed(now, limit, dry_run)
        unfiled = await tx.exports.purge_waiting(
            now - timedelta(days=policy.uncovered_days), limit, dry_run
        )
        unrouted = await tx.retention.purge_unrouted(
            now - timedelta(days=policy.uncovered_days), limit, dry_run
        )
        records = await tx.retention.purge_records(
            rejections_before=now - timedelta(days=policy.rejected_days),
            accountability_before=now - timedelta(days=policy.accountability_days),
            limit=limit,
            dry_run=dry_run,
        )
        feed_items = await tx.feeds.purge(now, limit, dry_run)
    return (
        routed
        + PurgeCounts(messages=unrouted, feed_items=feed_items, export_rows=unfiled)
        + records
    )


async def run_purger(
    store: Store,
    policy: RetentionPolicy,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    interval_seconds: float,
    files: ExportFiles | None = None,
) -> None:
    """Purge every `interval_seconds` until `stop` is set."""
    while not stop.is_set():
        try:
            counts = await purge(store, policy, clock(), files=files)
            if counts is not None and counts.total:
                log.info(
                    "retention.purged %s", " ".join(f"{k}={v}" for k, v in asdict(counts).items())
                )
        except StoreUnavailable:
            log.warning("retention.unavailable")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_seconds)
