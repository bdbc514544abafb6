"""Objects waiting to be routed (implements hub.core.ports.Outbox): FIFO claims under a
lease, SKIP LOCKED on PostgreSQL so that several dispatchers share the work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, update

from hub.core.envelope import Action
from hub.core.records import BacklogFigures, OutboxRecord, ParkedRecord
from hub.store.models import LAST_ERROR_MAX, outbox
from hub.store.repos.base import AnyRow, SqlRepo, chunks, from_row, utcnow


class SqlOutbox(SqlRepo):
    async def add(self, items: Sequence[OutboxRecord]) -> None:
        if items:
            now = utcnow()
            await self._execute(outbox.insert(), [_outbox_values(item, now) for item in items])

    async def claim(self, limit: int, now: datetime, lease_seconds: float) -> list[OutboxRecord]:
        lease_until = now + timedelta(seconds=lease_seconds)
        statement = (
            update(outbox)
            .where(outbox.c.seq_no.in_(self._claimable(limit, now)))
            .values(lease_until=lease_until)
            .returning(*outbox.c)
        )
        rows = (await self._execute(statement)).all()
        # RETURNING order is unspecified; FIFO is restored here.
        return [_outbox_record(row) for row in sorted(rows, key=lambda row: row.seq_no)]

    def _claimable(self, limit: int, now: datetime) -> Select[Any]:
        query = (
            select(outbox.c.seq_no)
            .where(pending(), outbox.c.next_attempt_at <= now, outbox.c.parked_at.is_(None))
            .where(or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now))
            .order_by(outbox.c.seq_no)
            .limit(limit)
        )
        # Two dispatchers on PostgreSQL skip each other's rows instead of waiting;
        # SQLite serialises writers (BEGIN IMMEDIATE), so it needs no row locks.
        return query.with_for_update(skip_locked=True) if self._postgres else query

    async def complete(self, done: Sequence[tuple[str, datetime]]) -> list[str]:
        # Guarded on done_at: a claimer whose lease ran out while another finished the
        # row settles nothing, so its disclosures are not recorded twice.
        by_purge: dict[datetime, list[str]] = {}
        for outbox_id, purge_after in done:
            by_purge.setdefault(purge_after, []).append(outbox_id)
        settled: list[str] = []
        now = utcnow()
        for purge_after, ids in by_purge.items():
            for chunk in chunks(ids):
                statement = (
                    update(outbox)
                    .where(outbox.c.id.in_(chunk), pending())
                    .values(done_at=now, lease_until=None, purge_after=purge_after)
                    .returning(outbox.c.id)
                )
                settled += [str(i) for i in (await self._execute(statement)).scalars().all()]
        return settled

    async def retry(
        self, outbox_id: str, next_attempt_at: datetime, error: str, *, park: bool = False
    ) -> None:
        statement = (
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(
                attempts=outbox.c.attempts + 1,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_error=short_error(error),
                parked_at=utcnow() if park else None,
            )
        )
        await self._execute(statement)

    async def backlog(self) -> BacklogFigures:
        # One pass over the pending rows (the partial index ix_outbox_pending).
        waiting, parked = outbox.c.parked_at.is_(None), outbox.c.parked_at.is_not(None)
        query = select(
            func.count().filter(waiting),
            func.min(outbox.c.created_at).filter(waiting),
            func.count().filter(parked),
        ).where(pending())
        count, oldest, parked_count = (await self._execute(query)).one()
        # min() keeps the column's type: aware UTC
        return BacklogFigures(waiting=int(count), oldest=oldest, parked=int(parked_count))

    async def parked(self, limit: int) -> list[ParkedRecord]:
        query = (
            select(outbox)
            .where(outbox.c.parked_at.is_not(None), pending())
            .order_by(outbox.c.parked_at, outbox.c.seq_no)
            .limit(limit)
        )
        return [_parked(row) for row in (await self._execute(query)).all()]

    async def redrive(self, outbox_ids: Sequence[str] | None, now: datetime) -> list[str]:
        where = [outbox.c.parked_at.is_not(None), pending()]
        if outbox_ids is not None:
            where.append(outbox.c.id.in_(list(outbox_ids)))
        statement = (
            update(outbox)
            .where(*where)
            .values(parked_at=None, attempts=0, next_attempt_at=now, lease_until=None)
            .returning(outbox.c.id)
        )
        return [str(i) for i in (await self._execute(statement)).scalars().all()]

    async def get(self, outbox_id: str) -> OutboxRecord | None:
        query = select(outbox).where(outbox.c.id == outbox_id)
        row = (await self._execute(query)).first()
        return None if row is None else _outbox_record(row)


def pending() -> ColumnElement[bool]:
    # Matches the partial index ix_outbox_pending (WHERE done_at IS NULL).
    return outbox.c.done_at.is_(None)


def short_error(error: str) -> str:
    """First line only, capped: exception texts can quote payloads (personal data)."""
    first = error.strip().splitlines()[0] if error.strip() else "error"
    return first[:LAST_ERROR_MAX]


def _outbox_values(item: OutboxRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": item.id,
        "message_id": item.message_id,
        "seq": item.seq,
        "zone": item.zone,
        "source_agent": item.source_agent,
        "object_name": item.object_name,
        "action": str(item.action.value),
        "school": item.school,
        "subject_refid": item.subject_refid,
        "object_refid": item.object_refid,
        "schools": list(item.schools),
        "object_xml": item.object_xml,
        "attempts": item.attempts,
        "next_attempt_at": now,  # due at once
        "lease_until": None,
        "last_error": None,
        "done_at": None,
        "created_at": now,
        "purge_after": None,
        "parked_at": None,
    }


def _parked(row: AnyRow) -> ParkedRecord:
    return from_row(ParkedRecord, row, action=Action(row.action))


def _outbox_record(row: AnyRow) -> OutboxRecord:
    return from_row(
        OutboxRecord,
        row,
        action=Action(row.action),
        object_xml=bytes(row.object_xml),
        schools=tuple(row.schools or ()),
    )
