"""CSV uploads and their refused rows (implements hub.core.ports.CsvTransactions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import ColumnElement, select, update

from hub.core.records import CsvRowError, CsvTransactionRecord
from hub.store.errors import AlreadyExists
from hub.store.models import csv_row_errors, csv_transactions
from hub.store.repos.base import SqlRepo, from_row


class SqlCsvTransactions(SqlRepo):
    async def add(self, record: CsvTransactionRecord) -> None:
        # ON CONFLICT keeps the transaction usable after a concurrent upload of the same file.
        statement = self._insert(csv_transactions).values(asdict(record)).on_conflict_do_nothing()
        if (await self._execute(statement)).rowcount == 0:
            raise AlreadyExists(f"CSV transaction {record.id} exists")

    async def get(self, transaction_id: str) -> CsvTransactionRecord | None:
        return await self._one(csv_transactions.c.id == transaction_id)

    async def find(self, agent_id: str, kind: str, sha256: str) -> CsvTransactionRecord | None:
        table = csv_transactions
        return await self._one(
            (table.c.agent_id == agent_id) & (table.c.kind == kind) & (table.c.sha256 == sha256)
        )

    async def add_chunk(
        self,
        transaction_id: str,
        *,
        rows: int,
        accepted: int,
        rejected: int,
        errors: Sequence[CsvRowError],
        not_listed: int,
        at: datetime,
    ) -> None:
        table = csv_transactions
        await self._execute(
            update(table)
            .where(table.c.id == transaction_id)
            .values(
                rows=table.c.rows + rows,
                accepted=table.c.accepted + accepted,
                rejected=table.c.rejected + rejected,
                errors_not_listed=table.c.errors_not_listed + not_listed,
                updated_at=at,
            )
        )
        if errors:
            values = [{"transaction_id": transaction_id, **asdict(e)} for e in errors]
            await self._execute(csv_row_errors.insert(), values)

    async def set_status(self, transaction_id: str, status: str, at: datetime) -> None:
        table = csv_transactions
        statement = update(table).where(table.c.id == transaction_id)
        await self._execute(statement.values(status=status, updated_at=at))

    async def errors(self, transaction_id: str, limit: int) -> list[CsvRowError]:
        table = csv_row_errors
        query = (
            select(table.c.line, table.c.column, table.c.problem)
            .where(table.c.transaction_id == transaction_id)
            .order_by(table.c.line, table.c.id)
            .limit(limit)
        )
        rows = (await self._execute(query)).all()
        return [CsvRowError(line=r.line, column=r.column, problem=r.problem) for r in rows]

    async def _one(self, where: ColumnElement[bool]) -> CsvTransactionRecord | None:
        row = (await self._execute(select(csv_transactions).where(where))).first()
        return from_row(CsvTransactionRecord, row) if row is not None else None
