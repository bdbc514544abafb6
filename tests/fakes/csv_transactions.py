"""In-memory hub.core.ports.CsvTransactions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from hub.core.ports import AlreadyExists
from hub.core.records import CsvRowError, CsvTransactionRecord
from tests.fakes.state import FakeRepo


class FakeCsvTransactions(FakeRepo):
    async def add(self, record: CsvTransactionRecord) -> None:
        if record.id in self._state.csv_transactions or await self.find(
            record.agent_id, record.kind, record.sha256
        ):
            raise AlreadyExists(record.id)
        self._state.csv_transactions[record.id] = record

    async def get(self, transaction_id: str) -> CsvTransactionRecord | None:
        return self._state.csv_transactions.get(transaction_id)

    async def find(self, agent_id: str, kind: str, sha256: str) -> CsvTransactionRecord | None:
        key = (agent_id, kind, sha256)
        found = (
            t
            for t in self._state.csv_transactions.values()
            if (t.agent_id, t.kind, t.sha256) == key
        )
        return next(found, None)

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
        t = self._state.csv_transactions[transaction_id]
        self._state.csv_transactions[transaction_id] = dataclasses.replace(
            t,
            rows=t.rows + rows,
            accepted=t.accepted + accepted,
            rejected=t.rejected + rejected,
            errors_not_listed=t.errors_not_listed + not_listed,
            updated_at=at,
        )
        self._state.csv_row_errors.extend((transaction_id, e) for e in errors)

    async def set_status(self, transaction_id: str, status: str, at: datetime) -> None:
        t = self._state.csv_transactions[transaction_id]
        self._state.csv_transactions[transaction_id] = dataclasses.replace(
            t, status=status, updated_at=at
        )

    async def errors(self, transaction_id: str, limit: int) -> list[CsvRowError]:
        rows = [e for t, e in self._state.csv_row_errors if t == transaction_id]
        return sorted(rows, key=lambda e: e.line)[:limit]
