"""Every query the hub makes, behind the pipeline's `Tx` interface (hub.core.ports).

SqlTx speaks SQLAlchemy Core on one AsyncConnection that is already inside a transaction;
it never commits (SqlStore.transaction owns that). Core rather than the ORM: the dispatcher
moves hundreds of rows per batch and needs no identity map.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Executable, Select, Table, func, or_, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core.envelope import Action
from hub.core.records import (
    AuditRecord,
    DisclosureRecord,
    MessageRecord,
    OutboxRecord,
    PacketRecord,
    Registration,
    RejectionRecord,
    Stats,
)
from hub.store.errors import DuplicateMessage, unavailable_as_store_error
from hub.store.models import (
    LAST_ERROR_MAX,
    audit,
    learners,
    messages,
    outbox,
    registrations,
    rejections,
    response_packets,
)
from hub.store.models import (
    disclosures as disclosure_table,
)

# Rows and results of any width (SQLAlchemy 2.1 types them by column tuple).
AnyRow = Row[*tuple[Any, ...]]
AnyResult = CursorResult[*tuple[Any, ...]]
_REGISTRATION_KEY = ("agent_id", "zone")


def utcnow() -> datetime:
    return datetime.now(UTC)


def short_error(error: str) -> str:
    """First line only, capped: exception texts can quote payloads (personal data)."""
    first = error.strip().splitlines()[0] if error.strip() else "error"
    return first[:LAST_ERROR_MAX]


class SqlTx:
    """One open transaction; implements hub.core.ports.Tx."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"

    async def _execute(self, statement: Executable, params: Any = None) -> AnyResult:
        with unavailable_as_store_error():
            return await self._connection.execute(statement, params)

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """A dialect INSERT, which offers ON CONFLICT on both backends."""
        return postgresql.insert(table) if self._postgres else sqlite.insert(table)

    # -- messages ---------------------------------------------------------------------

    async def message_exists(self, agent_id: str, sif_msg_id: str) -> bool:
        query = select(messages.c.id).where(_message_key(agent_id, sif_msg_id)).limit(1)
        return (await self._execute(query)).first() is not None

    async def add_message(self, record: MessageRecord) -> None:
        # ON CONFLICT DO NOTHING rather than catching the violation: concurrent repeats
        # wait for the first to commit, and the transaction stays usable on PostgreSQL.
        statement = (
            self._insert(messages)
            .values(_message_values(record))
            .on_conflict_do_nothing(index_elements=["agent_id", "sif_msg_id"])
        )
        if (await self._execute(statement)).rowcount == 0:
            raise DuplicateMessage(f"{record.agent_id}/{record.sif_msg_id} already accepted")

    async def message_payload(self, message_id: str) -> bytes | None:
        query = select(messages.c.payload).where(messages.c.id == message_id)
        payload = (await self._execute(query)).scalar_one_or_none()
        return None if payload is None else bytes(payload)

    # -- outbox -----------------------------------------------------------------------

    async def add_outbox(self, items: Sequence[OutboxRecord]) -> None:
        if items:
            now = utcnow()
            await self._execute(outbox.insert(), [_outbox_values(item, now) for item in items])

    async def claim_outbox(
        self, limit: int, now: datetime, lease_seconds: float
    ) -> list[OutboxRecord]:
        lease_until = now + timedelta(seconds=lease_seconds)
        statement = (
            update(outbox)
            .where(outbox.c.seq_no.in_(self._claimable(limit, now)))
            .values(lease_until=lease_until)
            .returning(*outbox.c)
        )
        rows = (await self._execute(statement)).all()
        # RETURNING order is unspecified; FIFO is restored here.
        return [_outbox_record(row) for row in sorted(rows, key=lambda row: row.seq_no)]

    def _claimable(self, limit: int, now: datetime) -> Select[Any]:
        query = (
            select(outbox.c.seq_no)
            .where(_pending(), outbox.c.next_attempt_at <= now)
            .where(or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now))
            .order_by(outbox.c.seq_no)
            .limit(limit)
        )
        # Two dispatchers on PostgreSQL skip each other's rows instead of waiting;
        # SQLite serialises writers (BEGIN IMMEDIATE), so it needs no row locks.
        return query.with_for_update(skip_locked=True) if self._postgres else query

    async def complete_outbox(
        self, outbox_ids: Sequence[str], disclosures: Sequence[DisclosureRecord]
    ) -> None:
        if disclosures:
            rows = [_disclosure_values(record) for record in disclosures]
            await self._execute(disclosure_table.insert(), rows)
        if outbox_ids:
            statement = (
                update(outbox)
                .where(outbox.c.id.in_(list(outbox_ids)))
                .values(done_at=utcnow(), lease_until=None)
            )
            await self._execute(statement)

    async def retry_outbox(self, outbox_id: str, next_attempt_at: datetime, error: str) -> None:
        statement = (
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(
                attempts=outbox.c.attempts + 1,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_error=short_error(error),
            )
        )
        await self._execute(statement)

    # -- audit and rejections ---------------------------------------------------------

    async def add_audit(self, entry: AuditRecord) -> None:
        values = {
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "detail": dict(entry.detail),
        }
        await self._execute(audit.insert().values(values))

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

    # -- registrations ----------------------------------------------------------------

    async def registration(self, agent_id: str, zone: str) -> Registration | None:
        query = select(registrations).where(
            registrations.c.agent_id == agent_id, registrations.c.zone == zone
        )
        row = (await self._execute(query)).first()
        return None if row is None else _registration(row)

    async def save_registration(self, reg: Registration) -> None:
        values = _registration_values(reg)
        statement = self._insert(registrations).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=list(_REGISTRATION_KEY),
            set_={key: statement.excluded[key] for key in values if key not in _REGISTRATION_KEY},
        )
        await self._execute(statement)

    async def delete_registration(self, agent_id: str, zone: str) -> None:
        statement = sql_delete(registrations).where(
            registrations.c.agent_id == agent_id, registrations.c.zone == zone
        )
        await self._execute(statement)

    # -- response packets -------------------------------------------------------------

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

    # -- learners ---------------------------------------------------------------------

    async def remember_learner(self, refid: str, school: str | None, upn: str | None) -> None:
        if school is None and upn is None:
            return  # nothing learnt
        statement = self._insert(learners).values(
            refid=refid, school=school, upn=upn, updated_at=utcnow()
        )
        # Keep what we knew when this object does not say: a partial Change event must
        # not forget a pupil's school.
        statement = statement.on_conflict_do_update(
            index_elements=["refid"],
            set_={
                "school": func.coalesce(statement.excluded.school, learners.c.school),
                "upn": func.coalesce(statement.excluded.upn, learners.c.upn),
                "updated_at": statement.excluded.updated_at,
            },
        )
        await self._execute(statement)

    async def learner_school(self, refid: str) -> str | None:
        query = select(learners.c.school).where(learners.c.refid == refid)
        school = (await self._execute(query)).scalar_one_or_none()
        return None if school is None else str(school)

    # -- stats ------------------------------------------------------------------------

    async def stats(self) -> Stats:
        received_key = func.coalesce(messages.c.object_name, messages.c.kind)
        return Stats(
            received=await self._counts(received_key, messages),
            rejected=await self._rejected_counts(),
            routed=await self._counts(outbox.c.object_name, outbox, outbox.c.done_at.is_not(None)),
            delivered=await self._counts(disclosure_table.c.subscriber, disclosure_table),
            pending=await self._pending_count(),
        )

    async def _counts(
        self, key: ColumnElement[Any], table: Table, *where: ColumnElement[bool]
    ) -> dict[str, int]:
        query = select(key, func.count()).select_from(table).where(*where).group_by(key)
        return {str(row[0]): int(row[1]) for row in (await self._execute(query)).all()}

    async def _rejected_counts(self) -> dict[str, int]:
        keys = (rejections.c.category, rejections.c.code)
        query = select(*keys, func.count()).group_by(*keys)
        rows = (await self._execute(query)).all()
        return {f"{row[0]}/{row[1]}": int(row[2]) for row in rows}

    async def _pending_count(self) -> int:
        query = select(func.count()).select_from(outbox).where(_pending())
        return int((await self._execute(query)).scalar_one())


# -- row <-> record mapping -----------------------------------------------------------


def _message_key(agent_id: str, sif_msg_id: str) -> ColumnElement[bool]:
    return (messages.c.agent_id == agent_id) & (messages.c.sif_msg_id == sif_msg_id)


def _pending() -> ColumnElement[bool]:
    # Matches the partial index ix_outbox_pending (WHERE done_at IS NULL).
    return outbox.c.done_at.is_(None)


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


def _outbox_values(item: OutboxRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": item.id,
        "message_id": item.message_id,
        "seq": item.seq,
        "zone": item.zone,
        "source_agent": item.source_agent,
        "object_name": item.object_name,
        "action": str(item.action.value),
        "school": item.school,
        "subject_refid": item.subject_refid,
        "object_xml": item.object_xml,
        "attempts": item.attempts,
        "next_attempt_at": now,  # due at once
        "lease_until": None,
        "last_error": None,
        "done_at": None,
        "created_at": now,
    }


def _outbox_record(row: AnyRow) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        message_id=row.message_id,
        seq=row.seq,
        zone=row.zone,
        source_agent=row.source_agent,
        object_name=row.object_name,
        action=Action(row.action),
        school=row.school,
        subject_refid=row.subject_refid,
        object_xml=bytes(row.object_xml),
        attempts=row.attempts,
    )


def _disclosure_values(record: DisclosureRecord) -> dict[str, Any]:
    return {
        "outbox_id": record.outbox_id,
        "message_id": record.message_id,
        "copy_msg_id": record.copy_msg_id,
        "subscriber": record.subscriber,
        "agreement_id": record.agreement_id,
        "agreement_version": record.agreement_version,
        "object_name": record.object_name,
        "action": str(record.action.value),
        "school": record.school,
        "subject_refid": record.subject_refid,
        "published_at": record.published_at,
    }


def _registration_values(reg: Registration) -> dict[str, Any]:
    return {
        "agent_id": reg.agent_id,
        "zone": reg.zone,
        "mode": reg.mode,
        "versions": list(reg.versions),
        "max_buffer_size": reg.max_buffer_size,
        "registered_at": reg.registered_at,
        "provides": list(reg.provides),
        "subscribes": list(reg.subscribes),
    }


def _registration(row: AnyRow) -> Registration:
    return Registration(
        agent_id=row.agent_id,
        zone=row.zone,
        mode=row.mode,
        versions=tuple(row.versions),
        max_buffer_size=row.max_buffer_size,
        registered_at=row.registered_at,
        provides=tuple(row.provides),
        subscribes=tuple(row.subscribes),
    )


def _packet(row: AnyRow) -> PacketRecord:
    return PacketRecord(
        agent_id=row.agent_id,
        request_msg_id=row.request_msg_id,
        packet_number=row.packet_number,
        more_packets=bool(row.more_packets),
        message_id=row.message_id,
    )
