"""Storage limitation (UK GDPR Art 5(1)(e)): deletes, in bounded batches, what retention
no longer keeps (implements hub.core.ports.Retention).

- routed objects (outbox rows) once their `purge_after` has passed and none of their copies
  is still held, with their held-copy rows, and every message left with no object;
- messages no agreement covered (no object to route, or a response never completed) once
  older than the hub-wide maximum;
- rejection rows, and the accountability records (disclosures, audit, webhook attempts),
  by age.
Every batch is one transaction; on PostgreSQL an advisory lock lets one hub purge at a time.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, exists, func, select, text

from hub.core.records import PurgeCounts
from hub.store.models import (
    audit,
    disclosures,
    held_copies,
    messages,
    outbox,
    rejections,
    webhook_attempts,
)
from hub.store.repos.base import IN_CHUNK, SqlRepo, chunks

# pg_try_advisory_xact_lock key: "SIFHUB PURGE" in spirit; any constant shared by all hubs.
PURGE_LOCK_KEY = 7_274_873_201


class SqlRetention(SqlRepo):
    async def exclusive(self) -> bool:
        if not self._postgres:
            return True  # SQLite serialises every writer already
        query = text("SELECT pg_try_advisory_xact_lock(:key)")
        return bool((await self._execute(query, {"key": PURGE_LOCK_KEY})).scalar_one())

    async def purge_routed(self, now: datetime, limit: int, dry_run: bool) -> PurgeCounts:
        still_held = exists().where(
            held_copies.c.outbox_id == outbox.c.id, held_copies.c.settled_at.is_(None)
        )
        query = (
            select(outbox.c.id, outbox.c.message_id)
            .where(outbox.c.done_at.is_not(None), outbox.c.purge_after <= now, ~still_held)
            .order_by(outbox.c.purge_after)
            .limit(limit)
        )
        rows = (await self._execute(query)).all()
        ids = [str(r.id) for r in rows]
        orphaned = await self._orphaned(Counter(str(r.message_id) for r in rows))
        held = await self._count_in(held_copies, held_copies.c.outbox_id, ids)
        if not dry_run:
            await self._delete_in(held_copies, held_copies.c.outbox_id, ids)
            await self._delete_in(outbox, outbox.c.id, ids)
            await self._delete_in(messages, messages.c.id, orphaned)
        return PurgeCounts(outbox=len(ids), held=held, messages=len(orphaned))

    async def _orphaned(self, purged: Counter[str]) -> list[str]:
        """Messages all of whose objects are among those being purged."""
        remaining: dict[str, int] = {}
        for chunk in chunks(list(purged)):
            query = (
                select(outbox.c.message_id, func.count())
                .where(outbox.c.message_id.in_(chunk))
                .group_by(outbox.c.message_id)
            )
            remaining.update({str(m): int(n) for m, n in (await self._execute(query)).all()})
        return [m for m, n in purged.items() if remaining.get(m, 0) <= n]

    async def purge_unrouted(self, received_before: datetime, limit: int, dry_run: bool) -> int:
        has_object = exists().where(outbox.c.message_id == messages.c.id)
        query = (
            select(messages.c.id)
            .where(messages.c.received_at < received_before, ~has_object)
            .order_by(messages.c.received_at)
            .limit(limit)
        )
        ids = [str(i) for i in (await self._execute(query)).scalars().all()]
        if not dry_run:
            await self._delete_in(messages, messages.c.id, ids)  # packets cascade
        return len(ids)

    async def purge_records(
        self,
        *,
        rejections_before: datetime,
        accountability_before: datetime,
        limit: int,
        dry_run: bool,
    ) -> PurgeCounts:
        counts = {}
        for name, table, column, before in (
            ("rejections", rejections, rejections.c.at, rejections_before),
            ("disclosures", disclosures, disclosures.c.published_at, accountability_before),
            ("audit", audit, audit.c.at, accountability_before),
            (
                "webhook_attempts",
                webhook_attempts,
                webhook_attempts.c.attempted_at,
                accountability_before,
            ),
        ):
            query = select(table.c.id).where(column < before).order_by(column).limit(limit)
            ids = list((await self._execute(query)).scalars().all())
            if not dry_run:
                await self._delete_in(table, table.c.id, ids)
            counts[name] = len(ids)
        return PurgeCounts(**counts)

    async def _count_in(self, table: Table, column: ColumnElement[Any], values: list[str]) -> int:
        total = 0
        for chunk in chunks(values):
            query = select(func.count()).select_from(table).where(column.in_(chunk))
            total += int((await self._execute(query)).scalar_one())
        return total

    async def _delete_in(self, table: Table, column: ColumnElement[Any], values: list[Any]) -> None:
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start : start + IN_CHUNK]
            await self._execute(delete(table).where(column.in_(chunk)))
