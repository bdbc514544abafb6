"""Accepted SIF messages, kept verbatim (implements hub.core.ports.Messages)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core.records import MessageRecord
from hub.store.errors import DuplicateMessage
from hub.store.models import messages
from hub.store.repos.base import IN_CHUNK, SqlRepo

Key = tuple[str, str]  # (agent_id, sif_msg_id)


class SqlMessages(SqlRepo):
    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        # What prefetch found for this transaction's keys (a group commit's): exists()
        # answers them without a statement each. Never outlives the transaction.
        self._known: dict[Key, bool] = {}

    async def exists(self, agent_id: str, sif_msg_id: str) -> bool:
        known = self._known.get((agent_id, sif_msg_id))
        if known is not None:
            return known
        query = select(messages.c.id).where(_message_key(agent_id, sif_msg_id)).limit(1)
        return (await self._execute(query)).first() is not None

    async def prefetch(self, keys: Sequence[Key]) -> None:
        """Look up whether each key was already accepted, in one statement per 250 keys."""
        unique = list(dict.fromkeys(keys))
        pair = tuple_(messages.c.agent_id, messages.c.sif_msg_id)
        for start in range(0, len(unique), IN_CHUNK // 2):
            chunk = unique[start : start + IN_CHUNK // 2]
            query = select(messages.c.agent_id, messages.c.sif_msg_id).where(pair.in_(chunk))
            found = {(r.agent_id, r.sif_msg_id) for r in (await self._execute(query)).all()}
            self._known.update({key: key in found for key in chunk})

    async def add_new(self, records: Sequence[MessageRecord]) -> set[str]:
        """Insert every record whose key is not there yet (ON CONFLICT DO NOTHING: a
        concurrent repeat waits for the first to commit); the ids of those inserted."""
        if not records:
            return set()
        statement = (
            self._insert(messages)
            .on_conflict_do_nothing(index_elements=["agent_id", "sif_msg_id"])
            .returning(messages.c.id)
        )
        rows = [_message_values(record) for record in records]
        return {str(i) for i in (await self._execute(statement, rows)).scalars().all()}

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
