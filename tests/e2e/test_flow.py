"""End to end over HTTP, the real database and real RabbitMQ: what each LA service gets is
exactly what its agreement in deploy/examples/county.yaml allows."""

from __future__ import annotations

from datetime import date

import pytest

from hub.core import naming
from hub.core.paths import PathFilter, parse_path
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.la_consumer import Received
from tests.e2e.conftest import RunningHub

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 23)
AGENT_FOR = {"8302001": "hilltop-mis", "8304012": "dovedale-mis", "8302105": "matlock-mis"}


async def _register_all(running: RunningHub) -> None:
    for agent_id in AGENT_FOR.values():
        assert (await running.agent(agent_id).register()).ok


async def _school_day(running: RunningHub, learners: list[data.Learner]) -> None:
    for p in learners:
        agent = running.agent(AGENT_FOR[p.school.laestab])
        assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
        ack = await agent.send_event(
            "LearnerAttendance", "Add", data.learner_attendance(p, DAY, "AM", "/")
        )
        assert ack.ok, ack.raw


def _by_object(copies: list[Received]) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = {}
    for c in copies:
        out.setdefault(c.headers[naming.H_OBJECT], []).append(c)
    return out


def _within(copy: Received, include: list[str] | None, exclude: list[str] = ()) -> bool:  # type: ignore[assignment]
    flt = PathFilter.of(include, list(exclude))
    return all(flt.allows(parse_path(p)) for p in copy.element_paths())


EXCLUDED_BY_SCHOOL = "P830200123843"  # Hilltop's all_except entry in DSA-CME-2026


async def test_each_service_receives_only_its_agreed_objects_and_elements(
    running: RunningHub,
) -> None:
    learners = data.make_learners(6)
    in_care = learners[1]
    staff = data.make_staff(1)[0]
    cohort = await running.admin(
        "PUT",
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": [in_care.upn]},
    )
    assert cohort.status_code == 200, cohort.text
    await _register_all(running)
    await _school_day(running, learners)
    suspended = learners[0]
    exclusion = data.learner_exclusion(suspended, DAY, 4)
    agent = running.agent(AGENT_FOR[suspended.school.laestab])
    assert (await agent.send_event("LearnerExclusion", "Add", exclusion)).ok
    hr = running.agent(AGENT_FOR[staff.school.laestab])
    assert (await hr.send_event("WorkforcePersonal", "Add", data.workforce_personal(staff))).ok
    await running.settle()

    # Immediate flows. CME: every pupil but the one Hilltop excluded, minimised.
    cme = _by_object(await running.drain("cme", expect=10))
    assert sorted(cme) == ["LearnerAttendance", "LearnerPersonal"]
    assert len(cme["LearnerPersonal"]) == 5 and len(cme["LearnerAttendance"]) == 5
    assert all(EXCLUDED_BY_SCHOOL.encode() not in c.body for c in cme["LearnerPersonal"])
    for copy in cme["LearnerPersonal"]:
        paths = copy.element_paths()
        assert {
            "UPN",
            "PersonalInformation/Name/FamilyName",
            "PersonalInformation/Address",
        } <= paths
        assert not any(
            "Ethnicity" in p or "Religion" in p or "InCare" in p or "Phone" in p for p in paths
        )
        assert b"WBRI" not in copy.body

    hr_copies = _by_object(await running.drain("hr-payroll", expect=1))
    assert sorted(hr_copies) == ["WorkforcePersonal"]
    wf = hr_copies["WorkforcePersonal"][0]
    assert "NINumber" in wf.element_paths()
    assert not any("Demographics" in p for p in wf.element_paths())

    admissions = _by_object(await running.drain("admissions", expect=6))
    assert sorted(admissions) == ["LearnerPersonal"]
    assert all(
        _within(
            c,
            [
                "PersonalInformation/Name",
                "PersonalInformation/Demographics/BirthDate",
                "PersonalInformation/Address",
                "UPN",
                "CurrentSchoolEnrolment",
            ],
        )
        for c in admissions["LearnerPersonal"]
    )

    send = _by_object(await running.drain("send-team", expect=6))
    assert sorted(send) == ["LearnerPersonal"]  # Art 9(2)(g) agreement, but only what it names
    assert await running.drain("youth-justice") == []  # draft agreement

    # Windowed flows are held: the Virtual School twice a day, attendance weekly on Monday.
    assert await running.drain("virtual-school") == []
    assert await running.drain("attendance-team") == []
    running.clock.advance(hours=1, minutes=1)  # Monday 07:01 UTC = 07:01 in London
    await running.release()
    att = _by_object(await running.drain("attendance-team", expect=7))
    assert sorted(att) == ["LearnerAttendance", "LearnerExclusion"]
    assert all("AttendanceNote" not in c.element_paths() for c in att["LearnerAttendance"])
    assert att["LearnerExclusion"][0].element_paths().isdisjoint({"Appeal", "AppealDate"})
    assert await running.drain("virtual-school") == []  # its window is 09:30
    running.clock.advance(hours=2, minutes=30)
    await running.release()
    vs = _by_object(await running.drain("virtual-school", expect=2))
    assert sorted(vs) == ["LearnerAttendance", "LearnerPersonal"]  # the cohort member only
    (person,) = vs["LearnerPersonal"]
    assert person.object.get("RefId") == in_care.refid
    assert person.element_paths() == {
        "PersonalInformation",
        "PersonalInformation/Name",
        "PersonalInformation/Name/FamilyName",
        "PersonalInformation/Name/GivenName",
        "PersonalInformation/Demographics",
        "PersonalInformation/Demographics/BirthDate",
        "UPN",
    }
    (mark,) = vs["LearnerAttendance"]
    assert mark.element_paths() == {"AttendanceDate", "Session", "AttendanceCode"}
    assert mark.object.get("LearnerPersonalRefId") == in_care.refid  # keys always survive


async def test_copies_carry_the_documented_headers(running: RunningHub) -> None:
    await _register_all(running)
    p = data.make_learners(2)[1]  # Dovedale: its CME pupil list names nobody by UPN
    agent = running.agent(AGENT_FOR[p.school.laestab])
    assert (
        await agent.send_event(
            "LearnerAttendance", "Add", data.learner_attendance(p, DAY, "PM", "N")
        )
    ).ok
    await running.settle()
    (copy,) = await running.drain("cme", expect=1)
    assert copy.headers[naming.H_ZONE] == "derbyshire"
    assert copy.headers[naming.H_OBJECT] == "LearnerAttendance"
    assert copy.headers[naming.H_ACTION] == "Add"
    assert copy.headers[naming.H_SOURCE] == agent.agent_id
    assert copy.headers[naming.H_SCHOOL] == p.school.laestab
    assert copy.headers[naming.H_AGREEMENT] == "DSA-CME-2026"
    assert copy.headers[naming.H_AGREEMENT_VERSION] == "1"
    assert len(copy.headers[naming.H_MESSAGE_ID]) == 32
    assert copy.delivery_mode == 2
    assert copy.message_id.encode() in copy.body  # the copy's SIF_MsgId is the AMQP message_id


async def test_repeat_of_a_message_is_acked_7_and_routed_once(running: RunningHub) -> None:
    await _register_all(running)
    p = data.make_learners(2)[1]  # Dovedale: its CME pupil list names nobody by UPN
    agent = running.agent(AGENT_FOR[p.school.laestab])
    body = data.learner_attendance(p, DAY, "AM", "L")
    msg_id = m.msg_id()
    first = await agent.send_event("LearnerAttendance", "Add", body, message_id=msg_id)
    again = await agent.send_event("LearnerAttendance", "Add", body, message_id=msg_id)
    assert first.status_code == 0 and again.status_code == 7
    await running.settle()
    assert len(await running.drain("cme", expect=1)) == 1


async def test_agent_may_not_speak_for_another_school(running: RunningHub) -> None:
    await _register_all(running)
    other = next(p for p in data.make_learners(3) if p.school.laestab == "8304012")
    ack = await running.agent("hilltop-mis").send_event(
        "LearnerAttendance", "Add", data.learner_attendance(other, DAY, "AM", "/")
    )
    assert (ack.error_category, ack.error_code) == (4, 10)
    await running.settle()
    assert await running.drain("cme") == []


async def test_events_need_registration_first(running: RunningHub) -> None:
    p = data.make_learners(1)[0]
    ack = await running.agent(AGENT_FOR[p.school.laestab]).send_event(
        "LearnerPersonal", "Add", data.learner_personal(p)
    )
    assert (ack.error_category, ack.error_code) == (4, 9)
