"""In-memory hub.core.ports.Registrations."""

from __future__ import annotations

from hub.core.records import PacketRecord, Registration
from tests.fakes.state import FakeRepo


class FakeRegistrations(FakeRepo):
    async def get(self, agent_id: str, zone: str) -> Registration | None:
        return self._state.registrations.get((agent_id, zone))

    async def save(self, reg: Registration) -> None:
        self._state.registrations[(reg.agent_id, reg.zone)] = reg

    async def delete(self, agent_id: str, zone: str) -> None:
        self._state.registrations.pop((agent_id, zone), None)

    async def add_packet(self, packet: PacketRecord) -> None:
        # A resent packet replaces the earlier one.
        key = (packet.agent_id, packet.request_msg_id, packet.packet_number)
        self._state.packets[key] = packet

    async def packets(self, agent_id: str, request_msg_id: str) -> list[PacketRecord]:
        mine = [
            p
            for (agent, request, _), p in self._state.packets.items()
            if (agent, request) == (agent_id, request_msg_id)
        ]
        return sorted(mine, key=lambda p: p.packet_number)
