"""In-memory hub.core.ports.Audit."""

from __future__ import annotations

from hub.core.records import AuditRecord, RejectionRecord
from tests.fakes.state import FakeRepo


class FakeAudit(FakeRepo):
    async def add(self, entry: AuditRecord) -> None:
        self._state.audit.append(entry)

    async def add_rejection(self, entry: RejectionRecord) -> None:
        self._state.rejections.append(entry)
