"""In-memory hub.core.ports.Exports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from hub.core.records import ExportFileRecord, StagedRowRecord
from tests.fakes.state import FakeRepo


class FakeExports(FakeRepo):
    async def stage(self, records: Sequence[StagedRowRecord]) -> None:
        for r in records:
            self._state.export_rows.setdefault(r.copy_msg_id, r)

    async def waiting(self, subscriber: str) -> tuple[int, datetime | None]:
        rows = self._waiting(subscriber)
        return len(rows), max((r.staged_at for r in rows), default=None)

    async def pending(self, subscriber: str, limit: int) -> list[StagedRowRecord]:
        rows = sorted(self._waiting(subscriber), key=lambda r: (r.staged_at, r.copy_msg_id))
        return rows[:limit]

    async def last_seq(self, subscriber: str) -> int:
        return max((f.seq for f in self._files(subscriber)), default=0)

    async def add_file(self, record: ExportFileRecord, copy_msg_ids: Sequence[str]) -> int:
        self._state.export_files[record.id] = record
        rows = self._state.export_rows
        claimed = [i for i in dict.fromkeys(copy_msg_ids) if i in rows and not rows[i].export_id]
        for i in claimed:
            rows[i] = replace(rows[i], export_id=record.id)
        return len(claimed)

    async def files(self, subscriber: str, limit: int = 100) -> list[ExportFileRecord]:
        return sorted(self._files(subscriber), key=lambda f: -f.seq)[:limit]

    async def file(self, export_id: str) -> ExportFileRecord | None:
        return self._state.export_files.get(export_id)

    async def expired(self, now: datetime, limit: int) -> list[ExportFileRecord]:
        old = [f for f in self._state.export_files.values() if f.purge_after <= now]
        return sorted(old, key=lambda f: f.purge_after)[:limit]

    async def delete_files(self, export_ids: Sequence[str]) -> int:
        gone = set(export_ids)
        rows = [i for i, r in self._state.export_rows.items() if r.export_id in gone]
        for i in rows:
            del self._state.export_rows[i]
        for i in gone:
            self._state.export_files.pop(i, None)
        return len(rows)

    async def purge_waiting(self, staged_before: datetime, limit: int, dry_run: bool) -> int:
        rows = self._state.export_rows
        old = sorted(
            (r for r in rows.values() if r.export_id is None and r.staged_at < staged_before),
            key=lambda r: r.staged_at,
        )[:limit]
        if not dry_run:
            for r in old:
                del rows[r.copy_msg_id]
        return len(old)

    def _waiting(self, subscriber: str) -> list[StagedRowRecord]:
        rows = self._state.export_rows.values()
        return [r for r in rows if r.subscriber == subscriber and r.export_id is None]

    def _files(self, subscriber: str) -> list[ExportFileRecord]:
        return [f for f in self._state.export_files.values() if f.subscriber == subscriber]
