"""The agreements part of SqlStore (migration 0002) against real SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Select, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError

from hub.core.ports import AlreadyExists
from hub.core.records import (
    AgreementVersionRecord,
    ApprovalRecord,
    DisclosureRecord,
    HeldRecord,
    LifecycleRecord,
    OutboxRecord,
    PupilAccessRecord,
    SuppressionRecord,
)
from hub.store import SqlStore, open_store
from hub.store.engine import create_engine
from hub.store.migrate import alembic_config
from hub.store.models import held_copies
from hub.store.repos.disclosures import subject_access_query
from hub.store.repos.held import due_held_queries
from tests.integration.test_store import accept, count, message, new_id

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
# A lease already run out: claim_due returns what is due without holding it back.
PEEK = -1.0
UPN = "A123456789012"


class Boom(Exception):
    pass


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def version(agreement_id: str, number: int, *, widens: bool = False) -> AgreementVersionRecord:
    body = {"id": agreement_id, "rules": [{"object": "LearnerPersonal", "exclude": ["a/b"]}]}
    return AgreementVersionRecord(agreement_id, number, body, at(number), "ops:alice", widens)


def disclosure(
    item: OutboxRecord,
    *,
    upn: str | None = None,
    refid: str | None = None,
    published: datetime = T0,
    copy_msg_id: str | None = None,
) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id=item.id,
        message_id=item.message_id,
        copy_msg_id=copy_msg_id or new_id(),
        subscriber="la-send",
        agreement_id="dsa-1",
        agreement_version=2,
        object_name=item.object_name,
        action=item.action,
        school=item.school,
        subject_refid=refid,
        published_at=published,
        upn=upn,
        lawful_basis="UK GDPR Art 6(1)(e)",
        purpose="SEND casework",
        paths=("LearnerPersonal/PersonalInformation/Name", "LearnerPersonal/UPN"),
    )


def held(
    item: OutboxRecord,
    *,
    reason: str = "schedule",
    held_at: datetime = T0,
    release_after: datetime | None = None,
    agreement_id: str = "dsa-1",
) -> HeldRecord:
    return HeldRecord(new_id(), item.id, "la-send", agreement_id, reason, held_at, release_after)


async def outbox_rows(store: SqlStore, n: int = 1) -> list[OutboxRecord]:
    return await accept(store, message(), objects=n)


async def complete(store: SqlStore, *held_rows: HeldRecord) -> None:
    async with store.transaction() as tx:
        await tx.held.add(held_rows)


async def due(store: SqlStore, now: datetime, limit: int = 100) -> list[HeldRecord]:
    async with store.transaction() as tx:
        return await tx.held.claim_due(now, limit, PEEK)


# -- agreement versions ---------------------------------------------------------------


async def test_versions_round_trip_in_order(store: SqlStore) -> None:
    records = [version("dsa-b", 1), version("dsa-a", 2, widens=True), version("dsa-a", 1)]
    async with store.transaction() as tx:
        for record in records:
            await tx.agreements.add_version(record)
    async with store.transaction() as tx:
        listed = await tx.agreements.versions()
        only_a = await tx.agreements.versions("dsa-a")
        assert await tx.agreements.versions("dsa-x") == []
    assert listed == [records[2], records[1], records[0]]
    assert only_a == [records[2], records[1]]


async def test_duplicate_version_raises_and_leaves_the_transaction_usable(
    store: SqlStore,
) -> None:
    first = version("dsa-1", 1)
    async with store.transaction() as tx:
        await tx.agreements.add_version(first)
    async with store.transaction() as tx:
        with pytest.raises(AlreadyExists):
            await tx.agreements.add_version(dataclasses.replace(first, created_by="ops:mallory"))
        await tx.agreements.add_version(version("dsa-1", 2))  # same transaction, still usable
    async with store.transaction() as tx:
        stored = await tx.agreements.versions("dsa-1")
    assert [v.version for v in stored] == [1, 2]
    assert stored[0] == first  # the original is untouched


# -- lifecycle, approvals, pupil access -----------------------------------------------


async def test_lifecycle_upsert_replaces_the_row(store: SqlStore) -> None:
    live = LifecycleRecord("dsa-1", "live", "approved", at(0), "ops:alice", review_due=at(999))
    suspended = LifecycleRecord(
        "dsa-1", "suspended", "breach", at(5), "ops:bob", suspended_until=at(60)
    )
    other = LifecycleRecord("dsa-0", "draft", "new", at(1), "ops:alice")
    async with store.transaction() as tx:
        await tx.agreements.save_lifecycle(live)
        await tx.agreements.save_lifecycle(other)
        await tx.agreements.save_lifecycle(suspended)
    async with store.transaction() as tx:
        assert await tx.agreements.lifecycles() == [other, suspended]  # review_due cleared too


async def test_approvals_are_idempotent_and_ordered_by_time(store: SqlStore) -> None:
    first = ApprovalRecord("dsa-1", "8812345", 2, "head@school", at(10))
    async with store.transaction() as tx:
        await tx.agreements.add_approval(first)
        await tx.agreements.add_approval(
            ApprovalRecord("dsa-1", "8812345", 2, "dpo@school", at(20))
        )
        await tx.agreements.add_approval(
            ApprovalRecord("dsa-1", "8812345", 3, "head@school", at(5))
        )
        await tx.agreements.add_approval(ApprovalRecord("dsa-2", "8800001", 1, "head@other", at(1)))
    async with store.transaction() as tx:
        every = await tx.agreements.approvals()
        mine = await tx.agreements.approvals("dsa-1")
    assert [(a.agreement_id, a.version) for a in every] == [
        ("dsa-2", 1),
        ("dsa-1", 3),
        ("dsa-1", 2),
    ]
    assert mine[-1] == first  # the repeat kept the first receipt
    assert len(mine) == 2


async def test_pupil_access_upsert(store: SqlStore) -> None:
    only = PupilAccessRecord("dsa-1", "8812345", "only", ("R1", "R2"), at(0), "head@school")
    everyone = PupilAccessRecord("dsa-1", "8812345", "all", (), at(1), "dpo@school")
    other = PupilAccessRecord("dsa-1", "8800001", "all_except", ("R9",), at(2), "head@other")
    async with store.transaction() as tx:
        await tx.privacy.save_pupil_access(only)
        await tx.privacy.save_pupil_access(other)
        assert await tx.privacy.pupil_access("dsa-1") == [other, only]
        await tx.privacy.save_pupil_access(everyone)
    async with store.transaction() as tx:
        assert await tx.privacy.pupil_access() == [other, everyone]
        assert await tx.privacy.pupil_access("dsa-2") == []


# -- cohorts and suppressions ---------------------------------------------------------


async def test_replace_cohort_replaces_the_whole_set(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.privacy.replace_cohort("la-send", "ehcp", ["R1", "R2", "R2"])
        await tx.privacy.replace_cohort("la-send", "cin", ["R1"])
        await tx.privacy.replace_cohort("vs", "ehcp", ["R7"])
    async with store.transaction() as tx:
        await tx.privacy.replace_cohort("la-send", "ehcp", ["R3", "R2"])
    async with store.transaction() as tx:
        assert await tx.privacy.cohorts() == {
            ("la-send", "ehcp"): frozenset({"R2", "R3"}),
            ("la-send", "cin"): frozenset({"R1"}),
            ("vs", "ehcp"): frozenset({"R7"}),
        }
        await tx.privacy.replace_cohort("la-send", "cin", [])
        assert ("la-send", "cin") not in await tx.privacy.cohorts()


async def test_replace_cohort_is_part_of_the_transaction(store: SqlStore) -> None:
    async with store.transaction() as tx:
        await tx.privacy.replace_cohort("la-send", "ehcp", ["R1"])

    async def replace_then_fail() -> None:
        async with store.transaction() as tx:
            await tx.privacy.replace_cohort("la-send", "ehcp", ["R9"])
            raise Boom

    with pytest.raises(Boom):
        await replace_then_fail()
    async with store.transaction() as tx:
        assert await tx.privacy.cohorts() == {("la-send", "ehcp"): frozenset({"R1"})}


async def test_suppressions_lift_once(store: SqlStore) -> None:
    deceased = SuppressionRecord("s1", "R1", "deceased", at(0), "ops:alice")
    adopted = SuppressionRecord("s2", UPN, "adopted", at(1), "ops:alice")
    async with store.transaction() as tx:
        await tx.privacy.add_suppression(adopted)
        await tx.privacy.add_suppression(deceased)
        with pytest.raises(AlreadyExists):
            await tx.privacy.add_suppression(dataclasses.replace(deceased, learner="R2"))
        assert await tx.privacy.suppressions() == [deceased, adopted]
    async with store.transaction() as tx:
        assert await tx.privacy.lift_suppression("s1", at(10), "ops:bob", "recorded in error")
        assert not await tx.privacy.lift_suppression("s1", at(11), "ops:carol", "again")
        assert not await tx.privacy.lift_suppression("nope", at(11), "ops:carol", "unknown")
    async with store.transaction() as tx:
        assert await tx.privacy.suppressions() == [adopted]
        assert await tx.privacy.suppressions(active_only=False) == [
            dataclasses.replace(
                deceased, lifted_at=at(10), lifted_by="ops:bob", lift_reason="recorded in error"
            ),
            adopted,
        ]


# -- outbox, learners -----------------------------------------------------------------


async def test_outbox_item_and_learner_upns(store: SqlStore) -> None:
    (item,) = await outbox_rows(store)
    async with store.transaction() as tx:
        assert await tx.outbox.get(item.id) == item
        assert await tx.outbox.get("missing") is None
        await tx.learners.remember("R1", ["SCH1"], UPN)
        await tx.learners.remember("R2", ["SCH1"], None)  # no UPN known
        refids = ["R1", "R2", "R3", "R1"] + [f"X{n}" for n in range(1200)]  # several chunks
        assert await tx.learners.upns(refids) == {"R1": UPN}
        assert await tx.learners.upns([]) == {}


# -- held copies ----------------------------------------------------------------------


async def test_held_rows_are_written_with_the_outbox_completion(store: SqlStore) -> None:
    a, b = await outbox_rows(store, 2)

    async def complete_then_fail() -> None:
        async with store.transaction() as tx:
            await tx.disclosures.add([disclosure(a, refid="R1")])
            await tx.held.add([held(a)])
            await tx.outbox.complete([(a.id, T0)])
            raise Boom

    with pytest.raises(Boom):
        await complete_then_fail()
    for name in ("disclosures", "held_copies"):
        assert await count(store, name) == 0
    async with store.transaction() as tx:
        assert (await tx.disclosures.stats()).pending == 2

    kept = held(b, reason="suspended", release_after=None)
    async with store.transaction() as tx:
        await tx.disclosures.add([disclosure(a, refid="R1")])
        await tx.held.add([held(a), kept])
        await tx.outbox.complete([(a.id, T0), (b.id, T0)])
        assert (await tx.disclosures.stats()).pending == 0
    assert await count(store, "held_copies") == 2
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(held_copies).where(held_copies.c.id == kept.id))).one()
    assert (row.outbox_id, row.reason, row.held_at, row.settled_at) == (b.id, "suspended", T0, None)


async def test_due_held_selection(store: SqlStore) -> None:
    (item,) = await outbox_rows(store)
    open_window = held(item, release_after=at(30), held_at=at(1))
    closed_window = held(item, release_after=at(90), held_at=at(0))
    no_window = held(item, release_after=None, held_at=at(0))
    suspended = held(item, reason="suspended", held_at=at(2))
    other_suspended = held(item, reason="suspended", held_at=at(3), agreement_id="dsa-2")
    settled = held(item, release_after=at(0), held_at=at(0))
    await complete(store, open_window, closed_window, no_window, suspended, other_suspended)
    await complete(store, settled)
    async with store.transaction() as tx:
        await tx.held.settle([settled.id], "released", at(5))

    assert await due(store, at(29)) == []
    assert [h.id for h in await due(store, at(30))] == [open_window.id]  # release_after <= now
    async with store.transaction() as tx:
        assert await tx.held.decide("dsa-1", "release", T0) == 1
    got = await due(store, at(30))
    assert [h.id for h in got] == [open_window.id, suspended.id]  # oldest first
    assert got[1] == dataclasses.replace(suspended, decision="release")
    assert [h.id for h in await due(store, at(100))] == [
        closed_window.id,
        open_window.id,
        suspended.id,
    ]
    assert [h.id for h in await due(store, at(100), limit=1)] == [closed_window.id]
    assert await due(store, at(100), limit=0) == []


async def test_due_held_keeps_outbox_order_within_an_instant(store: SqlStore) -> None:
    items = await outbox_rows(store, 5)
    rows = [held(item, release_after=at(0)) for item in items]  # all held at T0
    await complete(store, *reversed(rows))
    assert [h.outbox_id for h in await due(store, at(1))] == [item.id for item in items]


async def test_decide_held_release_and_discard(store: SqlStore) -> None:
    (item,) = await outbox_rows(store)
    one = held(item, reason="suspended")
    two = held(item, reason="suspended", held_at=at(1))
    elsewhere = held(item, reason="suspended", agreement_id="dsa-2")
    scheduled = held(item, release_after=at(60))
    await complete(store, one, two, elsewhere, scheduled)
    async with store.transaction() as tx:
        assert await tx.held.summary() == {
            "dsa-1": {"suspended": 2, "schedule": 1},
            "dsa-2": {"suspended": 1},
        }
        with pytest.raises(ValueError, match="decision"):
            await tx.held.decide("dsa-1", "maybe", T0)
        assert await tx.held.decide("dsa-1", "discard", T0) == 2
        assert await tx.held.decide("dsa-1", "release", T0) == 0  # discarded rows are settled
        assert await tx.held.decide("dsa-3", "release", T0) == 0
    assert await due(store, at(1000)) == [scheduled]  # discarded copies never come back
    async with store.transaction() as tx:
        assert await tx.held.summary() == {"dsa-1": {"schedule": 1}, "dsa-2": {"suspended": 1}}
        await tx.held.settle([scheduled.id, elsewhere.id], "dropped", at(70))
        assert await tx.held.summary() == {}
        await tx.held.settle([], "released", at(70))
    async with store.engine.connect() as conn:
        outcomes = dict((await conn.execute(select(held_copies.c.id, held_copies.c.outcome))).all())
        settled_at = dict(
            (await conn.execute(select(held_copies.c.id, held_copies.c.settled_at))).all()
        )
    assert outcomes == {
        one.id: "discarded",
        two.id: "discarded",
        elsewhere.id: "dropped",
        scheduled.id: "dropped",
    }
    assert settled_at[scheduled.id] == at(70)
    assert settled_at[one.id] is not None


async def test_naive_datetimes_are_refused_by_held_queries(store: SqlStore) -> None:
    async def naive() -> None:
        async with store.transaction() as tx:
            await tx.held.claim_due(datetime.now(), 10, PEEK)

    with pytest.raises(StatementError, match="naive datetime"):
        await naive()


# -- disclosure log -------------------------------------------------------------------


async def test_disclosure_columns_round_trip(store: SqlStore) -> None:
    (item,) = await outbox_rows(store)
    record = dataclasses.replace(disclosure(item, upn=UPN, refid="R1"), acknowledged_at=at(3))
    async with store.transaction() as tx:
        await tx.disclosures.add([record])
        await tx.outbox.complete([(item.id, T0)])
    async with store.transaction() as tx:
        assert await tx.disclosures.for_subject(refid="R1") == [record]


async def test_subject_access_by_upn_finds_rows_recorded_with_only_a_refid(
    store: SqlStore,
) -> None:
    (item,) = await outbox_rows(store)
    by_upn = disclosure(item, upn=UPN, refid="R1", published=at(3))
    before_upn_known = disclosure(item, refid="R1", published=at(1))
    old_school_refid = disclosure(item, refid="R0", published=at(2))
    upn_only = disclosure(item, upn=UPN, published=at(4))
    someone_else = disclosure(item, upn="B999999999999", refid="R2", published=at(0))
    unknown_refid = disclosure(item, refid="R3", published=at(0))
    rows = [by_upn, before_upn_known, old_school_refid, upn_only, someone_else, unknown_refid]
    async with store.transaction() as tx:
        await tx.disclosures.add(rows)
        await tx.outbox.complete([(item.id, T0)])
        await tx.learners.remember("R1", ["SCH1"], UPN)
        await tx.learners.remember("R0", ["SCH0"], UPN)  # the same pupil at a previous school
        await tx.learners.remember("R2", ["SCH1"], "B999999999999")
    async with store.transaction() as tx:
        found = await tx.disclosures.for_subject(upn=UPN)
        assert found == [before_upn_known, old_school_refid, by_upn, upn_only]
        assert await tx.disclosures.for_subject(upn=UPN, limit=2) == [
            before_upn_known,
            old_school_refid,
        ]
        assert await tx.disclosures.for_subject(refid="R1") == [before_upn_known, by_upn]
        assert await tx.disclosures.for_subject(refid="R3") == [unknown_refid]
        assert await tx.disclosures.for_subject(upn="C000000000000") == []
        assert await tx.disclosures.for_subject(upn="C000000000000", refid="R3") == [unknown_refid]
        with pytest.raises(ValueError, match="upn"):
            await tx.disclosures.for_subject()


async def test_acknowledge_keeps_the_first_time(store: SqlStore) -> None:
    (item,) = await outbox_rows(store)
    rows = [disclosure(item, refid="R1", copy_msg_id=f"C{n}", published=at(n)) for n in range(3)]
    async with store.transaction() as tx:
        await tx.disclosures.add(rows)
        await tx.outbox.complete([(item.id, T0)])
    async with store.transaction() as tx:
        assert await tx.disclosures.acknowledge(["C0", "C1", "C0", "unknown"], at(10)) == 2
        assert await tx.disclosures.acknowledge(["C1", "C2"], at(20)) == 1
        assert await tx.disclosures.acknowledge([], at(30)) == 0
        found = await tx.disclosures.for_subject(refid="R1")
    assert [d.acknowledged_at for d in found] == [at(10), at(10), at(20)]


# -- migration and query plans --------------------------------------------------------


def _to_0001(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "0001")


async def test_disclosures_from_before_0002_are_kept_and_found(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to_0001)
            old = {
                "outbox_id": "o" * 32,
                "message_id": "m" * 32,
                "copy_msg_id": "C1",
                "subscriber": "la-send",
                "agreement_id": "dsa-1",
                "agreement_version": 1,
                "object_name": "LearnerPersonal",
                "action": "Add",
                "school": "SCH1",
                "subject_refid": "R1",
                "published_at": T0,
            }
            # Plain SQL: the model's insert would name the columns 0002 adds.
            columns = ", ".join(old)
            values = ", ".join(f":{name}" for name in old)
            await conn.execute(text(f"INSERT INTO disclosures ({columns}) VALUES ({values})"), old)
    finally:
        await engine.dispose()
    store = await open_store(database_url)  # upgrades to head
    try:
        async with store.transaction() as tx:
            await tx.learners.remember("R1", ["SCH1"], UPN)
            (found,) = await tx.disclosures.for_subject(upn=UPN)
        assert (found.copy_msg_id, found.upn, found.lawful_basis, found.paths) == (
            "C1",
            None,
            "",
            (),
        )
        assert found.published_at == T0
    finally:
        await store.close()


async def _plan(store: SqlStore, query: Select[object]) -> str:
    """The query plan as text; on PostgreSQL with sequential scans priced out, so the
    plan shows whether an index *can* answer (tiny test tables would never need one)."""
    async with store.engine.connect() as conn:
        dialect = conn.dialect
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if dialect.name == "sqlite":
            rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
            return "\n".join(str(row[-1]) for row in rows)
        await conn.exec_driver_sql("SET enable_seqscan = off")
        rows = (await conn.exec_driver_sql(f"EXPLAIN {sql}")).all()
        await conn.rollback()
        return "\n".join(str(row[0]) for row in rows)


async def test_subject_access_query_uses_both_indexes(store: SqlStore) -> None:
    plan = await _plan(store, subject_access_query(upn=UPN, refids=["R0", "R1"], limit=100))
    assert "ix_disclosures_upn" in plan, plan
    assert "ix_disclosures_subject_refid" in plan, plan
    assert "SCAN disclosures\n" not in plan + "\n", plan  # SQLite: no full table scan


async def test_due_held_queries_use_the_partial_indexes(store: SqlStore) -> None:
    due, released = due_held_queries(T0, 100)
    # The partial-index predicates are literals in the SQL sent, never parameters (a
    # generic prepared plan could not prove a parameter matches the index predicate).
    dialect = store.engine.dialect
    assert "release_after IS NOT NULL" in str(due.compile(dialect=dialect))
    assert "'release'" in str(released.compile(dialect=dialect))
    assert "ix_held_copies_due" in await _plan(store, due)
    assert "ix_held_copies_released" in await _plan(store, released)
