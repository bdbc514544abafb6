"""The SIF agent protocol over HTTP, the real database and real RabbitMQ: registration,
provisioning, ping, pull delivery with SIF_GetMessage / SIF_Ack, paged SIF_Response and
partial Change / key-only Delete events (README, "The SIF endpoint")."""

from __future__ import annotations

import pytest
from lxml import etree

from hub.core import naming
from hub.core.envelope import SIF_UK_NS
from hub.core.paths import PathFilter, parse_path
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.la_consumer import Received
from hub.simulate.school_agent import Ack, SchoolAgent
from tests.e2e.conftest import RunningHub

pytestmark = pytest.mark.integration

NS = {"s": SIF_UK_NS}
HILLTOP = "8302001"
PULL_AGENT = "capita-one"  # pull_agent of subscriber `admissions` in county.yaml
ADMISSIONS_INCLUDE = [
    "PersonalInformation/Name",
    "PersonalInformation/Demographics/BirthDate",
    "PersonalInformation/Address",
    "UPN",
    "CurrentSchoolEnrolment",
]


def _hilltop_learners(n: int) -> list[data.Learner]:
    found = [p for p in data.make_learners(n * 3 + 3) if p.school.laestab == HILLTOP][:n]
    assert len(found) == n
    return found


def _code(ack: Ack) -> tuple[int | None, int | None]:
    return ack.error_category, ack.error_code


async def _nothing_queued(running: RunningHub) -> None:
    await running.settle()
    for sub in [s.id for s in running.config.subscribers]:
        assert await running.drain(sub) == [], sub


# --- registration, provisioning, ping ---------------------------------------------------


async def test_register_with_wildcard_version_is_accepted(running: RunningHub) -> None:
    agent = running.agent("hilltop-mis")
    ack = await agent.post(m.register(agent.agent_id, "Push", versions=("2.*",)))
    assert ack.http_status == 200 and ack.status_code == 0 and ack.error_category is None
    # registered for real: an event is now accepted (it would be 4/9 otherwise)
    p = _hilltop_learners(1)[0]
    assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok


async def test_register_with_only_unsupported_versions_is_refused(running: RunningHub) -> None:
    agent = running.agent("hilltop-mis")
    ack = await agent.post(m.register(agent.agent_id, "Push", versions=("1.5r1", "3.*")))
    assert _code(ack) == (5, 4), ack.raw
    assert ack.status_code is None
    # and not registered: events are refused as from an unregistered agent
    p = _hilltop_learners(1)[0]
    event = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
    assert _code(event) == (4, 9)
    await _nothing_queued(running)


@pytest.mark.parametrize("kind", ["SIF_Provide", "SIF_Subscribe"])
async def test_provide_and_subscribe_after_register(running: RunningHub, kind: str) -> None:
    agent = running.agent("hilltop-mis")
    assert (await agent.register("Push")).ok
    ack = await agent.post(
        m.provision(kind, agent.agent_id, ["LearnerPersonal", "LearnerAttendance"])
    )
    assert ack.status_code == 0 and ack.error_category is None, ack.raw
    async with running.hub.store.transaction() as tx:
        reg = await tx.registrations.get(agent.agent_id, running.config.zones[0])
    assert reg is not None
    recorded = reg.provides if kind == "SIF_Provide" else reg.subscribes
    assert set(recorded) == {"LearnerPersonal", "LearnerAttendance"}


@pytest.mark.parametrize(("kind", "category"), [("SIF_Provide", 6), ("SIF_Subscribe", 7)])
async def test_provide_and_subscribe_of_unknown_object(
    running: RunningHub, kind: str, category: int
) -> None:
    agent = running.agent("hilltop-mis")
    assert (await agent.register("Push")).ok
    ack = await agent.post(m.provision(kind, agent.agent_id, ["LearnerPersonal", "Unicorn"]))
    assert _code(ack) == (category, 3), ack.raw
    assert ack.desc is not None and "Unicorn" in ack.desc


@pytest.mark.parametrize("kind", ["SIF_Provide", "SIF_Subscribe"])
async def test_provide_and_subscribe_before_register(running: RunningHub, kind: str) -> None:
    agent = running.agent("hilltop-mis")
    ack = await agent.post(m.provision(kind, agent.agent_id, ["LearnerPersonal"]))
    assert _code(ack) == (4, 9), ack.raw


async def test_ping(running: RunningHub) -> None:
    agent = running.agent("hilltop-mis")
    assert (await agent.register("Push")).ok
    body = m.system_control(agent.agent_id, "SIF_Ping")
    sent_id = etree.fromstring(body).findtext("*/s:SIF_Header/s:SIF_MsgId", None, NS)
    ack = await agent.post(body)
    assert ack.http_status == 200 and ack.status_code == 0 and ack.error_category is None
    assert ack.original_msg_id == sent_id


# --- pull mode ---------------------------------------------------------------------------


def _pulled_event(ack: Ack) -> tuple[str, etree._Element, etree._Element]:
    """(SIF_MsgId, SIF_EventObject, the object) of the SIF_Message in an ack's SIF_Data."""
    assert ack.data is not None, ack.raw
    msg_id = ack.data.findtext("s:SIF_Event/s:SIF_Header/s:SIF_MsgId", None, NS)
    holder = ack.data.find("s:SIF_Event/s:SIF_ObjectData/s:SIF_EventObject", NS)
    assert msg_id and holder is not None, ack.raw
    return msg_id, holder, holder[0]


def _paths(element: etree._Element) -> set[str]:
    out: set[str] = set()

    def walk(node: etree._Element, prefix: str) -> None:
        for child in node.iterchildren(tag=etree.Element):
            path = f"{prefix}{etree.QName(child).localname}"
            out.add(path)
            walk(child, path + "/")

    walk(element, "")
    return out


async def test_pull_agent_gets_each_filtered_copy_until_it_acks(running: RunningHub) -> None:
    puller = running.agent(PULL_AGENT)
    assert (await puller.register("Pull")).ok
    learners = [
        next(p for p in data.make_learners(6) if p.school.laestab == laestab)
        for laestab in ("8302001", "8304012")
    ]
    for p, school_agent in zip(learners, ("hilltop-mis", "dovedale-mis"), strict=True):
        sender = running.agent(school_agent)
        assert (await sender.register("Push")).ok
        assert (await sender.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
    await running.settle()

    allowed = PathFilter.of(ADMISSIONS_INCLUDE, [])
    seen: list[str] = []
    for _ in learners:
        first = await puller.get_message()
        assert first.status_code == 0 and first.error_category is None, first.raw
        msg_id, holder, obj = _pulled_event(first)
        assert holder.get("ObjectName") == "LearnerPersonal" and holder.get("Action") == "Add"
        assert etree.QName(obj).localname == "LearnerPersonal"
        paths = _paths(obj)
        assert "UPN" in paths and "PersonalInformation/Name/FamilyName" in paths
        assert all(allowed.allows(parse_path(p)) for p in paths), paths
        assert not any("Ethnicity" in p or "InCare" in p or "Phone" in p for p in paths)

        again = await puller.get_message()  # not acked yet: the same copy again
        assert again.status_code == 0
        again_id, _, again_obj = _pulled_event(again)
        assert again_id == msg_id
        assert etree.tostring(again_obj) == etree.tostring(obj)

        done = await puller.ack(msg_id)
        assert done.status_code == 0 and done.error_category is None, done.raw
        seen.append(str(obj.get("RefId")))

    assert sorted(seen) == sorted(p.refid for p in learners)
    empty = await puller.get_message()
    assert empty.status_code == 9 and empty.error_category is None and empty.data is None


async def test_pull_ack_of_unknown_message(running: RunningHub) -> None:
    puller = running.agent(PULL_AGENT)
    assert (await puller.register("Pull")).ok
    ack = await puller.ack(m.msg_id())
    assert _code(ack) == (12, 6), ack.raw


async def test_pull_ack_of_other_message_than_the_held_one(running: RunningHub) -> None:
    puller = running.agent(PULL_AGENT)
    assert (await puller.register("Pull")).ok
    sender = running.agent("hilltop-mis")
    assert (await sender.register("Push")).ok
    p = _hilltop_learners(1)[0]
    assert (await sender.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
    await running.settle()
    held_id, _, _ = _pulled_event(await puller.get_message())
    assert _code(await puller.ack(m.msg_id())) == (12, 6)
    # the wrong ack released nothing: the held copy comes again, and acks normally
    assert _pulled_event(await puller.get_message())[0] == held_id
    assert (await puller.ack(held_id)).status_code == 0
    assert (await puller.get_message()).status_code == 9


async def test_pull_when_empty(running: RunningHub) -> None:
    puller = running.agent(PULL_AGENT)
    assert (await puller.register("Pull")).ok
    ack = await puller.get_message()
    assert ack.status_code == 9 and ack.error_category is None and ack.data is None


async def test_push_agent_may_not_pull(running: RunningHub) -> None:
    puller = running.agent(PULL_AGENT)
    assert (await puller.register("Push")).ok
    ack = await puller.get_message()
    assert _code(ack) == (5, 9), ack.raw


async def test_pull_before_register(running: RunningHub) -> None:
    ack = await running.agent(PULL_AGENT).get_message()
    assert _code(ack) == (4, 9), ack.raw


# --- paged SIF_Response --------------------------------------------------------------------


def _packet(
    agent: SchoolAgent,
    request: str,
    number: int,
    more: bool,
    learners: list[data.Learner],
    message_id: str | None = None,
) -> bytes:
    return m.response(
        agent.agent_id,
        request,
        number,
        more,
        [data.learner_personal(p) for p in learners],
        message_id=message_id,
    )


async def test_response_packets_are_routed_once_when_the_set_is_complete(
    running: RunningHub,
) -> None:
    agent = running.agent("hilltop-mis")
    assert (await agent.register("Push")).ok
    # not the pupil whose data Hilltop withholds from DSA-CME-2026 (all_except)
    learners = [p for p in _hilltop_learners(8) if p.upn != "P830200123843"][:6]
    assert len(learners) == 6
    parts = {1: learners[0:2], 2: learners[2:4], 3: learners[4:6]}
    request = m.msg_id()
    ids = {n: m.msg_id() for n in parts}

    for number, more in ((2, True), (1, True)):
        ack = await agent.post(_packet(agent, request, number, more, parts[number], ids[number]))
        assert ack.status_code == 0 and ack.error_category is None, ack.raw
    await running.settle()
    assert await running.drain("cme") == []  # incomplete: nothing routed yet
    async with running.hub.store.transaction() as tx:
        assert (await tx.disclosures.stats()).routed == {}

    last = await agent.post(_packet(agent, request, 3, False, parts[3], ids[3]))
    assert last.status_code == 0 and last.error_category is None, last.raw
    await running.settle()
    copies = await running.drain("cme", expect=len(learners))
    assert sorted(c.object.get("RefId") for c in copies) == sorted(p.refid for p in learners)
    assert len({c.message_id for c in copies}) == len(learners)
    assert {c.headers[naming.H_ACTION] for c in copies} == {"Add"}
    assert {c.headers[naming.H_OBJECT] for c in copies} == {"LearnerPersonal"}
    assert {c.headers[naming.H_SCHOOL] for c in copies} == {HILLTOP}

    # packet 2 again under a new SIF_MsgId: refused, nothing routed again
    dup_packet = await agent.post(_packet(agent, request, 2, True, parts[2], m.msg_id()))
    assert _code(dup_packet) == (8, 12), dup_packet.raw
    # packet 3 again under the same SIF_MsgId: a repeat, status 7, nothing routed again
    repeat = await agent.post(_packet(agent, request, 3, False, parts[3], ids[3]))
    assert repeat.status_code == 7 and repeat.error_category is None, repeat.raw
    await running.settle()
    assert await running.drain("cme") == []
    async with running.hub.store.transaction() as tx:
        assert (await tx.disclosures.stats()).routed == {"LearnerPersonal": len(learners)}


# --- partial Change and key-only Delete ------------------------------------------------------


def _by_action(copies: list[Received]) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = {}
    for c in copies:
        out.setdefault(c.headers[naming.H_ACTION], []).append(c)
    return out


async def test_change_with_some_elements_is_accepted_and_routed(running: RunningHub) -> None:
    agent = running.agent("hilltop-mis")
    assert (await agent.register("Push")).ok
    p = _hilltop_learners(1)[0]
    cohort = await running.admin(
        "PUT",
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": [p.refid]},
    )
    assert cohort.status_code == 200, cohort.text
    change = (
        f'<LearnerPersonal RefId="{p.refid}"><PersonalInformation>'
        '<Name Type="C"><FamilyName>Fletcher-Allsop</FamilyName></Name>'
        f"</PersonalInformation><UPN>{p.upn}</UPN></LearnerPersonal>"
    )
    ack = await agent.send_event("LearnerPersonal", "Change", change)
    assert ack.status_code == 0 and ack.error_category is None, ack.raw
    await running.settle()
    (copy,) = await running.drain("cme", expect=1)
    assert copy.headers[naming.H_ACTION] == "Change"
    assert copy.headers[naming.H_SCHOOL] == HILLTOP
    assert copy.object.get("RefId") == p.refid
    assert copy.element_paths() == {
        "PersonalInformation",
        "PersonalInformation/Name",
        "PersonalInformation/Name/FamilyName",
        "UPN",
    }
    # VS takes Add and Change for its cohort, released at its next window (09:30)
    assert await running.drain("virtual-school") == []
    running.clock.advance(hours=3, minutes=31)
    await running.release()
    (vs,) = await running.drain("virtual-school", expect=1)
    assert vs.headers[naming.H_ACTION] == "Change"


async def test_delete_with_only_keys_is_accepted_and_routed(running: RunningHub) -> None:
    agent = running.agent("hilltop-mis")
    assert (await agent.register("Push")).ok
    p = _hilltop_learners(1)[0]
    # Known first (Hilltop's CME pupil list names a child by UPN: a copy about a learner
    # whose UPN the hub has never seen would wait for it, see tests/e2e/test_leaks.py).
    assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
    await running.settle()
    for subscriber in ("cme", "admissions", "virtual-school"):
        await running.drain(subscriber)
    ack = await agent.send_event(
        "LearnerPersonal", "Delete", f'<LearnerPersonal RefId="{p.refid}"/>'
    )
    assert ack.status_code == 0 and ack.error_category is None, ack.raw
    await running.settle()
    (copy,) = await running.drain("cme", expect=1)
    assert copy.headers[naming.H_ACTION] == "Delete"
    assert copy.object.get("RefId") == p.refid
    assert copy.element_paths() == set()
    (adm,) = await running.drain("admissions", expect=1)
    assert adm.headers[naming.H_ACTION] == "Delete"
    # DSA-VS-2026 covers Add and Change only: the Virtual School gets no Delete
    assert await running.drain("virtual-school") == []


async def test_delete_attendance_with_only_keys_goes_to_its_subscribers(
    running: RunningHub,
) -> None:
    agent = running.agent("hilltop-mis")
    assert (await agent.register("Push")).ok
    p = _hilltop_learners(1)[0]
    refid = m.refid()
    key_only = (
        f'<LearnerAttendance RefId="{refid}" LearnerPersonalRefId="{p.refid}" '
        f'SchoolInfoRefId="{p.school.refid}"/>'
    )
    ack = await agent.send_event("LearnerAttendance", "Delete", key_only)
    assert ack.status_code == 0 and ack.error_category is None, ack.raw
    await running.settle()
    assert await running.drain("attendance-team") == []  # weekly return: Monday 07:00
    running.clock.advance(hours=1, minutes=1)
    await running.release()
    copies = _by_action(await running.drain("attendance-team", expect=1))
    assert sorted(copies) == ["Delete"]
    (copy,) = copies["Delete"]
    assert copy.object.get("RefId") == refid
    assert copy.object.get("LearnerPersonalRefId") == p.refid
