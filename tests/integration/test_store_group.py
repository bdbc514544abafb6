"""SqlStore.accept (group commit) against real SQLite and PostgreSQL: concurrent requests
share one transaction, every staged row is written, and duplicates (inside one group,
across groups, or committed by the ordinary transaction path) are answered as such."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select

from hub.core.ports import StoreUnavailable, Tx
from hub.core.records import AuditRecord, Learnt, Registration, Staged
from hub.store import SqlStore
from hub.store.models import audit, learner_schools, learners, messages, object_learners, outbox
from tests.integration.test_store import message, now, outbox_item

pytestmark = pytest.mark.integration

Stage = Callable[[Tx], Awaitable[Staged | None]]


def staged(sif_msg_id: str, *, learnt: tuple[Learnt, ...] = ()) -> Staged:
    record = message(sif_msg_id)
    entry = AuditRecord(now(), "agent:agent-1", "message.accepted", "zone-1", {"m": record.id})
    return Staged(
        message=record,
        outbox=(outbox_item(record),),
        audit=(entry,),
        learnt=learnt,
        at=now(),
    )


def stage_of(rows: Staged, seen: list[bool] | None = None) -> Stage:
    """As ingest stages an event: check the registration and look the key up first."""

    async def run(tx: Tx) -> Staged | None:
        if await tx.registrations.get("agent-1", "zone-1") is None:
            raise LookupError("not registered")
        duplicate = await tx.messages.exists("agent-1", rows.message.sif_msg_id)
        if seen is not None:
            seen.append(duplicate)
        return None if duplicate else rows

    return run


async def accept(store: SqlStore, rows: Staged, seen: list[bool] | None = None) -> bool:
    return await store.accept(
        stage_of(rows, seen), agent_id="agent-1", sif_msg_id=rows.message.sif_msg_id
    )


async def register(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.registrations.save(
            Registration("agent-1", "zone-1", "Push", ("2.*",), 65536, now())
        )


async def count(store: SqlStore, table: object) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_concurrent_requests_are_committed_in_one_group(store: SqlStore) -> None:
    await register(store)
    groups_before = store.group_commits
    results = await asyncio.gather(*(accept(store, staged(f"M{i}")) for i in range(25)))
    assert results == [True] * 25
    assert store.group_commits == groups_before + 1
    assert await count(store, messages) == 25
    assert await count(store, outbox) == 25
    assert await count(store, audit) == 25


async def test_duplicates_in_a_group_across_groups_and_paths(store: SqlStore) -> None:
    await register(store)
    async with store.transaction() as tx:  # accepted earlier through the ordinary path
        await tx.messages.add(message("OLD"))
    seen: list[bool] = []
    results = await asyncio.gather(
        accept(store, staged("NEW")),
        accept(store, staged("NEW")),
        accept(store, staged("OLD"), seen),
    )
    assert list(results) == [True, False, False]
    assert seen == [True]  # found by the group's one look-up, before its stage went on
    assert await accept(store, staged("NEW")) is False
    assert await count(store, messages) == 2
    assert await count(store, outbox) == 1


async def test_a_refused_request_leaves_the_others_committed(store: SqlStore) -> None:
    ok = staged("M1")

    async def unregistered(tx: Tx) -> Staged | None:
        raise LookupError("not registered")

    await register(store)
    results = await asyncio.gather(
        accept(store, ok),
        store.accept(unregistered, agent_id="agent-1", sif_msg_id="M2"),
        return_exceptions=True,
    )
    assert results[0] is True
    assert isinstance(results[1], LookupError)
    assert await count(store, messages) == 1


async def test_learners_and_objects_are_remembered_in_the_group(store: SqlStore) -> None:
    await register(store)
    first = staged("M1", learnt=(Learnt(learner="L1", schools=("S1",), upn="A123"),))
    second = staged(
        "M2",
        learnt=(
            Learnt(learner="L1", schools=("S1", "S2")),
            Learnt(learner="L2", object_refid="O1", object_name="LearnerAttendance"),
        ),
    )
    assert list(await asyncio.gather(accept(store, first), accept(store, second))) == [True, True]
    async with store.transaction() as tx:
        assert await tx.learners.schools("L1") == {"S1", "S2"}
        assert await tx.learners.upns(["L1"]) == {"L1": "A123"}
        assert await tx.learners.learners_of(["O1"]) == {"O1": "L2"}
    assert await count(store, learners) == 1
    assert await count(store, learner_schools) == 2
    assert await count(store, object_learners) == 1


async def test_an_outage_fails_the_whole_group_and_commits_nothing(store: SqlStore) -> None:
    await register(store)

    async def down(tx: Tx) -> Staged | None:
        raise StoreUnavailable("the connection went away")

    results = await asyncio.gather(
        accept(store, staged("M1")),
        store.accept(down, agent_id="agent-1", sif_msg_id="M2"),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert await count(store, messages) == 0
    assert await accept(store, staged("M1")) is True  # the agent's resend is accepted
