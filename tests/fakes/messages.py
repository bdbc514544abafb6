"""In-memory hub.core.ports.Messages."""

from __future__ import annotations

from hub.core.ports import DuplicateMessage
from hub.core.records import MessageRecord
from tests.fakes.state import FakeRepo


class FakeMessages(FakeRepo):
    async def exists(self, agent_id: str, sif_msg_id: str) -> bool:
        return any(
            m.agent_id == agent_id and m.sif_msg_id == sif_msg_id
            for m in self._state.messages.values()
        )

    async def add(self, record: MessageRecord) -> None:
        if await self.exists(record.agent_id, record.sif_msg_id):
            raise DuplicateMessage(f"{record.agent_id}/{record.sif_msg_id} already accepted")
        self._state.messages[record.id] = record

    async def payload(self, message_id: str) -> bytes | None:
        record = self._state.messages.get(message_id)
        return None if record is None else record.payload
