"""In-memory hub.core.ports.Audit."""

from __future__ import annotations

from datetime import datetime

from hub.core.records import AuditRecord, RejectionRecord
from tests.fakes.state import FakeRepo


class FakeAudit(FakeRepo):
    async def add(self, entry: AuditRecord) -> None:
        self._state.audit.append(entry)

    async def add_rejection(self, entry: RejectionRecord) -> None:
        self._state.rejections.append(entry)

    async def rejections_since(self, at: datetime) -> int:
        return sum(1 for r in self._state.rejections if r.at >= at)
