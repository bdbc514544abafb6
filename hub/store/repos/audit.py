"""The audit trail and the count of refused messages (implements hub.core.ports.Audit)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from hub.core.records import AuditRecord, RejectionRecord
from hub.store.models import audit, rejections
from hub.store.repos.base import SqlRepo


class SqlAudit(SqlRepo):
    async def add(self, entry: AuditRecord) -> None:
        await self._execute(audit.insert().values(_audit_values(entry)))

    async def add_many(self, entries: Sequence[AuditRecord]) -> None:
        if entries:
            await self._execute(audit.insert(), [_audit_values(e) for e in entries])

    async def add_rejection(self, entry: RejectionRecord) -> None:
        values = {
            "at": entry.at,
            "agent_id": entry.agent_id,
            "zone": entry.zone,
            "category": int(entry.category),
            "code": int(entry.code),
            "object_name": entry.object_name,
        }
        await self._execute(rejections.insert().values(values))

    async def rejections_since(self, at: datetime) -> int:
        query = select(func.count()).select_from(rejections).where(rejections.c.at >= at)
        return int((await self._execute(query)).scalar_one())


def _audit_values(entry: AuditRecord) -> dict[str, Any]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "detail": dict(entry.detail),
        "note": entry.note,
    }
