"""Accepted SIF messages, kept verbatim (implements hub.core.ports.Messages)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from hub.core.records import MessageRecord
from hub.store.errors import DuplicateMessage
from hub.store.models import messages
from hub.store.repos.base import SqlRepo


class SqlMessages(SqlRepo):
    async def exists(self, agent_id: str, sif_msg_id: str) -> bool:
        query = select(messages.c.id).where(_message_key(agent_id, sif_msg_id)).limit(1)
        return (await self._execute(query)).first() is not None

    async def add(self, record: MessageRecord) -> None:
        # ON CONFLICT DO NOTHING rather than catching the violation: concurrent repeats
        # wait for the first to commit, and the transaction stays usable on PostgreSQL.
        statement = (
            self._insert(messages)
            .values(_message_values(record))
            .on_conflict_do_nothing(index_elements=["agent_id", "sif_msg_id"])
        )
        if (await self._execute(statement)).rowcount == 0:
            raise DuplicateMessage(f"{record.agent_id}/{record.sif_msg_id} already accepted")

    async def payload(self, message_id: str) -> bytes | None:
        query = select(messages.c.payload).where(messages.c.id == message_id)
        payload = (await self._execute(query)).scalar_one_or_none()
        return None if payload is None else bytes(payload)


def _message_key(agent_id: str, sif_msg_id: str) -> ColumnElement[bool]:
    return (messages.c.agent_id == agent_id) & (messages.c.sif_msg_id == sif_msg_id)


def _message_values(record: MessageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "agent_id": record.agent_id,
        "zone": record.zone,
        "sif_msg_id": record.sif_msg_id,
        "kind": str(record.kind.value),
        "version": record.version,
        "object_name": record.object_name,
        "action": None if record.action is None else str(record.action.value),
        "school": record.school,
        "received_at": record.received_at,
        "payload": record.payload,
    }
