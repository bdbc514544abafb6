"""Pipeline logic on the in-memory fakes (no database, no broker): ingest -> dispatch ->
release with the shipped county configuration and the real schemas, agreements and filter.
The same fakes pass tests/integration/test_store_contract.py against the SQL store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from hub.configfile import load_config
from hub.core import naming
from hub.core.config import HubConfig
from hub.core.records import Actor, DisclosureRecord
from hub.core.schools import SchoolIndex
from hub.pipeline.agreements import load_policy, suppress, sync_config
from hub.pipeline.dispatch import DispatchContext, dispatch_once, run_dispatcher
from hub.pipeline.ingest import Incoming, IngestContext, handle
from hub.pipeline.release import release_once
from hub.sif.schemas import Schemas, load_schemas
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.school_agent import Ack, read_ack
from tests.fakes import FakePublisher, FakePullSource, FakeStore

COUNTY = Path(__file__).resolve().parents[2] / "deploy/examples/county.yaml"
DAY = date(2026, 11, 23)
IMMEDIATE_FOR_LEARNER = {"admissions", "cme", "send-team"}  # live, no window, no cohort


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


@pytest.fixture(scope="module")
def config() -> HubConfig:
    return load_config(COUNTY)


@dataclass
class Clock:
    """Next Monday 06:00 UTC: later than the wall clock, which stamps when outbox rows
    fall due (as in the SQL store), and inside every agreement's review period."""

    now: datetime = field(
        default_factory=lambda: datetime.combine(
            date.today() + timedelta(days=7 - date.today().weekday()), time(6), tzinfo=UTC
        )
    )

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Pipeline:
    """Ingest and dispatch contexts over one FakeStore, FakePublisher and FakePullSource."""

    config: HubConfig
    clock: Clock
    store: FakeStore
    publisher: FakePublisher
    ingest: IngestContext
    dispatch: DispatchContext

    async def post(self, agent_id: str, body: bytes) -> Ack:
        agent = self.config.agent(agent_id)
        assert agent is not None
        incoming = Incoming(agent, self.config.zones[0], body)
        return read_ack(200, await handle(self.ingest, incoming))

    async def learner_event(self, learner: data.Learner, msg_id: str | None = None) -> Ack:
        agent, xml = agent_of(learner), data.learner_personal(learner)
        return await self.post(agent, m.event(agent, "LearnerPersonal", "Add", xml, msg_id))

    def published_to(self) -> list[str]:
        return sorted(o.headers[naming.H_SUBSCRIBER] for o in self.publisher.published)

    def disclosures(self) -> list[DisclosureRecord]:
        return self.store.state.disclosures


def agent_of(learner: data.Learner) -> str:
    return {"8302001": "hilltop-mis", "8304012": "dovedale-mis", "8302105": "matlock-mis"}[
        learner.school.laestab
    ]


@pytest.fixture
async def hub(config: HubConfig, schemas: Schemas) -> Pipeline:
    clock, store, pull = Clock(), FakeStore(), FakePullSource()
    publisher = FakePublisher(deliver_to=pull)
    await sync_config(store, config, schemas.element_paths, clock())
    policy = await load_policy(store, clock())
    ingest = IngestContext(store, config, SchoolIndex.of(config), schemas, pull, clock)
    dispatch = DispatchContext(
        store, publisher, lambda: policy.at(clock()), config.queue_prefix, clock=clock
    )
    running = Pipeline(config, clock, store, publisher, ingest, dispatch)
    for agent_id in ("hilltop-mis", "dovedale-mis", "matlock-mis"):
        assert (await running.post(agent_id, m.register(agent_id, "Push"))).ok
    return running


LEARNER = data.make_learners(3)[1]  # at Dovedale, whose pupils all flow under DSA-CME


async def test_an_event_is_stored_then_one_copy_per_entitled_service_leaves(hub: Pipeline) -> None:
    assert (await hub.learner_event(LEARNER)).ok
    state = hub.store.state
    assert len(state.messages) == 1 and len(state.outbox) == 1
    assert state.upns[LEARNER.refid] == LEARNER.upn
    assert state.learner_schools[LEARNER.refid] == {LEARNER.school.laestab}
    assert hub.publisher.published == []  # nothing leaves from ingest

    assert await dispatch_once(hub.dispatch) == 1
    assert hub.published_to() == sorted(IMMEDIATE_FOR_LEARNER)
    rows = hub.disclosures()
    assert {r.subscriber for r in rows} == IMMEDIATE_FOR_LEARNER
    assert {r.copy_msg_id for r in rows} == {o.message_id for o in hub.publisher.published}
    assert all(r.upn == LEARNER.upn and r.subject_refid == LEARNER.refid for r in rows)
    cme = next(r for r in rows if r.subscriber == "cme")
    assert "UPN" in cme.paths and not any("Ethnicity" in p for p in cme.paths)
    hub.clock.now += timedelta(seconds=hub.dispatch.lease_seconds + 1)
    assert await dispatch_once(hub.dispatch) == 0  # done rows are never claimed again
    assert len(hub.publisher.published) == len(IMMEDIATE_FOR_LEARNER)


async def test_a_repeated_msg_id_is_acknowledged_but_not_routed_again(hub: Pipeline) -> None:
    msg_id = m.msg_id()
    assert (await hub.learner_event(LEARNER, msg_id)).status_code == 0
    repeat = await hub.learner_event(LEARNER, msg_id)
    assert repeat.status_code == 7
    assert len(hub.store.state.outbox) == 1


async def test_concurrent_events_share_a_group_commit_and_repeats_in_it_are_duplicates(
    hub: Pipeline,
) -> None:
    learners = data.make_learners(6)
    repeated = m.msg_id()
    groups = hub.store.group.groups
    acks = await asyncio.gather(
        *(hub.learner_event(learner) for learner in learners),
        hub.learner_event(LEARNER, repeated),
        hub.learner_event(LEARNER, repeated),
    )
    assert [a.status_code for a in acks] == [0] * 7 + [7]
    assert hub.store.group.groups == groups + 1  # one transaction, one commit for all
    state = hub.store.state
    assert len(state.messages) == 7 and len(state.outbox) == 7
    assert all(state.upns[learner.refid] == learner.upn for learner in learners)


async def test_a_publish_failure_retries_the_row_and_logs_what_left(hub: Pipeline) -> None:
    assert (await hub.learner_event(LEARNER)).ok
    hub.publisher.fail_next(1)  # one copy of the three is not confirmed
    assert await dispatch_once(hub.dispatch) == 1
    first_ids = {o.message_id for o in hub.publisher.published}
    assert len(first_ids) == 2
    # The two confirmed copies have left: they are in the log at once.
    assert {r.copy_msg_id for r in hub.disclosures()} == first_ids
    (row,) = hub.store.state.outbox.values()
    assert (row.record.attempts, row.done_at, row.last_error) == (1, None, "BrokerUnavailable")
    assert row.next_attempt_at > hub.clock.now

    assert await dispatch_once(hub.dispatch) == 0  # backing off
    hub.clock.now = row.next_attempt_at
    assert await dispatch_once(hub.dispatch) == 1
    # The retry sends only the copy that did not leave; each copy is logged once.
    assert len(hub.publisher.published) == 3
    assert sorted(r.subscriber for r in hub.disclosures()) == sorted(IMMEDIATE_FOR_LEARNER)
    assert {r.copy_msg_id for r in hub.disclosures()} == {
        o.message_id for o in hub.publisher.published
    }
    assert await _pending(hub) == 0


async def test_a_copy_that_left_stays_logged_when_its_retry_releases_nothing(
    hub: Pipeline,
) -> None:
    """Issue 6 (every disclosure accounted for): the broker confirms two of a row's three
    copies, then the learner is suppressed before the retry. The retry sends nothing, and
    the two copies that left are in the disclosure log (before the fix: no row at all)."""
    assert (await hub.learner_event(LEARNER)).ok
    hub.publisher.fail_next(1)
    assert await dispatch_once(hub.dispatch) == 1
    async with hub.store.transaction() as tx:
        await suppress(tx, LEARNER.upn, "deceased", actor=Actor("ops"), now=hub.clock())
    policy = await load_policy(hub.store, hub.clock())
    hub.dispatch.policy = lambda: policy.at(hub.clock())
    (row,) = hub.store.state.outbox.values()
    hub.clock.now = row.next_attempt_at
    assert await dispatch_once(hub.dispatch) == 1
    assert len(hub.publisher.published) == 2  # nothing more left
    logged = sorted(r.copy_msg_id for r in hub.disclosures())
    assert logged == sorted(o.message_id for o in hub.publisher.published)
    assert all(r.subject_refid == LEARNER.refid for r in hub.disclosures())
    assert await _pending(hub) == 0


async def test_a_copy_held_for_its_window_is_released_when_the_window_opens(hub: Pipeline) -> None:
    attendance = data.learner_attendance(LEARNER, DAY, "AM", "/")
    agent = agent_of(LEARNER)
    assert (await hub.post(agent, m.event(agent, "LearnerAttendance", "Add", attendance))).ok
    assert await dispatch_once(hub.dispatch) == 1
    assert hub.published_to() == ["cme"]  # the attendance team's return waits for Monday 07:00
    (held,) = hub.store.state.held.values()
    assert (held.subscriber, held.reason) == ("attendance-team", "schedule")
    assert held.release_after is not None and held.release_after > hub.clock.now

    assert await release_once(hub.dispatch) == 0
    hub.clock.now = held.release_after
    assert await release_once(hub.dispatch) == 1
    assert hub.published_to() == ["attendance-team", "cme"]
    assert sorted(r.subscriber for r in hub.disclosures()) == ["attendance-team", "cme"]
    released = hub.store.state.held[held.id]
    assert (released.settled_at, released.outcome) == (held.release_after, "released")
    assert await release_once(hub.dispatch) == 0


async def test_a_pull_agent_gets_its_copy_and_its_ack_is_recorded(hub: Pipeline) -> None:
    assert (await hub.post("capita-one", m.register("capita-one", "Pull"))).ok
    assert (await hub.learner_event(LEARNER)).ok
    await dispatch_once(hub.dispatch)
    got = await hub.post("capita-one", m.system_control("capita-one", "SIF_GetMessage"))
    assert got.ok and got.data is not None
    (copy,) = [r for r in hub.disclosures() if r.subscriber == "admissions"]
    assert got.data.findtext(".//{*}SIF_MsgId") == copy.copy_msg_id
    ack = m.ack("capita-one", hub.config.source_id, copy.copy_msg_id)
    assert (await hub.post("capita-one", ack)).ok
    (acked,) = [r for r in hub.disclosures() if r.subscriber == "admissions"]
    assert acked.acknowledged_at == hub.clock.now
    empty = await hub.post("capita-one", m.system_control("capita-one", "SIF_GetMessage"))
    assert empty.status_code == 9


async def test_a_database_outage_is_a_transient_error_and_nothing_is_kept(hub: Pipeline) -> None:
    hub.store.unavailable = True
    ack = await hub.learner_event(LEARNER)
    assert (ack.error_category, ack.error_code) == (11, 1)
    hub.store.unavailable = False
    assert hub.store.state.messages == {}
    assert (await hub.learner_event(LEARNER)).ok  # the agent's resend is accepted


async def _pending(hub: Pipeline) -> int:
    async with hub.store.transaction() as tx:
        return (await tx.disclosures.stats()).pending


async def test_ingest_tells_routing_after_each_commit_that_gave_it_work(hub: Pipeline) -> None:
    told: list[int] = []
    hub.ingest = replace(hub.ingest, routed=lambda: told.append(len(hub.store.state.outbox)))
    msg_id = m.msg_id()
    assert (await hub.learner_event(LEARNER, msg_id)).ok
    assert told == [1]  # after the commit: the row is there when the dispatcher looks
    duplicate = await hub.learner_event(LEARNER, msg_id)  # acknowledged, adds no work
    assert duplicate.error_category is None and duplicate.status_code == 7
    assert (await hub.post("hilltop-mis", m.register("hilltop-mis", "Push"))).ok
    assert told == [1]


async def test_the_dispatcher_is_woken_by_ingest_not_by_its_poll(hub: Pipeline) -> None:
    """An hour-long poll: only the wake-up can route the event."""
    dispatch = replace(hub.dispatch, idle_seconds=3600.0, idle_max_seconds=3600.0)
    hub.ingest = replace(hub.ingest, routed=dispatch.wake.set)
    stop = asyncio.Event()
    task = asyncio.create_task(run_dispatcher(dispatch, stop))
    try:
        for _ in range(3):  # the dispatcher finds nothing and settles into its idle wait
            await asyncio.sleep(0)
        assert hub.publisher.published == []
        assert (await hub.learner_event(LEARNER)).ok
        async with asyncio.timeout(30):
            while hub.published_to() != sorted(IMMEDIATE_FOR_LEARNER):
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
