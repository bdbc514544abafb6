"""The store contract: the same behaviour assertions against SqlStore (SQLite and
PostgreSQL) and the in-memory FakeStore, so that the fake the pipeline unit tests use
cannot drift from the real store. One test per aggregate's main methods."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.core.envelope import Action, MessageKind
from hub.core.ports import AlreadyExists, DuplicateMessage, Store
from hub.core.records import (
    AdminUserRecord,
    AgreementVersionRecord,
    AlertEventRecord,
    AlertStateRecord,
    ApprovalRecord,
    AuditRecord,
    BacklogFigures,
    DisclosureRecord,
    ExportFileRecord,
    FeedItemRecord,
    FeedKeyRecord,
    HeldRecord,
    JourneyQuery,
    Learnt,
    LifecycleRecord,
    MessageRecord,
    OutboxRecord,
    PacketRecord,
    PupilAccessRecord,
    Registration,
    RejectionRecord,
    StagedRowRecord,
    Stats,
    SuppressionRecord,
    WebhookAttemptRecord,
)
from tests.db_fixtures import BACKENDS, fresh_database, migrated_store
from tests.fakes import FakeStore

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
# A lease already run out: claim_due returns what is due without holding it back.
PEEK = -1.0
UPN = "A123456789012"
OTHER_UPN = "B123456789012"
LEASE = 30.0


class Boom(Exception):
    pass


@pytest.fixture(params=[*BACKENDS, "fake"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "fake":
        yield FakeStore()
        return
    async with fresh_database(request.param, tmp_path) as url, migrated_store(url) as store:
        yield store


# -- records ---------------------------------------------------------------------------


def new_id() -> str:
    return uuid.uuid4().hex


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def message(
    *,
    agent_id: str = "agent-1",
    sif_msg_id: str | None = None,
    object_name: str | None = "LearnerPersonal",
) -> MessageRecord:
    return MessageRecord(
        id=new_id(),
        agent_id=agent_id,
        zone="zone-1",
        sif_msg_id=sif_msg_id or new_id().upper(),
        kind=MessageKind.EVENT,
        version="2.4",
        received_at=T0,
        payload=b"<SIF_Message/>",
        object_name=object_name,
        action=Action.ADD if object_name else None,
        school="SCH1",
    )


def outbox_item(msg: MessageRecord, seq: int, refid: str = "R1") -> OutboxRecord:
    return OutboxRecord(
        id=new_id(),
        message_id=msg.id,
        seq=seq,
        zone=msg.zone,
        source_agent=msg.agent_id,
        object_name="LearnerPersonal",
        action=Action.ADD,
        school=msg.school,
        subject_refid=refid,
        object_xml=b"<LearnerPersonal/>",
    )


def disclosure(
    *,
    refid: str | None = "R1",
    upn: str | None = None,
    published: datetime = T0,
    copy_msg_id: str | None = None,
    subscriber: str = "la-send",
) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id=new_id(),
        message_id=new_id(),
        copy_msg_id=copy_msg_id or new_id(),
        subscriber=subscriber,
        agreement_id="dsa-1",
        agreement_version=2,
        object_name="LearnerPersonal",
        action=Action.ADD,
        school="SCH1",
        subject_refid=refid,
        published_at=published,
        upn=upn,
        lawful_basis="UK GDPR Art 6(1)(e)",
        purpose="SEND casework",
        paths=("LearnerPersonal/UPN",),
    )


def held(
    outbox_id: str,
    *,
    reason: str = "schedule",
    held_at: datetime = T0,
    release_after: datetime | None = None,
    agreement_id: str = "dsa-1",
) -> HeldRecord:
    return HeldRecord(new_id(), outbox_id, "la-send", agreement_id, reason, held_at, release_after)


async def accept(store: Store, objects: int = 1) -> list[OutboxRecord]:
    """What ingest does: message + outbox + audit in one transaction."""
    msg = message()
    items = [outbox_item(msg, seq) for seq in range(objects)]
    async with store.transaction() as tx:
        await tx.messages.add(msg)
        await tx.outbox.add(items)
        await tx.audit.add(AuditRecord(T0, "agent:agent-1", "message.accepted", "zone-1"))
    return items


async def claim(store: Store, now: datetime, limit: int = 100) -> list[OutboxRecord]:
    async with store.transaction() as tx:
        return await tx.outbox.claim(limit, now, LEASE)


async def stats(store: Store) -> Stats:
    async with store.transaction() as tx:
        return await tx.disclosures.stats()


def ids(records: list[OutboxRecord] | list[HeldRecord]) -> list[str]:
    return [r.id for r in records]


# -- transactions and messages ---------------------------------------------------------


async def test_a_transaction_that_raises_leaves_no_trace(any_store: Store) -> None:
    msg = message()

    async def write_then_fail() -> None:
        async with any_store.transaction() as tx:
            await tx.messages.add(msg)
            await tx.outbox.add([outbox_item(msg, 0)])
            await tx.learners.remember("R1", ["SCH1"], UPN)
            await tx.audit.add_rejection(RejectionRecord(T0, "agent-1", "zone-1", 3, 2))
            await tx.disclosures.add([disclosure()])
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()
    async with any_store.transaction() as tx:
        assert not await tx.messages.exists(msg.agent_id, msg.sif_msg_id)
        assert await tx.learners.schools("R1") == frozenset()
        assert await tx.disclosures.for_subject(refid="R1") == []
    assert await stats(any_store) == Stats(
        received={}, rejected={}, routed={}, delivered={}, pending=0
    )


async def test_messages_refuse_a_repeat_and_keep_the_payload(any_store: Store) -> None:
    msg = message()
    async with any_store.transaction() as tx:
        assert not await tx.messages.exists(msg.agent_id, msg.sif_msg_id)
        await tx.messages.add(msg)
        with pytest.raises(DuplicateMessage):
            await tx.messages.add(dataclasses.replace(msg, id=new_id()))
        # Still usable after the refusal; another agent may reuse the SIF_MsgId.
        await tx.messages.add(message(agent_id="agent-2", sif_msg_id=msg.sif_msg_id))
    async with any_store.transaction() as tx:
        assert await tx.messages.exists(msg.agent_id, msg.sif_msg_id)
        assert await tx.messages.exists("agent-2", msg.sif_msg_id)
        assert not await tx.messages.exists("agent-3", msg.sif_msg_id)
        assert await tx.messages.payload(msg.id) == msg.payload
        assert await tx.messages.payload("unknown") is None
    assert (await stats(any_store)).received == {"LearnerPersonal": 2}


# -- outbox ----------------------------------------------------------------------------


async def test_outbox_claims_in_arrival_order_under_a_lease(any_store: Store) -> None:
    first = await accept(any_store, 2)
    second = await accept(any_store, 1)
    start = datetime.now(UTC)  # rows are due from when they were added (wall clock)
    assert await claim(any_store, start, limit=2) == first
    assert await claim(any_store, start) == second  # the first two are leased
    assert await claim(any_store, start + timedelta(seconds=LEASE)) == []  # lease not passed
    after_lease = start + timedelta(seconds=LEASE + 1)
    assert await claim(any_store, after_lease) == first + second
    assert await claim(any_store, after_lease, limit=0) == []


async def test_outbox_done_rows_are_never_claimed_and_retries_count(any_store: Store) -> None:
    done, failed = await accept(any_store, 2)
    start = datetime.now(UTC)
    await claim(any_store, start)
    async with any_store.transaction() as tx:
        await tx.outbox.complete([(done.id, T0)])
        await tx.outbox.retry(failed.id, start + timedelta(seconds=60), "BrokerUnavailable")
    retried = dataclasses.replace(failed, attempts=1)
    async with any_store.transaction() as tx:
        assert await tx.outbox.get(failed.id) == retried
        assert await tx.outbox.get(done.id) == done
        assert await tx.outbox.get("unknown") is None
    assert await claim(any_store, start + timedelta(seconds=59)) == []  # not due yet
    assert await claim(any_store, start + timedelta(seconds=60)) == [retried]  # lease cleared
    assert await claim(any_store, start + timedelta(days=1)) == [retried]
    figures = await stats(any_store)
    assert (figures.routed, figures.pending) == ({"LearnerPersonal": 1}, 1)
    async with any_store.transaction() as tx:
        await tx.outbox.complete([])  # nothing to do
        await tx.outbox.retry(failed.id, start, "again")
        assert await tx.outbox.get(failed.id) == dataclasses.replace(failed, attempts=2)


async def test_outbox_parks_a_failing_row_until_it_is_redriven(any_store: Store) -> None:
    row, other = await accept(any_store, 2)
    start = datetime.now(UTC)
    await claim(any_store, start)
    async with any_store.transaction() as tx:
        await tx.outbox.retry(row.id, start, "PublishError", park=True)
        await tx.outbox.retry(other.id, start, "BrokerUnavailable")
    later = start + timedelta(seconds=LEASE + 1)
    assert await claim(any_store, later) == [dataclasses.replace(other, attempts=1)]
    async with any_store.transaction() as tx:
        (parked,) = await tx.outbox.parked(10)
        assert (parked.id, parked.attempts, parked.last_error) == (row.id, 1, "PublishError")
        assert (parked.object_name, parked.message_id) == (row.object_name, row.message_id)
        assert (await tx.disclosures.stats()).parked == 1
        assert await tx.outbox.redrive(["unknown"], later) == []
        assert await tx.outbox.redrive(None, later) == [row.id]
        assert await tx.outbox.parked(10) == []
        assert (await tx.disclosures.stats()).parked == 0
    after = later + timedelta(seconds=LEASE + 1)
    assert await claim(any_store, after) == [
        dataclasses.replace(row, attempts=0),
        dataclasses.replace(other, attempts=1),
    ]


async def test_outbox_backlog_counts_waiting_and_parked_rows(any_store: Store) -> None:
    async with any_store.transaction() as tx:
        assert await tx.outbox.backlog() == BacklogFigures(waiting=0, oldest=None, parked=0)
    before = datetime.now(UTC)
    done, parked, waiting = await accept(any_store, 3)
    after = datetime.now(UTC)
    await claim(any_store, after)
    async with any_store.transaction() as tx:
        await tx.outbox.complete([(done.id, T0)])
        await tx.outbox.retry(parked.id, after, "PublishError", park=True)
        await tx.outbox.retry(waiting.id, after, "BrokerUnavailable")
    async with any_store.transaction() as tx:
        figures = await tx.outbox.backlog()
    assert (figures.waiting, figures.parked) == (1, 1)
    assert figures.oldest is not None and before <= figures.oldest <= after
    # A claimed row carries when the store took it (POST-to-publish is timed from it).
    (claimed,) = await claim(any_store, after + timedelta(days=1))
    assert (claimed.id, claimed.created_at) == (waiting.id, figures.oldest)


# -- registrations and packets ---------------------------------------------------------


async def test_registrations_and_response_packets(any_store: Store) -> None:
    reg = Registration("agent-1", "zone-1", "Push", ("2.*", "2.4"), 1_000_000, T0, ("A",))
    msgs = [message() for _ in range(3)]
    async with any_store.transaction() as tx:
        await tx.registrations.save(reg)
        assert await tx.registrations.get("agent-1", "zone-1") == reg
        assert await tx.registrations.get("agent-1", "zone-2") is None
        changed = Registration("agent-1", "zone-1", "Pull", ("2.4",), 5, at(1), (), ("B", "C"))
        await tx.registrations.save(changed)
        assert await tx.registrations.get("agent-1", "zone-1") == changed
        await tx.registrations.delete("agent-1", "zone-1")
        assert await tx.registrations.get("agent-1", "zone-1") is None
        for number, msg in zip((3, 1, 2), msgs, strict=True):
            await tx.messages.add(msg)
            packet = PacketRecord("agent-1", "REQ-1", number, number < 3, msg.id)
            await tx.registrations.add_packet(packet)
        resent = PacketRecord("agent-1", "REQ-1", 1, True, msgs[2].id)
        await tx.registrations.add_packet(resent)  # replaces packet 1
    async with any_store.transaction() as tx:
        packets = await tx.registrations.packets("agent-1", "REQ-1")
        assert await tx.registrations.packets("agent-1", "REQ-2") == []
    assert [(p.packet_number, p.more_packets, p.message_id) for p in packets] == [
        (1, True, msgs[2].id),
        (2, True, msgs[2].id),
        (3, False, msgs[0].id),
    ]


# -- learners --------------------------------------------------------------------------


async def test_learners_keep_what_is_known_when_told_nothing(any_store: Store) -> None:
    async with any_store.transaction() as tx:
        assert await tx.learners.schools("R1") == frozenset()
        assert await tx.learners.remember("R1", ["SCH1"], UPN) is True
        assert await tx.learners.remember("R1", [], None) is False
        assert await tx.learners.remember("R1", [], UPN) is False  # nothing new
        assert await tx.learners.remember("R1", [], OTHER_UPN) is True
    async with any_store.transaction() as tx:
        assert await tx.learners.schools("R1") == {"SCH1"}
        await tx.learners.remember("R1", ["SCH2"], None)
        await tx.learners.remember("R2", [], None)  # nothing learnt: no row
        await tx.learners.remember("R3", ["SCH1", "SCH1"], None)
        assert await tx.learners.schools("R1") == {"SCH1", "SCH2"}  # only ever added
        assert await tx.learners.schools("R2") == frozenset()
        assert await tx.learners.schools("R3") == {"SCH1"}
        assert await tx.learners.upns(["R1", "R2", "R3", "R9", "R1"]) == {"R1": OTHER_UPN}
        assert await tx.learners.upns([]) == {}


async def test_objects_remember_their_learner(any_store: Store) -> None:
    async with any_store.transaction() as tx:
        assert await tx.learners.remember_object("O1", "LearnerEntitlement", "R1") is True
        assert await tx.learners.remember_object("O1", "LearnerEntitlement", "R1") is False
        assert await tx.learners.remember_object("O2", "LearnerAttendance", "R2") is True
    async with any_store.transaction() as tx:
        assert await tx.learners.learners_of(["O1", "O2", "O3"]) == {"O1": "R1", "O2": "R2"}
        assert await tx.learners.remember_object("O1", "LearnerEntitlement", "R9") is True
        assert await tx.learners.learners_of(["O1"]) == {"O1": "R9"}
        assert await tx.learners.learners_of([]) == {}


async def test_learners_and_objects_are_remembered_many_at_once(any_store: Store) -> None:
    async with any_store.transaction() as tx:
        await tx.learners.remember("R1", ["SCH1"], UPN)
        await tx.learners.remember_object("O1", "LearnerAttendance", "R1")
        told = [
            Learnt(learner="R1", schools=("SCH2",), upn=UPN),
            Learnt(learner="R2", schools=("SCH1",)),
            Learnt(learner="R3", upn=OTHER_UPN),
            Learnt(learner="R3", schools=("SCH1",), upn=OTHER_UPN),
            Learnt(learner="R1"),
            Learnt(learner="R1", object_refid="O1", object_name="LearnerAttendance"),
            Learnt(learner="R2", object_refid="O2", object_name="LearnerAttendance"),
            Learnt(learner="R3", object_refid="O3", object_name="LearnerExclusion"),
            Learnt(learner="R2", object_refid="O2", object_name="LearnerAttendance"),
        ]
        learners, objects = await tx.learners.remember_many(told)
        assert sorted(learners) == ["R3"]  # R1's UPN is known, R2 has none
        assert sorted(objects) == ["O2", "O3"]  # O1's learner is known
        assert await tx.learners.remember_many([]) == ([], [])
        moved = [Learnt(learner="R9", object_refid="O1", object_name="LearnerAttendance")]
        assert await tx.learners.remember_many(moved) == ([], ["O1"])
    async with any_store.transaction() as tx:
        assert await tx.learners.schools("R1") == {"SCH1", "SCH2"}
        assert await tx.learners.schools("R2") == {"SCH1"}
        assert await tx.learners.schools("R3") == {"SCH1"}
        assert await tx.learners.upns(["R1", "R2", "R3"]) == {"R1": UPN, "R3": OTHER_UPN}
        assert await tx.learners.learners_of(["O1", "O2", "O3"]) == {
            "O1": "R9",
            "O2": "R2",
            "O3": "R3",
        }


async def test_a_learners_former_upns_are_kept(any_store: Store) -> None:
    async with any_store.transaction() as tx:
        await tx.learners.remember("R1", [], UPN)
        await tx.learners.remember("R1", [], None)  # a partial Change forgets nothing
        assert await tx.learners.former_upns(["R1"]) == {}
        await tx.learners.remember("R1", [], OTHER_UPN)
        await tx.learners.remember_many([Learnt(learner="R2", upn=UPN)])
        await tx.learners.remember_many([Learnt(learner="R2", upn=OTHER_UPN)])
    async with any_store.transaction() as tx:
        assert await tx.learners.upns(["R1", "R2"]) == {"R1": OTHER_UPN, "R2": OTHER_UPN}
        assert await tx.learners.former_upns(["R1", "R2", "R3"]) == {
            "R1": frozenset({UPN}),
            "R2": frozenset({UPN}),
        }
        await tx.learners.remember("R1", [], UPN)  # back to the first: the other is former
        assert await tx.learners.former_upns(["R1"]) == {"R1": frozenset({OTHER_UPN})}


async def test_copies_awaiting_identity_wake_for_many_objects_at_once(any_store: Store) -> None:
    msg = message()
    items = [dataclasses.replace(outbox_item(msg, n), object_refid=f"O{n}") for n in range(3)]
    async with any_store.transaction() as tx:
        await tx.messages.add(msg)
        await tx.outbox.add(items)
        waiting = [held(item.id, reason="identity") for item in items]
        await tx.held.add(waiting)
        woken = await tx.held.wake_identities(at(5), learners=[], object_refids=["O0", "O2", "O9"])
        assert woken == 2
        assert await tx.held.wake_identities(at(6), learners=[], object_refids=[]) == 0
        due = await tx.held.claim_due(at(10), 10, PEEK)
    assert sorted(h.id for h in due) == sorted([waiting[0].id, waiting[2].id])


# -- agreements ------------------------------------------------------------------------


def version(agreement_id: str, number: int) -> AgreementVersionRecord:
    body = {"id": agreement_id, "rules": [{"object": "LearnerPersonal", "exclude": ["a/b"]}]}
    return AgreementVersionRecord(agreement_id, number, body, at(number), "ops:alice", number > 1)


async def test_agreement_versions_lifecycles_and_approvals(any_store: Store) -> None:
    b1, a2, a1 = version("dsa-b", 1), version("dsa-a", 2), version("dsa-a", 1)
    live = LifecycleRecord("dsa-b", "live", "config", at(0), "config", review_due=at(900))
    suspended = LifecycleRecord("dsa-b", "suspended", "breach", at(5), "ops:bob", at(60))
    other = LifecycleRecord("dsa-a", "draft", "config", at(0), "config")
    first = ApprovalRecord("dsa-a", "8812345", 1, "head@school", at(10))
    async with any_store.transaction() as tx:
        for record in (b1, a2, a1):
            await tx.agreements.add_version(record)
        with pytest.raises(AlreadyExists):
            await tx.agreements.add_version(dataclasses.replace(a1, created_by="ops:mallory"))
        await tx.agreements.save_lifecycle(live)
        await tx.agreements.save_lifecycle(other)
        await tx.agreements.save_lifecycle(suspended)  # replaces live
        await tx.agreements.add_approval(first)
        await tx.agreements.add_approval(dataclasses.replace(first, approved_by="dpo@school"))
        await tx.agreements.add_approval(ApprovalRecord("dsa-a", "8812345", 2, "head", at(5)))
        await tx.agreements.add_approval(ApprovalRecord("dsa-b", "8800001", 1, "head", at(1)))
    async with any_store.transaction() as tx:
        assert await tx.agreements.versions() == [a1, a2, b1]
        assert await tx.agreements.versions("dsa-a") == [a1, a2]
        assert await tx.agreements.versions("dsa-x") == []
        assert await tx.agreements.lifecycles() == [other, suspended]
        every = await tx.agreements.approvals()
        mine = await tx.agreements.approvals("dsa-a")
    assert [(a.agreement_id, a.version, a.approved_by) for a in every] == [
        ("dsa-b", 1, "head"),
        ("dsa-a", 2, "head"),
        ("dsa-a", 1, "head@school"),  # the first receipt is kept
    ]
    assert mine == [every[1], every[2]]


# -- privacy ---------------------------------------------------------------------------


async def test_pupil_access_and_cohorts_are_replaced(any_store: Store) -> None:
    only = PupilAccessRecord("dsa-1", "8812345", "only", ("R1", "R2"), at(0), "config")
    other = PupilAccessRecord("dsa-1", "8800001", "all", (), at(0), "config")
    everyone = dataclasses.replace(only, mode="all", learners=(), changed_at=at(5))
    async with any_store.transaction() as tx:
        await tx.privacy.save_pupil_access(only)
        await tx.privacy.save_pupil_access(other)
        await tx.privacy.save_pupil_access(everyone)
        await tx.privacy.replace_cohort("la-send", "ehcp", ["R1", "R2", "R2"])
        await tx.privacy.replace_cohort("la-send", "cin", ["R1"])
        await tx.privacy.replace_cohort("vs", "ehcp", ["R7"])
    async with any_store.transaction() as tx:
        assert await tx.privacy.pupil_access() == [other, everyone]
        assert await tx.privacy.pupil_access("dsa-2") == []
        await tx.privacy.replace_cohort("la-send", "ehcp", ["R3", "R2"])
        await tx.privacy.replace_cohort("la-send", "cin", [])  # emptied: not listed
        assert await tx.privacy.cohorts() == {
            ("la-send", "ehcp"): frozenset({"R2", "R3"}),
            ("vs", "ehcp"): frozenset({"R7"}),
        }


async def test_suppressions_are_lifted_once(any_store: Store) -> None:
    adopted = SuppressionRecord("s2", "R2", "adopted", at(1), "ops:alice")
    deceased = SuppressionRecord("s1", "R1", "deceased", at(0), "ops:alice")
    async with any_store.transaction() as tx:
        await tx.privacy.add_suppression(adopted)
        await tx.privacy.add_suppression(deceased)
        with pytest.raises(AlreadyExists):
            await tx.privacy.add_suppression(dataclasses.replace(deceased, learner="R9"))
        assert await tx.privacy.suppressions() == [deceased, adopted]
    async with any_store.transaction() as tx:
        assert await tx.privacy.lift_suppression("s1", at(10), "ops:bob", "recorded in error")
        assert not await tx.privacy.lift_suppression("s1", at(11), "ops:carol", "again")
        assert not await tx.privacy.lift_suppression("nope", at(11), "ops:carol", "unknown")
    lifted = dataclasses.replace(
        deceased, lifted_at=at(10), lifted_by="ops:bob", lift_reason="recorded in error"
    )
    async with any_store.transaction() as tx:
        assert await tx.privacy.suppressions() == [adopted]
        assert await tx.privacy.suppressions(active_only=False) == [lifted, adopted]


# -- admin users -----------------------------------------------------------------------


def admin_user(name: str, key_id: str, role: str = "operator") -> AdminUserRecord:
    return AdminUserRecord(
        name=name, role=role, key_id=key_id, secret_hash=f"hash-{key_id}", created_at=at(0)
    )


async def test_admin_users_are_found_by_key_rotated_and_revoked(any_store: Store) -> None:
    jo, sam = admin_user("jo", "k1"), admin_user("sam", "k2", role="dpo")
    async with any_store.transaction() as tx:
        await tx.admin_users.add(sam)
        await tx.admin_users.add(jo)
        with pytest.raises(AlreadyExists):  # a taken name, whatever else differs
            await tx.admin_users.add(admin_user("jo", "k9", role="admin"))
        with pytest.raises(AlreadyExists):  # a taken key id
            await tx.admin_users.add(admin_user("alex", "k1"))
        assert await tx.admin_users.all() == [jo, sam]
    async with any_store.transaction() as tx:
        assert await tx.admin_users.by_key("k1") == jo
        assert await tx.admin_users.get("sam") == sam
        assert await tx.admin_users.by_key("k9") is None and await tx.admin_users.get("x") is None
        assert await tx.admin_users.rotate("jo", "k3", "hash-k3", at(5))
        assert not await tx.admin_users.rotate("nobody", "k4", "hash-k4", at(5))
    rotated = dataclasses.replace(jo, key_id="k3", secret_hash="hash-k3", rotated_at=at(5))
    async with any_store.transaction() as tx:
        assert await tx.admin_users.by_key("k1") is None  # the old key finds no one
        assert await tx.admin_users.by_key("k3") == rotated
        assert await tx.admin_users.revoke("jo", at(6))
        assert not await tx.admin_users.revoke("jo", at(7))  # once
        assert not await tx.admin_users.rotate("jo", "k5", "hash-k5", at(8))  # revoked: for good
        assert not await tx.admin_users.revoke("nobody", at(7))
    async with any_store.transaction() as tx:
        assert await tx.admin_users.get("jo") == dataclasses.replace(rotated, revoked_at=at(6))
        assert (await tx.admin_users.by_key("k3")) == dataclasses.replace(rotated, revoked_at=at(6))


# -- held copies -----------------------------------------------------------------------


async def test_held_copies_due_decide_settle(any_store: Store) -> None:
    (item,) = await accept(any_store)
    open_window = held(item.id, release_after=at(30), held_at=at(1))
    closed_window = held(item.id, release_after=at(90), held_at=at(0))
    suspended = held(item.id, reason="suspended", held_at=at(2))
    discarded = held(item.id, reason="suspended", held_at=at(3))
    elsewhere = held(item.id, reason="suspended", held_at=at(3), agreement_id="dsa-2")
    settled = held(item.id, release_after=at(0), held_at=at(0))
    async with any_store.transaction() as tx:
        await tx.held.add([open_window, closed_window, suspended, elsewhere, settled])
        await tx.held.settle([settled.id], "released", at(5))
        assert await tx.held.summary() == {
            "dsa-1": {"schedule": 2, "suspended": 1},
            "dsa-2": {"suspended": 1},
        }
        assert await tx.held.claim_due(at(29), 10, PEEK) == []
        assert await tx.held.claim_due(at(30), 10, PEEK) == [open_window]  # release_after <= now
        with pytest.raises(ValueError, match="decision"):
            await tx.held.decide("dsa-1", "maybe", T0)
        assert await tx.held.decide("dsa-1", "release", T0) == 1
        assert await tx.held.decide("dsa-3", "release", T0) == 0
        released = dataclasses.replace(suspended, decision="release")
        assert await tx.held.claim_due(at(30), 10, PEEK) == [open_window, released]  # oldest first
        assert ids(await tx.held.claim_due(at(100), 10, PEEK)) == ids(
            [closed_window, open_window, released]
        )
        assert await tx.held.claim_due(at(100), 1, PEEK) == [closed_window]
        assert await tx.held.claim_due(at(100), 0, PEEK) == []
        await tx.held.settle([open_window.id, closed_window.id, released.id], "released", at(100))
        await tx.held.add([discarded])
        assert await tx.held.decide("dsa-1", "discard", T0) == 1
        assert await tx.held.decide("dsa-1", "release", T0) == 0  # discarded copies are settled
        assert await tx.held.claim_due(at(100), 10, PEEK) == []
        assert await tx.held.summary() == {"dsa-2": {"suspended": 1}}
        await tx.held.settle([], "released", at(100))


async def test_held_copies_of_one_instant_keep_arrival_order(any_store: Store) -> None:
    items = await accept(any_store, 5)
    rows = [held(item.id, release_after=at(0)) for item in items]  # all held at T0
    async with any_store.transaction() as tx:
        await tx.held.add(list(reversed(rows)))
        assert [h.outbox_id for h in await tx.held.claim_due(at(1), 10, PEEK)] == ids(items)


# -- disclosure log --------------------------------------------------------------------


async def test_disclosures_subject_access_and_acknowledgement(any_store: Store) -> None:
    by_upn = disclosure(upn=UPN, refid="R1", published=at(3))
    before_upn_known = disclosure(refid="R1", published=at(1), copy_msg_id="C1")
    old_school_refid = disclosure(refid="R0", published=at(2), copy_msg_id="C2")
    upn_only = disclosure(upn=UPN, refid=None, published=at(4))
    someone_else = disclosure(upn=OTHER_UPN, refid="R2", published=at(0))
    unknown_refid = disclosure(refid="R3", published=at(0), subscriber="vs")
    rows = [by_upn, before_upn_known, old_school_refid, upn_only, someone_else, unknown_refid]
    async with any_store.transaction() as tx:
        await tx.disclosures.add(rows)
        await tx.disclosures.add([])
        await tx.learners.remember("R1", ["SCH1"], UPN)
        await tx.learners.remember("R0", ["SCH0"], UPN)  # the same pupil at a previous school
        await tx.learners.remember("R2", ["SCH1"], OTHER_UPN)
    async with any_store.transaction() as tx:
        found = await tx.disclosures.for_subject(upn=UPN)
        assert found == [before_upn_known, old_school_refid, by_upn, upn_only]
        assert await tx.disclosures.for_subject(upn=UPN, limit=2) == found[:2]
        assert await tx.disclosures.for_subject(refid="R1") == [before_upn_known, by_upn]
        assert await tx.disclosures.for_subject(upn="C000000000000") == []
        either = await tx.disclosures.for_subject(upn="C000000000000", refid="R3")
        assert either == [unknown_refid]
        with pytest.raises(ValueError, match="upn"):
            await tx.disclosures.for_subject()
        assert await tx.disclosures.acknowledge(["C1", "C2", "C1", "unknown"], at(10)) == 2
        assert await tx.disclosures.acknowledge(["C2"], at(20)) == 0  # the first is kept
        assert await tx.disclosures.acknowledge([], at(30)) == 0
        assert await tx.disclosures.logged(["C1", "C2", "C1", "unknown"]) == {"C1", "C2"}
        assert await tx.disclosures.logged([]) == set()
        acked = await tx.disclosures.for_subject(refid="R1")
    assert [d.acknowledged_at for d in acked] == [at(10), None]
    assert (await stats(any_store)).delivered == {"la-send": 5, "vs": 1}


async def test_disclosures_recorded_says_which_copies_are_written_and_acknowledged(
    any_store: Store,
) -> None:
    async with any_store.transaction() as tx:
        await tx.disclosures.add([disclosure(copy_msg_id="C1"), disclosure(copy_msg_id="C2")])
        await tx.disclosures.acknowledge(["C2"], at(1))
    async with any_store.transaction() as tx:
        found = await tx.disclosures.recorded(["C1", "C2", "C3", "C1"])
        assert found == {"C1": False, "C2": True}
        assert await tx.disclosures.recorded([]) == {}


def attempt(
    copy: str, n: int, subscriber: str = "hr", outcome: str = "retry"
) -> WebhookAttemptRecord:
    return WebhookAttemptRecord(
        copy_msg_id=copy,
        subscriber=subscriber,
        attempt=n,
        attempted_at=at(n),
        outcome=outcome,
        status_code=500 if outcome == "retry" else 200,
        error="http_500" if outcome == "retry" else None,
        retry_in_ms=10_000 if outcome == "retry" else None,
    )


async def test_webhook_secrets_are_replaced_and_attempts_listed_newest_first(
    any_store: Store,
) -> None:
    rows = [attempt("C1", 1), attempt("C1", 2, outcome="delivered"), attempt("C2", 1, "other")]
    async with any_store.transaction() as tx:
        assert await tx.webhooks.secret("hr") is None
        await tx.webhooks.save_secret("hr", b"sealed-1", at(0))
        await tx.webhooks.save_secret("hr", b"sealed-2", at(1))
        for row in rows:
            await tx.webhooks.add_attempt(row)
    async with any_store.transaction() as tx:
        assert await tx.webhooks.secret("hr") == b"sealed-2"
        assert await tx.webhooks.attempts(subscriber="hr") == [rows[1], rows[0]]
        assert await tx.webhooks.attempts(copy_msg_id="C2") == [rows[2]]
        assert await tx.webhooks.attempts(limit=1) == [rows[2]]
        purged = await tx.retention.purge_records(
            rejections_before=T0, accountability_before=at(1.5), limit=100, dry_run=False
        )
        assert purged.webhook_attempts == 2
        assert await tx.webhooks.attempts() == [rows[1]]


def staged(copy_id: str, minutes: float, subscriber: str = "capita") -> StagedRowRecord:
    return StagedRowRecord(
        copy_msg_id=copy_id,
        subscriber=subscriber,
        object_name="LearnerPersonal",
        action="Add",
        agreement_id="DSA-1",
        agreement_version=2,
        cells={"UPN": "A123456789012", "Surname": ""},
        staged_at=at(minutes),
    )


def export_file(seq: int, rows: int, purge_minutes: float) -> ExportFileRecord:
    return ExportFileRecord(
        id=new_id(),
        subscriber="capita",
        seq=seq,
        directory="/exports",
        file_name=f"capita-{seq}.csv",
        manifest_name=f"capita-{seq}.csv.manifest.json",
        rows=rows,
        counts={"LearnerPersonal": rows},
        agreements=["DSA-1@2"],
        sha256="0" * 64,
        size_bytes=123,
        created_at=at(5),
        purge_after=at(purge_minutes),
    )


async def test_exports_stage_once_cut_once_and_purge_with_their_rows(any_store: Store) -> None:
    first, second = export_file(1, 2, 60), export_file(2, 1, 120)
    async with any_store.transaction() as tx:
        assert await tx.exports.waiting("capita") == (0, None)
        await tx.exports.stage([staged("C2", 2), staged("C1", 1)])
        await tx.exports.stage([staged("C1", 3), staged("O1", 1, subscriber="other")])
        await tx.exports.stage([])
    async with any_store.transaction() as tx:  # C1 re-sent: it keeps its first row
        assert await tx.exports.waiting("capita") == (2, at(2))
        assert [r.copy_msg_id for r in await tx.exports.pending("capita", 10)] == ["C1", "C2"]
        assert await tx.exports.pending("capita", 1) == [staged("C1", 1)]
        assert await tx.exports.last_seq("capita") == 0
        assert await tx.exports.add_file(first, ["C1", "C2"]) == 2
    async with any_store.transaction() as tx:
        await tx.exports.stage([staged("C3", 4)])
        assert await tx.exports.add_file(second, ["C1", "C3"]) == 1  # C1 is in a file already
        assert await tx.exports.waiting("capita") == (0, None)
        assert await tx.exports.last_seq("capita") == 2
        assert await tx.exports.files("capita") == [second, first]
        assert await tx.exports.file(first.id) == first
        assert await tx.exports.file("nope") is None
        assert await tx.exports.expired(at(90), 10) == [first]
        assert await tx.exports.delete_files([first.id]) == 2
    async with any_store.transaction() as tx:
        assert await tx.exports.files("capita") == [second]
        assert await tx.exports.file(first.id) is None
        assert await tx.exports.waiting("other") == (1, at(1))
        # A row no file took (its subscriber stopped taking files) goes after the cut-off.
        assert await tx.exports.purge_waiting(at(1), 10, dry_run=False) == 0
        assert await tx.exports.purge_waiting(at(2), 10, dry_run=True) == 1
        assert await tx.exports.waiting("other") == (1, at(1))
        assert await tx.exports.purge_waiting(at(2), 10, dry_run=False) == 1
        assert await tx.exports.waiting("other") == (0, None)
        assert await tx.exports.files("capita") == [second]  # filed rows are not touched


def feed_item(copy: str, subscriber: str = "vs", purge_days: float = 30) -> FeedItemRecord:
    return FeedItemRecord(
        subscriber=subscriber,
        copy_msg_id=copy,
        object_name="LearnerAttendance",
        refid="AB" * 16 if copy != "C0" else None,
        action=Action.DELETE if copy == "C2" else Action.ADD,
        body=f"<copy id='{copy}'/>".encode(),
        released_at=at(0),
        purge_after=at(purge_days * 24 * 60),
    )


async def test_feed_cursors_grow_per_subscriber_and_a_repeat_takes_none(
    any_store: Store,
) -> None:
    async with any_store.transaction() as tx:
        cursors = [await tx.feeds.add(feed_item(f"C{n}")) for n in range(4)]
        other = await tx.feeds.add(feed_item("X1", subscriber="other"))
    async with any_store.transaction() as tx:
        repeat = await tx.feeds.add(feed_item("C1"))
        after = await tx.feeds.add(feed_item("C4", purge_days=1))
    async with any_store.transaction() as tx:
        first = await tx.feeds.page("vs", 0, 2)
        rest = await tx.feeds.page("vs", first[-1].cursor, 10)
        none = await tx.feeds.page("vs", 5, 10)
    assert (cursors, other, repeat, after) == ([1, 2, 3, 4], 1, None, 5)
    assert first == [dataclasses.replace(feed_item(f"C{n}"), cursor=n + 1) for n in range(2)]
    assert [(i.cursor, i.copy_msg_id, i.action) for i in rest] == [
        (3, "C2", Action.DELETE),
        (4, "C3", Action.ADD),
        (5, "C4", Action.ADD),
    ]
    assert none == []


async def test_feed_items_are_purged_after_their_retention_and_keys_replaced(
    any_store: Store,
) -> None:
    key = FeedKeyRecord(subscriber="vs", key_id="k1", secret_sha256="a" * 64, issued_at=at(0))
    async with any_store.transaction() as tx:
        await tx.feeds.add(feed_item("C1", purge_days=1))
        await tx.feeds.add(feed_item("C2", purge_days=3))
        await tx.feeds.save_key(key)
        await tx.feeds.save_key(dataclasses.replace(key, key_id="k2", secret_sha256="b" * 64))
    async with any_store.transaction() as tx:
        dry = await tx.feeds.purge(at(2 * 24 * 60), 100, dry_run=True)
        purged = await tx.feeds.purge(at(2 * 24 * 60), 100, dry_run=False)
        left = [i.copy_msg_id for i in await tx.feeds.page("vs", 0, 10)]
        assert await tx.feeds.key("k1") is None
        found = await tx.feeds.key("k2")
    assert (dry, purged, left) == (1, 1, ["C2"])
    assert found is not None and (found.subscriber, found.secret_sha256) == ("vs", "b" * 64)


async def test_stats_count_messages_rejections_and_outbox(any_store: Store) -> None:
    await accept(any_store, 2)
    await accept(any_store)
    async with any_store.transaction() as tx:
        await tx.messages.add(message(object_name=None))
        await tx.audit.add_rejection(RejectionRecord(T0, "agent-1", "zone-1", 3, 2))
        await tx.audit.add_rejection(RejectionRecord(T0, None, "zone-1", 3, 2, "LearnerPersonal"))
        await tx.audit.add_rejection(RejectionRecord(T0, None, "zone-1", 1, 3))
    assert await stats(any_store) == Stats(
        received={"LearnerPersonal": 2, "SIF_Event": 1},
        rejected={"3/2": 2, "1/3": 1},
        routed={},
        delivered={},
        pending=3,
    )


# -- the console's journeys ------------------------------------------------------------


async def test_journeys_search_by_learner_school_and_page_then_show_the_journey(
    any_store: Store,
) -> None:
    first, second = message(), message(agent_id="agent-2")
    second = replace(second, school="SCH2")
    one, two = outbox_item(first, 0, refid="R1"), outbox_item(second, 0, refid="R2")
    released = replace(disclosure(refid="R1", upn=UPN), message_id=first.id, outbox_id=one.id)
    async with any_store.transaction() as tx:
        for msg, item in ((first, one), (second, two)):
            await tx.messages.add(msg)
            await tx.outbox.add([item])
        await tx.learners.remember("R1", ["SCH1"], UPN)
        await tx.outbox.complete([(one.id, at(60))])
        await tx.disclosures.add([released])
    async with any_store.transaction() as tx:
        search = tx.journeys.search
        assert [m.id for m in await search(JourneyQuery(upn=UPN))] == [first.id]
        assert [m.id for m in await search(JourneyQuery(learner_refid="R2"))] == [second.id]
        assert [m.id for m in await search(JourneyQuery(school="SCH2"))] == [second.id]
        assert [m.id for m in await search(JourneyQuery(agreement_id="dsa-1"))] == [first.id]
        assert [m.id for m in await search(JourneyQuery(status="routed"))] == [first.id]
        assert [m.id for m in await search(JourneyQuery(status="pending"))] == [second.id]
        assert await search(JourneyQuery(upn=OTHER_UPN)) == []
        page = await search(JourneyQuery(limit=1))
        cursor = (page[0].received_at, page[0].id)
        rest = await search(JourneyQuery(limit=5, before=cursor))
        assert {page[0].id, *(m.id for m in rest)} == {first.id, second.id} and len(rest) == 1
        journey = await tx.journeys.journey(first.id)
        assert await tx.journeys.journey(new_id()) is None
        activity = await tx.journeys.activity(at(-1))
    assert journey is not None and journey.message.agent_id == "agent-1"
    assert [(o.id, o.done_at is not None) for o in journey.objects] == [(one.id, True)]
    assert [d.copy_msg_id for d in journey.disclosures] == [released.copy_msg_id]
    assert activity.by_object["LearnerPersonal"]["received"] == 2
    assert activity.by_object["LearnerPersonal"]["routed"] == 1
    assert activity.by_subscriber == {"la-send": {"delivered": 1}}


async def test_journeys_find_a_child_by_a_former_upn(any_store: Store) -> None:
    msg = message()
    async with any_store.transaction() as tx:
        await tx.messages.add(msg)
        await tx.outbox.add([outbox_item(msg, 0, refid="R1")])
        await tx.learners.remember("R1", ["SCH1"], UPN)
        await tx.learners.remember("R1", ["SCH1"], OTHER_UPN)  # a temporary UPN replaced
    async with any_store.transaction() as tx:
        for upn in (UPN, OTHER_UPN):
            assert [m.id for m in await tx.journeys.search(JourneyQuery(upn=upn))] == [msg.id]


async def test_journeys_list_refusals_newest_first_by_agent(any_store: Store) -> None:
    async with any_store.transaction() as tx:
        for minutes, agent in ((1, "agent-1"), (2, "agent-2"), (3, "agent-1")):
            await tx.audit.add_rejection(
                RejectionRecord(at(minutes), agent, "zone-1", 1, 4, "LearnerPersonal")
            )
    async with any_store.transaction() as tx:
        found = await tx.journeys.rejections(JourneyQuery(agent="agent-1", since=at(0)))
    assert [(r.at, r.code) for r in found] == [(at(3), 4), (at(1), 4)]


async def test_rejections_since_counts_from_a_time(any_store: Store) -> None:
    async with any_store.transaction() as tx:
        for minutes in (0, 1, 2):
            await tx.audit.add_rejection(RejectionRecord(at(minutes), "agent-1", "zone-1", 1, 3))
    async with any_store.transaction() as tx:
        assert [await tx.audit.rejections_since(at(m)) for m in (0, 1, 2.5)] == [3, 2, 0]


def alert_state(status: str = "pending", value: float = 3) -> AlertStateRecord:
    return AlertStateRecord(
        rule="dead_letters",
        subject="cme",
        status=status,
        since=T0,
        firing_at=at(1) if status == "firing" else None,
        value=value,
        summary=f"{value:g} messages",
    )


async def test_alert_states_are_replaced_and_deleted(any_store: Store) -> None:
    async with any_store.transaction() as tx:
        assert await tx.alerts.exclusive()
        await tx.alerts.save_state("dead_letters", "cme", alert_state())
        await tx.alerts.save_state("dead_letters", "cme", alert_state("firing", 5))
    async with any_store.transaction() as tx:
        assert await tx.alerts.states() == [alert_state("firing", 5)]
        await tx.alerts.save_state("dead_letters", "cme", None)
    async with any_store.transaction() as tx:
        assert await tx.alerts.states() == []


async def test_alert_deliveries_are_claimed_once_retried_and_settled(any_store: Store) -> None:
    event = AlertEventRecord(
        rule="dead_letters", subject="cme", kind="firing", at=T0, value=3, summary="3 messages"
    )
    async with any_store.transaction() as tx:
        first = await tx.alerts.add_event(event, ["webhook:1", "email"], T0)
        second = await tx.alerts.add_event(dataclasses.replace(event, kind="resolved"), [], T0)
    async with any_store.transaction() as tx:
        assert [e.kind for e in await tx.alerts.events(10)] == ["resolved", "firing"]
        claimed = await tx.alerts.claim_deliveries(at(1), 10, LEASE)
        assert [(d.target, d.event.id, d.event.summary) for d in claimed] == [
            ("webhook:1", first, "3 messages"),
            ("email", first, "3 messages"),
        ]
        # Leased: a second claimer gets nothing until the lease ends.
        assert await tx.alerts.claim_deliveries(at(1), 10, LEASE) == []
        webhook, email = claimed
        await tx.alerts.delivered(email.id, at(2))
        await tx.alerts.failed(webhook.id, "http_503", at(5))
    async with any_store.transaction() as tx:
        assert await tx.alerts.claim_deliveries(at(4), 10, LEASE) == []
        (again,) = await tx.alerts.claim_deliveries(at(5), 10, LEASE)
        assert (again.id, again.attempts, again.last_error) == (webhook.id, 1, "http_503")
        await tx.alerts.failed(again.id, "timeout", None)  # given up
        rows = {d.target: d for d in await tx.alerts.deliveries([first, second])}
    assert rows["email"].delivered_at == at(2) and rows["email"].next_attempt_at is None
    assert rows["webhook:1"].attempts == 2 and rows["webhook:1"].next_attempt_at is None
    assert rows["webhook:1"].last_error == "timeout" and rows["webhook:1"].delivered_at is None


async def test_csv_transactions_count_chunks_list_problems_and_refuse_a_second_file(
    any_store: Store,
) -> None:
    from hub.core.records import CsvRowError, CsvTransactionRecord

    record = CsvTransactionRecord(
        id=uuid.uuid4().hex,
        agent_id="hilltop-mis",
        zone="derbyshire",
        kind="attendance",
        sha256="ab" * 32,
        mapping_version=1,
        status="processing",
        created_at=T0,
        updated_at=T0,
    )
    async with any_store.transaction() as tx:
        await tx.csv_transactions.add(record)
    with pytest.raises(AlreadyExists):
        async with any_store.transaction() as tx:
            await tx.csv_transactions.add(dataclasses.replace(record, id=uuid.uuid4().hex))
    late = CsvRowError(line=9, column="UPN", problem="missing")
    early = CsvRowError(line=3, column="Date", problem="not a date")
    async with any_store.transaction() as tx:
        for errors in ([late], [early]):
            await tx.csv_transactions.add_chunk(
                record.id, rows=5, accepted=4, rejected=1, errors=errors, not_listed=2, at=T0
            )
        await tx.csv_transactions.set_status(record.id, "complete", T0 + timedelta(seconds=1))
    async with any_store.transaction() as tx:
        found = await tx.csv_transactions.find("hilltop-mis", "attendance", "ab" * 32)
        other = await tx.csv_transactions.find("hilltop-mis", "pupils", "ab" * 32)
        errors = await tx.csv_transactions.errors(record.id, 10)
        first = await tx.csv_transactions.errors(record.id, 1)
    assert found is not None and other is None
    assert (found.rows, found.accepted, found.rejected, found.errors_not_listed) == (10, 8, 2, 4)
    assert (found.status, found.updated_at) == ("complete", T0 + timedelta(seconds=1))
    assert errors == [early, late] and first == [early]
