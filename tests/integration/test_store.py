"""SqlStore against real SQLite and PostgreSQL (each test runs on both via `database_url`)."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError

from hub.core.envelope import Action, MessageKind
from hub.core.ports import DuplicateMessage, StoreUnavailable
from hub.core.records import (
    AuditRecord,
    DisclosureRecord,
    MessageRecord,
    OutboxRecord,
    PacketRecord,
    Registration,
    RejectionRecord,
)
from hub.store import SqlStore, migrate, open_store
from hub.store.models import LAST_ERROR_MAX, audit, messages, metadata, outbox
from tests.db_fixtures import sqlite_url

pytestmark = pytest.mark.integration

UNREACHABLE_PG = "postgresql+asyncpg://postgres@127.0.0.1:1/x"
LEASE = 30.0


class Boom(Exception):
    pass


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def message(
    sif_msg_id: str | None = None,
    *,
    agent_id: str = "agent-1",
    object_name: str | None = "LearnerPersonal",
) -> MessageRecord:
    return MessageRecord(
        id=new_id(),
        agent_id=agent_id,
        zone="zone-1",
        sif_msg_id=sif_msg_id or new_id().upper(),
        kind=MessageKind.EVENT,
        version="2.4",
        received_at=now(),
        payload=b"<SIF_Message/>",
        object_name=object_name,
        action=Action.ADD if object_name else None,
        school="SCH1",
    )


def outbox_item(msg: MessageRecord, seq: int = 0, refid: str = "R1") -> OutboxRecord:
    return OutboxRecord(
        id=new_id(),
        message_id=msg.id,
        seq=seq,
        zone=msg.zone,
        source_agent=msg.agent_id,
        object_name=msg.object_name or "LearnerPersonal",
        action=Action.ADD,
        school=msg.school,
        subject_refid=refid,
        object_xml=b"<LearnerPersonal/>",
    )


def audit_entry(subject: str) -> AuditRecord:
    return AuditRecord(at=now(), actor="agent-1", action="accept", subject=subject, detail={"n": 1})


def disclosure(item: OutboxRecord, subscriber: str) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id=item.id,
        message_id=item.message_id,
        copy_msg_id=new_id(),
        subscriber=subscriber,
        agreement_id="dsa-1",
        agreement_version=3,
        object_name=item.object_name,
        action=item.action,
        school=item.school,
        subject_refid=item.subject_refid,
        published_at=now(),
    )


async def accept(store: SqlStore, msg: MessageRecord, objects: int = 1) -> list[OutboxRecord]:
    """What ingest does: message + outbox + audit in one transaction."""
    items = [outbox_item(msg, seq) for seq in range(objects)]
    async with store.transaction() as tx:
        await tx.messages.add(msg)
        await tx.outbox.add(items)
        await tx.audit.add(audit_entry(msg.id))
    return items


async def count(store: SqlStore, table_name: str) -> int:
    query = select(func.count()).select_from(table(table_name))
    async with store.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def claim(store: SqlStore, at: datetime, limit: int = 100) -> list[OutboxRecord]:
    async with store.transaction() as tx:
        return await tx.outbox.claim(limit, at, LEASE)


async def write_audit(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.audit.add(audit_entry("x"))


# -- migrations -----------------------------------------------------------------------


async def test_migrate_is_idempotent(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)
    store = await open_store(database_url)
    try:
        assert await count(store, "alembic_version") == 1
        await accept(store, message())
    finally:
        await store.close()


def _schema_diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_migrations_match_models(store: SqlStore) -> None:
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(_schema_diff)
    assert diff == []


# -- transactions ---------------------------------------------------------------------


async def test_committed_message_outbox_and_audit_are_visible(store: SqlStore) -> None:
    msg = message()
    await accept(store, msg, objects=2)
    async with store.transaction() as tx:
        assert await tx.messages.exists(msg.agent_id, msg.sif_msg_id)
        assert await tx.messages.payload(msg.id) == msg.payload
    assert await count(store, "outbox") == 2
    assert await count(store, "audit") == 1


async def test_error_inside_transaction_leaves_nothing(store: SqlStore) -> None:
    async def accept_then_fail() -> None:
        msg = message()
        async with store.transaction() as tx:
            await tx.messages.add(msg)
            await tx.outbox.add([outbox_item(msg)])
            await tx.audit.add(audit_entry(msg.id))
            raise Boom

    with pytest.raises(Boom):
        await accept_then_fail()
    for name in ("messages", "outbox", "audit"):
        assert await count(store, name) == 0


async def test_duplicate_message_is_refused_and_stores_nothing(store: SqlStore) -> None:
    first = message("MSG-1")
    await accept(store, first)
    repeat = message("MSG-1")  # same agent and SIF_MsgId, new hub id

    async def accept_repeat() -> None:
        async with store.transaction() as tx:
            await tx.audit.add(audit_entry(repeat.id))  # written first: must vanish too
            await tx.messages.add(repeat)
            await tx.outbox.add([outbox_item(repeat)])

    with pytest.raises(DuplicateMessage):
        await accept_repeat()
    assert await count(store, "messages") == 1
    assert await count(store, "outbox") == 1
    assert await count(store, "audit") == 1
    async with store.transaction() as tx:
        assert await tx.messages.payload(repeat.id) is None


async def test_same_msg_id_from_another_agent_is_not_a_duplicate(store: SqlStore) -> None:
    await accept(store, message("MSG-1", agent_id="agent-1"))
    await accept(store, message("MSG-1", agent_id="agent-2"))
    assert await count(store, "messages") == 2


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    async def claim_naive() -> None:
        async with store.transaction() as tx:
            await tx.outbox.claim(10, datetime.now(), LEASE)

    with pytest.raises(StatementError, match="naive datetime"):
        await claim_naive()


# -- outbox ---------------------------------------------------------------------------


async def test_claim_is_fifo_and_skips_leased_rows(store: SqlStore) -> None:
    items = [item for _ in range(3) for item in await accept(store, message())]
    start = now()
    first = await claim(store, start, limit=2)
    assert [r.id for r in first] == [items[0].id, items[1].id]
    assert [r.id for r in await claim(store, start)] == [items[2].id]
    assert await claim(store, start + timedelta(seconds=LEASE - 1)) == []
    expired = await claim(store, start + timedelta(seconds=LEASE + 1))
    assert [r.id for r in expired] == [item.id for item in items]
    assert expired[0] == items[0]  # every field survives the round trip


async def test_claim_keeps_fifo_across_messages_and_objects(store: SqlStore) -> None:
    a = await accept(store, message(), objects=3)
    b = await accept(store, message(), objects=2)
    claimed = await claim(store, now())
    assert [(r.message_id, r.seq) for r in claimed] == [(i.message_id, i.seq) for i in a + b]


async def test_completed_rows_are_never_claimed_again(store: SqlStore) -> None:
    item, other = (await accept(store, message()))[0], (await accept(store, message()))[0]
    start = now()
    await claim(store, start)
    async with store.transaction() as tx:
        await tx.disclosures.add([disclosure(item, "la-send"), disclosure(item, "la-admissions")])
        assert await tx.outbox.complete([(item.id, start)]) == [item.id]
        assert await tx.outbox.complete([(item.id, start)]) == []  # settled once only
    later = start + timedelta(seconds=LEASE * 10)
    assert [r.id for r in await claim(store, later)] == [other.id]
    assert await count(store, "disclosures") == 2
    async with store.transaction() as tx:
        stats = await tx.disclosures.stats()
    assert stats.delivered == {"la-send": 1, "la-admissions": 1}
    assert stats.routed == {"LearnerPersonal": 1}
    assert stats.pending == 1


async def test_retry_delays_the_row_and_keeps_a_short_error(store: SqlStore) -> None:
    (item,) = await accept(store, message())
    start = now()
    await claim(store, start)
    secret = "connection reset\n<LearnerPersonal><UPN>A123</UPN></LearnerPersonal>"
    async with store.transaction() as tx:
        await tx.outbox.retry(item.id, start + timedelta(seconds=60), secret + "x" * 1000)
    assert await claim(store, start + timedelta(seconds=59)) == []
    (again,) = await claim(store, start + timedelta(seconds=61))
    assert again.id == item.id
    assert again.attempts == 1
    async with store.engine.connect() as conn:
        error = (await conn.execute(select(outbox.c.last_error))).scalar_one()
    assert error == "connection reset"
    assert len(error) <= LAST_ERROR_MAX


async def test_concurrent_claims_never_share_rows(store: SqlStore) -> None:
    for _ in range(10):
        await accept(store, message())
    start = now()
    results = await asyncio.gather(*(claim(store, start, limit=4) for _ in range(4)))
    claimed = [r.id for batch in results for r in batch]
    assert len(claimed) == 10
    assert len(set(claimed)) == 10


async def test_postgres_claims_skip_rows_locked_by_another_transaction(
    database_url: str, store: SqlStore
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite serialises whole transactions")
    items = [(await accept(store, message()))[0] for _ in range(4)]
    start = now()
    async with store.transaction() as holder:
        held = await holder.outbox.claim(2, start, LEASE)
        # The first claim is still uncommitted: its rows are locked, not yet leased.
        others = await asyncio.wait_for(claim(store, start), timeout=5)
    assert [r.id for r in held] == [i.id for i in items[:2]]
    assert [r.id for r in others] == [i.id for i in items[2:]]


# -- other tables ---------------------------------------------------------------------


async def test_stats_counts(store: SqlStore) -> None:
    await accept(store, message(), objects=2)
    await accept(store, message())
    await accept(store, message(object_name=None))
    async with store.transaction() as tx:
        await tx.audit.add_rejection(RejectionRecord(now(), "agent-1", "zone-1", 3, 2))
        await tx.audit.add_rejection(
            RejectionRecord(now(), None, "zone-1", 3, 2, "LearnerPersonal")
        )
        await tx.audit.add_rejection(RejectionRecord(now(), None, "zone-1", 1, 3))
    async with store.transaction() as tx:
        stats = await tx.disclosures.stats()
    assert stats.received == {"LearnerPersonal": 2, "SIF_Event": 1}
    assert stats.rejected == {"3/2": 2, "1/3": 1}
    assert stats.routed == {}
    assert stats.delivered == {}
    assert stats.pending == 4


async def test_learner_schools_are_only_added_and_a_none_upn_keeps_the_old(
    store: SqlStore,
) -> None:
    async with store.transaction() as tx:
        assert await tx.learners.schools("R1") == frozenset()
        assert await tx.learners.remember("R1", ["SCH1"], "A123456789012") is True
        assert await tx.learners.remember("R1", [], None) is False
        assert await tx.learners.remember("R1", [], "A123456789012") is False  # unchanged
        assert await tx.learners.remember("R1", [], "B123456789012") is True
    async with store.transaction() as tx:
        assert await tx.learners.schools("R1") == {"SCH1"}
        await tx.learners.remember("R1", ["SCH2", "SCH1"], None)
        assert await tx.learners.schools("R1") == {"SCH1", "SCH2"}
        assert await tx.learners.upns(["R1", "R2"]) == {"R1": "B123456789012"}
        await tx.learners.remember("R2", [], None)
        assert await tx.learners.schools("R2") == frozenset()


async def test_registration_round_trip(store: SqlStore) -> None:
    reg = Registration("agent-1", "zone-1", "Push", ("2.*", "2.4"), 1_000_000, now(), ("A",))
    async with store.transaction() as tx:
        await tx.registrations.save(reg)
        assert await tx.registrations.get("agent-1", "zone-1") == reg
        changed = Registration("agent-1", "zone-1", "Pull", ("2.4",), 5, now(), (), ("B", "C"))
        await tx.registrations.save(changed)
        assert await tx.registrations.get("agent-1", "zone-1") == changed
        await tx.registrations.delete("agent-1", "zone-1")
        assert await tx.registrations.get("agent-1", "zone-1") is None


async def test_packets_come_back_in_packet_order(store: SqlStore) -> None:
    msgs = [message() for _ in range(3)]
    async with store.transaction() as tx:
        for number, msg in zip((3, 1, 2), msgs, strict=True):
            await tx.messages.add(msg)
            await tx.registrations.add_packet(
                PacketRecord("agent-1", "REQ-1", number, number < 3, msg.id)
            )
        await tx.registrations.add_packet(
            PacketRecord("agent-1", "REQ-1", 1, True, msgs[1].id)
        )  # resent
        packets = await tx.registrations.packets("agent-1", "REQ-1")
        assert await tx.registrations.packets("agent-1", "REQ-2") == []
    assert [p.packet_number for p in packets] == [1, 2, 3]
    assert [p.more_packets for p in packets] == [True, True, False]


async def test_datetimes_come_back_aware_utc(store: SqlStore) -> None:
    msg = message()
    await accept(store, msg)
    async with store.engine.connect() as conn:
        received = (await conn.execute(select(messages.c.received_at))).scalar_one()
        at = (await conn.execute(select(audit.c.at))).scalar_one()
    assert received == msg.received_at
    assert received.utcoffset() == timedelta(0)
    assert at.tzinfo is not None


# -- outages --------------------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[SqlStore]:
    store = await open_store(UNREACHABLE_PG, migrate=False)
    try:
        yield store
    finally:
        await store.close()


async def test_unreachable_postgres_ping_fails_fast(unreachable: SqlStore) -> None:
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(unreachable.ping(), timeout=10)


async def test_unreachable_postgres_transaction_fails_fast(unreachable: SqlStore) -> None:
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(write_audit(unreachable), timeout=10)


async def test_unreachable_postgres_open_with_migrate_fails_fast() -> None:
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(open_store(UNREACHABLE_PG), timeout=10)


async def _silent_server() -> asyncio.Server:
    """Accepts TCP connections and never answers: a database that hangs, not refuses."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    return await asyncio.start_server(hold, "127.0.0.1", 0)


async def test_hanging_postgres_times_out_as_unavailable() -> None:
    server = await _silent_server()
    port = server.sockets[0].getsockname()[1]
    store = await open_store(f"postgresql://postgres@127.0.0.1:{port}/x", migrate=False)
    try:
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.ping(), timeout=10)
    finally:
        await store.close()
        server.close()
        await server.wait_closed()


async def test_read_only_sqlite_refuses_writes_as_unavailable(tmp_path: Path) -> None:
    await migrate(sqlite_url(tmp_path))
    read_only = f"sqlite+aiosqlite:///file:{tmp_path / 'hub.db'}?mode=ro&uri=true"
    store = await open_store(read_only, migrate=False)
    try:
        with pytest.raises(StoreUnavailable):
            await write_audit(store)
    finally:
        await store.close()


async def test_sqlite_in_vanished_directory_is_unavailable(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    store = await open_store(sqlite_url(directory), migrate=False)
    try:
        directory.rmdir()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await write_audit(store)
    finally:
        await store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
async def test_sqlite_in_unwritable_directory_is_unavailable(tmp_path: Path) -> None:
    directory = tmp_path / "locked"
    directory.mkdir()
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(StoreUnavailable):
            await open_store(sqlite_url(directory))
    finally:
        directory.chmod(stat.S_IRWXU)
