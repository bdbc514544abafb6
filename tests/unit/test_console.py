"""The console's rules on the in-memory fakes: which looks at personal data are audited
(and that the audit never holds the identifier typed), who may see payloads, the
dashboard's windows, and the agreements needing attention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.console.dashboard import windows
from hub.core.admins import PERSONAL_DATA_ROLES, Role, may
from hub.core.agreements.lifecycle import Status, Transition, allowed
from hub.core.envelope import Action, MessageKind
from hub.core.errors import explain
from hub.core.records import Actor, JourneyQuery, MessageRecord, OutboxRecord
from hub.pipeline import journeys
from tests.fakes import FakeStore

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
UPN = "A123456789012"
OPS = Actor("ops-anna")


async def _store() -> FakeStore:
    store = FakeStore()
    msg = MessageRecord(
        id="m1",
        agent_id="agent-1",
        zone="zone",
        sif_msg_id="S1",
        kind=MessageKind.EVENT,
        version="2.4",
        received_at=NOW,
        payload=b"<SIF_Message>UPN inside</SIF_Message>",
        object_name="LearnerPersonal",
        action=Action.ADD,
        school="SCH1",
    )
    item = OutboxRecord(
        id="o1",
        message_id="m1",
        seq=0,
        zone="zone",
        source_agent="agent-1",
        object_name="LearnerPersonal",
        action=Action.ADD,
        school="SCH1",
        subject_refid="R1",
        object_xml=b"<LearnerPersonal/>",
    )
    async with store.transaction() as tx:
        await tx.messages.add(msg)
        await tx.outbox.add([item])
        await tx.learners.remember("R1", ["SCH1"], UPN)
    return store


async def test_a_search_by_learner_is_audited_without_the_identifier() -> None:
    store = await _store()
    found = await journeys.search(store, JourneyQuery(upn=UPN), actor=OPS, now=NOW)
    assert [m.id for m in found] == ["m1"]
    (entry,) = store.state.audit
    assert (entry.actor, entry.action, entry.at) == ("ops-anna", "console.search", NOW)
    assert entry.detail == {"criteria": ["upn"], "messages": ["m1"]}
    assert UPN not in repr(entry)


async def test_a_search_without_a_learner_is_not_a_disclosure() -> None:
    store = await _store()
    await journeys.search(store, JourneyQuery(school="SCH1"), actor=OPS, now=NOW)
    assert store.state.audit == []


async def test_opening_a_journey_is_audited_with_whether_the_payload_was_shown() -> None:
    store = await _store()
    hidden = await journeys.view(store, "m1", with_payload=False, actor=OPS, now=NOW)
    shown = await journeys.view(store, "m1", with_payload=True, actor=OPS, now=NOW)
    assert hidden is not None and hidden.payload is None
    assert shown is not None and shown.payload == b"<SIF_Message>UPN inside</SIF_Message>"
    assert [(e.action, e.subject, e.detail["payload"]) for e in store.state.audit] == [
        ("console.journey", "m1", False),
        ("console.journey", "m1", True),
    ]
    assert await journeys.view(store, "nope", with_payload=True, actor=OPS, now=NOW) is None


def test_only_the_viewer_is_kept_from_personal_data() -> None:
    assert [r for r in Role if may(r, *PERSONAL_DATA_ROLES)] == [
        Role.OPERATOR,
        Role.DPO,
        Role.ADMIN,
    ]


def test_today_starts_at_midnight_in_london() -> None:
    summer = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    (_, hour), (_, today), (_, day) = windows(summer)
    assert hour == summer - timedelta(hours=1) and day == summer - timedelta(days=1)
    assert today == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)  # 00:00 BST


def test_a_sif_error_is_put_in_words() -> None:
    assert explain(1, 4) == "xml validation: invalid value"
    assert explain(4, 10) == "access: publish add"
    assert explain(11, 1) == "system: code 1"
    assert explain(99, 1) == "unknown category 99/1"


def test_the_console_offers_only_the_transitions_open_from_a_status() -> None:
    assert allowed(Status.SUSPENDED) == [
        Transition.REINSTATE,
        Transition.GIVE_NOTICE,
        Transition.REVIEWED,
    ]
    assert allowed(Status.TERMINATED) == []
