"""Agents registered in a zone, and the SIF_Response packets they send (implements
hub.core.ports.Registrations)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core.records import PacketRecord, Registration
from hub.store.models import registrations, response_packets
from hub.store.repos.base import AnyRow, SqlRepo, from_row, values_of

_REGISTRATION_KEY = ("agent_id", "zone")


class SqlRegistrations(SqlRepo):
    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        # Read once per transaction: a group commit checks many requests of few agents.
        # Kept for this transaction only, so a change by another hub process is seen by
        # the next one (no cache to invalidate across processes).
        self._read: dict[tuple[str, str], Registration | None] = {}

    async def get(self, agent_id: str, zone: str) -> Registration | None:
        if (agent_id, zone) in self._read:
            return self._read[(agent_id, zone)]
        query = select(registrations).where(
            registrations.c.agent_id == agent_id, registrations.c.zone == zone
        )
        row = (await self._execute(query)).first()
        found = self._read[(agent_id, zone)] = None if row is None else _registration(row)
        return found

    async def save(self, reg: Registration) -> None:
        self._read.pop((reg.agent_id, reg.zone), None)
        await self._upsert(registrations, _registration_values(reg), _REGISTRATION_KEY)

    async def delete(self, agent_id: str, zone: str) -> None:
        self._read.pop((agent_id, zone), None)
        statement = sql_delete(registrations).where(
            registrations.c.agent_id == agent_id, registrations.c.zone == zone
        )
        await self._execute(statement)

    async def add_packet(self, packet: PacketRecord) -> None:
        # A resent packet replaces the earlier one: the latest copy is the one to route.
        statement = self._insert(response_packets).values(
            agent_id=packet.agent_id,
            request_msg_id=packet.request_msg_id,
            packet_number=packet.packet_number,
            more_packets=packet.more_packets,
            message_id=packet.message_id,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["agent_id", "request_msg_id", "packet_number"],
            set_={
                "more_packets": statement.excluded.more_packets,
                "message_id": statement.excluded.message_id,
            },
        )
        await self._execute(statement)

    async def packets(self, agent_id: str, request_msg_id: str) -> list[PacketRecord]:
        query = (
            select(response_packets)
            .where(
                response_packets.c.agent_id == agent_id,
                response_packets.c.request_msg_id == request_msg_id,
            )
            .order_by(response_packets.c.packet_number)
        )
        return [_packet(row) for row in (await self._execute(query)).all()]


def _registration_values(reg: Registration) -> dict[str, Any]:
    return values_of(
        reg,
        versions=list(reg.versions),
        provides=list(reg.provides),
        subscribes=list(reg.subscribes),
    )


def _registration(row: AnyRow) -> Registration:
    return from_row(
        Registration,
        row,
        versions=tuple(row.versions),
        provides=tuple(row.provides),
        subscribes=tuple(row.subscribes),
    )


def _packet(row: AnyRow) -> PacketRecord:
    return from_row(PacketRecord, row, more_packets=bool(row.more_packets))
