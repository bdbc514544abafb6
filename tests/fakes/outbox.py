"""In-memory hub.core.ports.Outbox: FIFO claims under a lease, as the SQL store."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from hub.core.records import BacklogFigures, OutboxRecord, ParkedRecord
from tests.fakes.state import FakeRepo, OutboxRow, utcnow


class FakeOutbox(FakeRepo):
    async def add(self, items: Sequence[OutboxRecord]) -> None:
        now = utcnow()  # due at once
        for item in items:
            self._state.last_seq_no += 1
            self._state.outbox[item.id] = OutboxRow(
                dataclasses.replace(item, created_at=now),
                self._state.last_seq_no,
                now,
                created_at=now,
            )

    async def claim(self, limit: int, now: datetime, lease_seconds: float) -> list[OutboxRecord]:
        rows = sorted(
            (row for row in self._state.outbox.values() if _claimable(row, now)),
            key=lambda row: row.seq_no,
        )[:limit]
        for row in rows:
            row.lease_until = now + timedelta(seconds=lease_seconds)
        return [row.record for row in rows]

    async def complete(self, done: Sequence[tuple[str, datetime]]) -> list[str]:
        now, settled = utcnow(), []
        for outbox_id, purge_after in done:
            row = self._state.outbox.get(outbox_id)
            if row is not None and row.done_at is None:  # guarded, as the SQL store
                row.done_at, row.lease_until, row.purge_after = now, None, purge_after
                settled.append(outbox_id)
        return settled

    async def retry(
        self, outbox_id: str, next_attempt_at: datetime, error: str, *, park: bool = False
    ) -> None:
        for row in self._rows([outbox_id]):
            row.record = dataclasses.replace(row.record, attempts=row.record.attempts + 1)
            row.next_attempt_at, row.lease_until, row.last_error = next_attempt_at, None, error
            row.parked_at = utcnow() if park else None

    async def backlog(self) -> BacklogFigures:
        pending = [r for r in self._state.outbox.values() if r.done_at is None]
        waiting = [r for r in pending if r.parked_at is None]
        return BacklogFigures(
            waiting=len(waiting),
            oldest=min((r.created_at for r in waiting if r.created_at), default=None),
            parked=len(pending) - len(waiting),
        )

    async def parked(self, limit: int) -> list[ParkedRecord]:
        rows = sorted(
            (r for r in self._state.outbox.values() if r.parked_at and r.done_at is None),
            key=lambda r: (r.parked_at, r.seq_no),
        )[:limit]
        return [
            ParkedRecord(
                id=r.record.id,
                message_id=r.record.message_id,
                object_name=r.record.object_name,
                action=r.record.action,
                school=r.record.school,
                attempts=r.record.attempts,
                last_error=r.last_error,
                parked_at=r.parked_at,
            )
            for r in rows
            if r.parked_at is not None
        ]

    async def redrive(self, outbox_ids: Sequence[str] | None, now: datetime) -> list[str]:
        wanted = None if outbox_ids is None else set(outbox_ids)
        done = []
        for row in self._state.outbox.values():
            if (
                row.parked_at
                and row.done_at is None
                and (wanted is None or row.record.id in wanted)
            ):
                row.parked_at, row.next_attempt_at, row.lease_until = None, now, None
                row.record = dataclasses.replace(row.record, attempts=0)
                done.append(row.record.id)
        return done

    async def get(self, outbox_id: str) -> OutboxRecord | None:
        row = self._state.outbox.get(outbox_id)
        return None if row is None else row.record

    def _rows(self, outbox_ids: Sequence[str]) -> list[OutboxRow]:
        return [self._state.outbox[i] for i in dict.fromkeys(outbox_ids) if i in self._state.outbox]


def _claimable(row: OutboxRow, now: datetime) -> bool:
    leased = row.lease_until is not None and row.lease_until >= now
    parked = row.parked_at is not None
    return row.done_at is None and row.next_attempt_at <= now and not leased and not parked
