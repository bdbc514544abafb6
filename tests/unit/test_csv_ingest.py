"""CSV rows on the one ingest path (hub.pipeline.csv_ingest over the in-memory fakes): the
same outbox rows, learner index and school checks as an agent's SIF_Event, in chunks, one
transaction per file."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from lxml import etree

from adapters.csv_upload import RowMapper, learner_refid, load_mapping, read_rows
from hub.configfile import load_config
from hub.core.config import HubConfig
from hub.core.records import CsvTransactionRecord
from hub.core.schools import SchoolIndex
from hub.pipeline.agreements import load_policy, sync_config
from hub.pipeline.csv_ingest import COMPLETE, Upload, ingest_rows, open_transaction
from hub.pipeline.dispatch import DispatchContext, dispatch_once
from hub.pipeline.ingest import IngestContext
from hub.sif.schemas import load_schemas
from hub.simulate import sample_data as data
from tests.fakes import FakePublisher, FakePullSource, FakeStore

COUNTY = Path(__file__).resolve().parents[2] / "deploy/examples/county.yaml"
# Next Monday 06:00 UTC, before the attendance window: later than the wall clock, which
# stamps when outbox rows fall due (as in the SQL store).
NOW = datetime.combine(
    date.today() + timedelta(days=7 - date.today().weekday()), time(6), tzinfo=UTC
)
MAPPING = load_mapping()
HEADER = "UPN,DfE No,Date,Session,Mark,Note"
DOVEDALE = [p for p in data.make_learners(12) if p.school.laestab == "8304012"]


@dataclass
class Setup:
    config: HubConfig
    store: FakeStore
    ingest: IngestContext
    publisher: FakePublisher


@pytest.fixture
async def hub() -> Setup:
    config = load_config(COUNTY)
    store, pull, schemas = FakeStore(), FakePullSource(), load_schemas()
    await sync_config(store, config, schemas.element_paths, NOW)
    ingest = IngestContext(store, config, SchoolIndex.of(config), schemas, pull, lambda: NOW)
    return Setup(config, store, ingest, FakePublisher(deliver_to=pull))


def marks(learners: list[data.Learner], laestab: str | None = None) -> str:
    lines = [HEADER] + [
        f"{p.upn},{laestab or p.school.laestab},2026-11-23,{s},/,on time"
        for p in learners
        for s in ("AM", "PM")
    ]
    return "\n".join(lines) + "\n"


async def upload(
    hub: Setup, agent_id: str, text: str, chunk_rows: int = 500, kind: str = "attendance"
) -> tuple[CsvTransactionRecord, bool]:
    agent = hub.config.agent(agent_id)
    assert agent is not None
    sha = hashlib.sha256(text.encode()).hexdigest()
    up = Upload(agent=agent, zone="derbyshire", kind=kind, sha256=sha, mapping_version=1)
    record, run = await open_transaction(hub.ingest, up)
    if run:
        schools = {s.laestab: s.school_info_refid for s in hub.config.schools}
        mapper = RowMapper(MAPPING, kind, schools)
        rows = read_rows(io.StringIO(text), mapper)
        header = text.split("\n", 1)[0].split(",")
        record = await ingest_rows(hub.ingest, agent, record, header, rows, chunk_rows=chunk_rows)
    return record, run


async def test_rows_become_outbox_rows_as_add_events_with_the_learner_known(hub: Setup) -> None:
    record, ran = await upload(hub, "dovedale-mis", marks(DOVEDALE[:2]))
    assert ran and record.status == COMPLETE
    assert (record.rows, record.accepted, record.rejected) == (4, 4, 0)
    state = hub.store.state
    outbox = [row.record for row in state.outbox.values()]
    assert {o.object_name for o in outbox} == {"LearnerAttendance"}
    assert {o.action.value for o in outbox} == {"Add"} and len(outbox) == 4
    assert {o.school for o in outbox} == {"8304012"}
    learner = learner_refid("8304012", DOVEDALE[0].upn)
    assert state.upns[learner] == DOVEDALE[0].upn  # the row's UPN: identity, not held
    assert state.learner_schools[learner] == {"8304012"}
    accepted = [a for a in state.audit if a.action == "message.accepted"]
    assert [a.actor for a in accepted] == ["agent:dovedale-mis"]


async def test_a_chunk_is_one_message_and_one_transaction(hub: Setup) -> None:
    record, _ = await upload(hub, "dovedale-mis", marks(DOVEDALE[:3]), chunk_rows=4)
    assert record.rows == 6
    assert len(hub.store.state.messages) == 2  # 4 + 2 rows
    assert all(
        m.sif_msg_id.startswith(f"CSV-{record.id}-") for m in hub.store.state.messages.values()
    )


async def test_the_same_file_again_is_the_same_transaction_not_ingested_again(hub: Setup) -> None:
    first, _ = await upload(hub, "dovedale-mis", marks(DOVEDALE[:2]))
    again, ran = await upload(hub, "dovedale-mis", marks(DOVEDALE[:2]))
    assert not ran and again.id == first.id
    assert len(hub.store.state.outbox) == 4


async def test_another_schools_rows_are_refused_and_the_others_go_on(hub: Setup) -> None:
    text = marks(DOVEDALE[:1]) + marks(DOVEDALE[1:2], laestab="8302001").split("\n", 1)[1]
    record, _ = await upload(hub, "dovedale-mis", text)
    assert (record.rows, record.accepted, record.rejected) == (4, 2, 2)
    async with hub.store.transaction() as tx:
        errors = await tx.csv_transactions.errors(record.id, 100)
    assert [(e.line, e.column) for e in errors] == [(4, "DfE No"), (5, "DfE No")]
    assert {e.problem for e in errors} == {
        "the agent may not post for this school or this learner's school"
    }
    assert {row.record.school for row in hub.store.state.outbox.values()} == {"8304012"}


async def test_a_failed_upload_resumes_without_storing_a_chunk_twice(hub: Setup) -> None:
    text = marks(DOVEDALE[:3])
    original = hub.store.transaction
    calls = 0

    def flaky():  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 3:  # open, chunk 1, then chunk 2 fails
            hub.store.unavailable = True
        return original()

    hub.store.transaction = flaky  # type: ignore[method-assign]
    with pytest.raises(Exception, match=r"unavailable|down"):
        await upload(hub, "dovedale-mis", text, chunk_rows=2)
    hub.store.unavailable = False
    hub.store.transaction = original  # type: ignore[method-assign]
    async with hub.store.transaction() as tx:
        failed = await tx.csv_transactions.get(next(iter(hub.store.state.csv_transactions)))
    assert failed is not None and failed.status != COMPLETE and failed.rows == 2

    record, ran = await upload(hub, "dovedale-mis", text, chunk_rows=2)
    assert ran and record.id == failed.id and record.status == COMPLETE
    assert (record.rows, record.accepted) == (6, 6)
    assert len(hub.store.state.outbox) == 6


async def test_csv_rows_reach_an_entitled_service_through_decide_and_the_filter(
    hub: Setup,
) -> None:
    await upload(hub, "dovedale-mis", marks(DOVEDALE[:1]))
    policy = await load_policy(hub.store, NOW)
    dispatch = DispatchContext(
        hub.store, hub.publisher, lambda: policy.at(NOW), hub.config.queue_prefix, clock=lambda: NOW
    )
    assert await dispatch_once(dispatch) == 2
    published = hub.publisher.published
    assert {o.headers["hub-subscriber"] for o in published} == {"cme"}  # attendance: held
    body = etree.fromstring(published[0].body)
    assert body.find(".//{*}LearnerAttendance") is not None
    assert len(hub.store.state.disclosures) == 2
    held = {h.subscriber for h in hub.store.state.held.values()}
    assert held == {"attendance-team"}


async def test_pupils_bind_the_learner_to_the_school_and_exclusions_route_under_it(
    hub: Setup,
) -> None:
    pupil = DOVEDALE[0]
    pupils = (
        "UPN,DfE No,Surname,Forename,Gender,DOB,NC Year\n"
        f"{pupil.upn},8304012,{pupil.surname},{pupil.forename},{pupil.gender},"
        f"{pupil.birth_date.isoformat()},{pupil.year_group}\n"
    )
    exclusions = (
        "UPN,DfE No,Type,Reason,Start Date,Number of Sessions\n"
        f"{pupil.upn},8304012,FIXD,PD,2026-11-20,2\n"
        f"{pupil.upn},8302001,PERM,PP,2026-11-21,\n"  # not Dovedale's agent's school
    )
    added, _ = await upload(hub, "dovedale-mis", pupils, kind="pupils")
    excluded, _ = await upload(hub, "dovedale-mis", exclusions, kind="exclusions")
    assert (added.accepted, excluded.accepted, excluded.rejected) == (1, 1, 1)
    learner = learner_refid("8304012", pupil.upn)
    state = hub.store.state
    assert state.learner_schools[learner] == {"8304012"} and state.upns[learner] == pupil.upn
    rows = {r.record.object_name: r.record for r in state.outbox.values()}
    assert set(rows) == {"LearnerPersonal", "LearnerExclusion"}
    assert {r.subject_refid for r in rows.values()} == {learner}
    assert rows["LearnerExclusion"].school == "8304012"
