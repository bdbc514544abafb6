"""File subscribers' staged rows and the files cut from them (implements
hub.core.ports.Exports)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update

from hub.core.records import ExportFileRecord, StagedRowRecord
from hub.store.models import export_files, export_rows
from hub.store.repos.base import SqlRepo, chunks, from_row, values_of


class SqlExports(SqlRepo):
    async def stage(self, records: Sequence[StagedRowRecord]) -> None:
        if not records:
            return
        statement = self._insert(export_rows).on_conflict_do_nothing(index_elements=["copy_msg_id"])
        await self._execute(statement, [values_of(r) for r in records])

    async def waiting(self, subscriber: str) -> tuple[int, datetime | None]:
        query = select(func.count(), func.max(export_rows.c.staged_at)).where(
            export_rows.c.subscriber == subscriber, export_rows.c.export_id.is_(None)
        )
        count, newest = (await self._execute(query)).one()
        return int(count), newest

    async def pending(self, subscriber: str, limit: int) -> list[StagedRowRecord]:
        table = export_rows
        query = (
            select(table)
            .where(table.c.subscriber == subscriber, table.c.export_id.is_(None))
            .order_by(table.c.staged_at, table.c.copy_msg_id)
            .limit(limit)
        )
        return [from_row(StagedRowRecord, r) for r in (await self._execute(query)).all()]

    async def last_seq(self, subscriber: str) -> int:
        query = select(func.max(export_files.c.seq)).where(export_files.c.subscriber == subscriber)
        return int((await self._execute(query)).scalar_one() or 0)

    async def add_file(self, record: ExportFileRecord, copy_msg_ids: Sequence[str]) -> int:
        await self._execute(export_files.insert().values(values_of(record)))
        claimed = 0
        for chunk in chunks(copy_msg_ids):
            statement = (
                update(export_rows)
                .where(export_rows.c.copy_msg_id.in_(chunk), export_rows.c.export_id.is_(None))
                .values(export_id=record.id)
            )
            claimed += (await self._execute(statement)).rowcount
        return claimed

    async def files(self, subscriber: str, limit: int = 100) -> list[ExportFileRecord]:
        query = (
            select(export_files)
            .where(export_files.c.subscriber == subscriber)
            .order_by(export_files.c.seq.desc())
            .limit(limit)
        )
        return [from_row(ExportFileRecord, r) for r in (await self._execute(query)).all()]

    async def file(self, export_id: str) -> ExportFileRecord | None:
        query = select(export_files).where(export_files.c.id == export_id)
        row = (await self._execute(query)).one_or_none()
        return from_row(ExportFileRecord, row) if row is not None else None

    async def expired(self, now: datetime, limit: int) -> list[ExportFileRecord]:
        query = (
            select(export_files)
            .where(export_files.c.purge_after <= now)
            .order_by(export_files.c.purge_after)
            .limit(limit)
        )
        return [from_row(ExportFileRecord, r) for r in (await self._execute(query)).all()]

    async def delete_files(self, export_ids: Sequence[str]) -> int:
        deleted = 0
        for chunk in chunks(export_ids):
            rows = delete(export_rows).where(export_rows.c.export_id.in_(chunk))
            deleted += (await self._execute(rows)).rowcount
            await self._execute(delete(export_files).where(export_files.c.id.in_(chunk)))
        return deleted

    async def purge_waiting(self, staged_before: datetime, limit: int, dry_run: bool) -> int:
        table = export_rows
        query = (
            select(table.c.copy_msg_id)
            .where(table.c.export_id.is_(None), table.c.staged_at < staged_before)
            .order_by(table.c.staged_at)
            .limit(limit)
        )
        ids = [str(i) for i in (await self._execute(query)).scalars().all()]
        if not dry_run:
            for chunk in chunks(ids):
                await self._execute(delete(table).where(table.c.copy_msg_id.in_(chunk)))
        return len(ids)
