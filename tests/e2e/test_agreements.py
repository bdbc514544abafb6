"""End to end over HTTP, the real database and real RabbitMQ: the agreements engine.

Lifecycle with real effects (suspension holds, termination stops), re-consent when an
agreement widens, suppression overriding every agreement, the disclosure log and subject
access, previews and diffs, refusal of bad agreements, and special category data.
Agreements are those of deploy/examples/county.yaml.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from hub.configfile import load_config
from hub.core import naming
from hub.core.admins import BOOTSTRAP
from hub.core.envelope import SIF_UK_NS
from hub.pipeline.release import release_once
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.la_consumer import Received
from tests.e2e.conftest import ADMIN, COUNTY, REPO, RunningHub

pytestmark = pytest.mark.integration

NS = {"s": SIF_UK_NS}
PROBLEM = "application/problem+json"
DAY = date(2026, 11, 23)
AGENT_FOR = {"8302001": "hilltop-mis", "8304012": "dovedale-mis", "8302105": "matlock-mis"}
SUBSCRIBERS = [
    "cme",
    "virtual-school",
    "admissions",
    "attendance-team",
    "send-team",
    "youth-justice",
    "hr-payroll",
]
CME, VS, ADM, SEND, YJ = (
    "DSA-CME-2026",
    "DSA-VS-2026",
    "DSA-ADM-2026",
    "DSA-SEND-2026",
    "DSA-YJ-2027",
)
ACTOR = BOOTSTRAP  # who authenticated (ADMIN), whatever a header says
PHONE = "PersonalInformation/PhoneNumber"
GENDER = "PersonalInformation/Demographics/Gender"
SPECIAL = ("EthnicityList", "Religion")

LEARNERS = data.make_learners(9)
HILLTOP, DOVEDALE, MATLOCK = LEARNERS[0], LEARNERS[1], LEARNERS[2]
HILLTOP_OBJECTED = LEARNERS[3]  # P830200123843: Hilltop's all_except entry in DSA-CME-2026
HILLTOP_2, DOVEDALE_2 = LEARNERS[6], LEARNERS[4]
assert HILLTOP_OBJECTED.upn == "P830200123843"
assert {HILLTOP.school.laestab, HILLTOP_2.school.laestab} == {"8302001"}
assert {DOVEDALE.school.laestab, DOVEDALE_2.school.laestab} == {"8304012"}


# --- helpers ------------------------------------------------------------------------------


async def _register_all(running: RunningHub) -> None:
    for agent_id in AGENT_FOR.values():
        assert (await running.agent(agent_id).register()).ok


async def _send(running: RunningHub, p: data.Learner, object_name: str, xml: str) -> None:
    ack = await running.agent(AGENT_FOR[p.school.laestab]).send_event(object_name, "Add", xml)
    assert ack.ok, ack.raw


async def _personal(running: RunningHub, *learners: data.Learner) -> None:
    for p in learners:
        await _send(running, p, "LearnerPersonal", data.learner_personal(p))


async def _mark(running: RunningHub, *learners: data.Learner) -> None:
    for p in learners:
        await _send(running, p, "LearnerAttendance", data.learner_attendance(p, DAY, "AM", "/"))


def _special_needs(p: data.Learner) -> str:
    """A valid LearnerSpecialNeeds (Provision and StartDate are mandatory)."""
    return (
        f'<LearnerSpecialNeeds RefId="{m.refid()}" LearnerPersonalRefId="{p.refid}" '
        f'SchoolInfoRefId="{p.school.refid}">'
        "<NextReviewDate>2027-03-01</NextReviewDate>"
        "<Provision>K</Provision><StartDate>2025-09-01</StartDate>"
        '<SENTypeList><SENType Ranking="1">SLCN</SENType><SENType Ranking="2">ASD</SENType>'
        "</SENTypeList>"
        "<MedicalFlag>Yes</MedicalFlag><MedicalNotes>Epilepsy care plan</MedicalNotes>"
        "</LearnerSpecialNeeds>"
    )


def _objects(copies: list[Received], object_name: str) -> list[Received]:
    return [c for c in copies if c.headers[naming.H_OBJECT] == object_name]


def _about(copies: list[Received], p: data.Learner) -> list[Received]:
    """Copies whose object is, or refers to, learner `p`."""
    return [
        c
        for c in copies
        if p.refid in (c.object.get("RefId"), c.object.get("LearnerPersonalRefId"))
    ]


async def _everything(running: RunningHub) -> dict[str, list[Received]]:
    """Whatever is now in every subscriber's queue (taken)."""
    return {s: await running.drain(s) for s in SUBSCRIBERS}


async def _summary(running: RunningHub, agreement_id: str) -> dict[str, Any]:
    response = await running.admin("GET", "/admin/agreements")
    assert response.status_code == 200, response.text
    (found,) = [a for a in response.json() if a["id"] == agreement_id]
    return dict(found)


async def _versions(running: RunningHub, agreement_id: str) -> list[int]:
    async with running.hub.store.transaction() as tx:
        return [v.version for v in await tx.agreements.versions(agreement_id)]


async def _lifecycle(
    running: RunningHub, agreement_id: str, transition: str, **extra: object
) -> httpx.Response:
    return await running.admin(
        "POST",
        f"/admin/agreements/{agreement_id}/lifecycle",
        json={"transition": transition, **extra},
    )


async def _transition(
    running: RunningHub, agreement_id: str, transition: str, expect: str, **extra: object
) -> None:
    response = await _lifecycle(running, agreement_id, transition, **extra)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == expect


async def _decide(running: RunningHub, agreement_id: str, decision: str) -> httpx.Response:
    return await running.admin(
        "POST", f"/admin/agreements/{agreement_id}/held", json={"decision": decision}
    )


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status and body["title"]
    return dict(body)


def _spec(agreement_id: str) -> dict[str, Any]:
    """Version 1 of a seed agreement, as the JSON an ops user would post."""
    config = load_config(COUNTY)
    (spec,) = [a for a in config.agreements if a.id == agreement_id]
    return copy.deepcopy(spec.model_dump(mode="json"))


def _rule(body: dict[str, Any], object_name: str) -> dict[str, Any]:
    (rule,) = [r for r in body["rules"] if r["object"] == object_name]
    assert isinstance(rule, dict)
    return rule


def _cme_v2() -> dict[str, Any]:
    """DSA-CME-2026 version 2: version 1 plus the pupil's phone numbers; nobody approved it."""
    body = _spec(CME)
    body["version"] = 2
    body["schools"] = []
    _rule(body, "LearnerPersonal")["include"].append(PHONE)
    return body


async def _post_version(running: RunningHub, body: dict[str, Any]) -> dict[str, Any]:
    response = await running.admin("POST", "/admin/agreements", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _audit(running: RunningHub, action: str) -> list[tuple[str, str]]:
    async with running.hub.store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT actor, subject FROM audit WHERE action = :action"), {"action": action}
        )
        return [(str(r.actor), str(r.subject)) for r in rows.all()]


async def _held_outcomes(running: RunningHub, agreement_id: str) -> list[str]:
    async with running.hub.store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT outcome FROM held_copies WHERE agreement_id = :a"), {"a": agreement_id}
        )
        return [str(r.outcome) for r in rows.all()]


def _sole_releaser(running: RunningHub) -> None:
    """Stop the hub's own release loop, so that `running.release()` is the only releaser
    and copy counts are exact (two releasers at once release a held copy twice: see
    test_concurrent_releases_deliver_a_held_copy_once)."""
    running.hub.supervisor.cancel("release")


def _every_window_passed(running: RunningHub) -> None:
    """From Monday 06:00 UTC to 14:30: past 07:00 (attendance), 09:30 and 14:00 (VS)."""
    running.clock.advance(hours=8, minutes=30)


# --- 1. suspension (Kent 7c) --------------------------------------------------------------


async def test_suspension_holds_copies_until_released_once(running: RunningHub) -> None:
    _sole_releaser(running)
    await _register_all(running)
    await _transition(running, CME, "suspend", "suspended", reason="breach")
    await _personal(running, DOVEDALE)
    await _mark(running, DOVEDALE)
    await running.settle()

    assert await running.drain("cme") == []
    assert len(await running.drain("admissions", expect=1)) == 1  # other agreements flow
    summary = await _summary(running, CME)
    assert summary["status"] == "suspended" and summary["reason"] == "breach"
    assert summary["held"] == {"suspended": 2}

    refused = await _decide(running, CME, "release")
    _assert_problem(refused, 409)
    assert (await _summary(running, CME))["held"] == {"suspended": 2}  # nothing decided

    await _transition(running, CME, "reinstate", "live")
    await running.release()
    assert await running.drain("cme") == []  # reinstating decides nothing
    assert (await _summary(running, CME))["held"] == {"suspended": 2}

    decided = await _decide(running, CME, "release")
    assert decided.status_code == 200, decided.text
    assert decided.json()["copies"] == 2
    await running.release()
    got = await running.drain("cme", expect=2)
    assert sorted(c.headers[naming.H_OBJECT] for c in got) == [
        "LearnerAttendance",
        "LearnerPersonal",
    ]
    assert len({c.message_id for c in got}) == 2 == len(got)  # exactly once
    assert all(c.headers[naming.H_AGREEMENT] == CME for c in got)
    assert (await _summary(running, CME))["held"] == {}
    await running.release()
    assert await running.drain("cme") == []
    assert sorted(await _held_outcomes(running, CME)) == ["released", "released"]
    async with running.hub.store.transaction() as tx:
        rows = await tx.disclosures.for_subject(upn=DOVEDALE.upn)
    assert len([r for r in rows if r.subscriber == "cme"]) == 2  # one row per copy, once


async def test_suspension_discard_decision_drops_held_copies(running: RunningHub) -> None:
    _sole_releaser(running)
    await _register_all(running)
    await _transition(running, CME, "suspend", "suspended", reason="breach")
    await _personal(running, DOVEDALE, MATLOCK)
    await running.settle()
    assert (await _summary(running, CME))["held"] == {"suspended": 2}
    _assert_problem(await _decide(running, CME, "discard"), 409)

    await _transition(running, CME, "reinstate", "live")
    decided = await _decide(running, CME, "discard")
    assert decided.status_code == 200 and decided.json()["copies"] == 2, decided.text
    await running.release()
    _every_window_passed(running)
    await running.release()
    assert await running.drain("cme") == []
    assert (await _summary(running, CME))["held"] == {}
    assert await _held_outcomes(running, CME) == ["discarded", "discarded"]

    await _personal(running, DOVEDALE_2)  # and copies flow again afterwards
    await running.settle()
    (again,) = await running.drain("cme", expect=1)
    assert again.object.get("RefId") == DOVEDALE_2.refid


async def test_suspension_that_runs_out_lets_new_copies_flow(running: RunningHub) -> None:
    _sole_releaser(running)
    await _register_all(running)
    await _transition(running, CME, "suspend", "suspended", reason="breach", days=1)
    await _personal(running, DOVEDALE)
    await running.settle()
    assert await running.drain("cme") == []

    running.clock.advance(days=2)
    summary = await _summary(running, CME)
    assert summary["status"] == "live"
    assert summary["held"] == {"suspended": 1}  # still awaiting a decision
    await _personal(running, MATLOCK)
    await running.settle()
    await running.release()
    (copy_,) = await running.drain("cme", expect=1)
    assert copy_.object.get("RefId") == MATLOCK.refid  # the new one, not the held one
    decided = await _decide(running, CME, "release")  # no longer 409
    assert decided.status_code == 200 and decided.json()["copies"] == 1, decided.text


async def test_concurrent_releases_deliver_a_held_copy_once(running: RunningHub) -> None:
    cohort = await running.admin(
        "PUT",
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": [DOVEDALE.upn]},
    )
    assert cohort.status_code == 200, cohort.text
    await _register_all(running)
    await _personal(running, DOVEDALE)
    await running.settle()
    assert (await _summary(running, VS))["held"] == {"schedule": 1}
    running.clock.advance(hours=3, minutes=31)  # past 09:30 in London
    await asyncio.gather(running.release(), running.release())
    got = await running.drain("virtual-school", expect=1)
    async with running.hub.store.transaction() as tx:
        rows = await tx.disclosures.for_subject(upn=DOVEDALE.upn)
    assert len([r for r in rows if r.subscriber == "virtual-school"]) == 1
    assert len(got) == 1


async def test_copies_due_during_a_suspension_obey_the_held_decision(
    running: RunningHub,
) -> None:
    _sole_releaser(running)
    cohort = await running.admin(
        "PUT",
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": [DOVEDALE.upn]},
    )
    assert cohort.status_code == 200, cohort.text
    await _register_all(running)
    await _personal(running, DOVEDALE)  # held for the 09:30 window
    await running.settle()
    await _transition(running, VS, "suspend", "suspended", reason="breach")
    running.clock.advance(hours=3, minutes=31)  # the window comes during the suspension
    await running.release()
    assert await running.drain("virtual-school") == []
    await _transition(running, VS, "reinstate", "live")
    decided = await _decide(running, VS, "discard")
    assert decided.status_code == 200, decided.text
    await running.release()
    assert await running.drain("virtual-school") == []


async def test_copies_waiting_on_a_suspension_do_not_block_other_agreements(
    running: RunningHub,
) -> None:
    _sole_releaser(running)
    cohort = await running.admin(
        "PUT",
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": [DOVEDALE.upn]},
    )
    assert cohort.status_code == 200, cohort.text
    await _register_all(running)
    await _personal(running, DOVEDALE)  # Virtual School: held for 09:30
    await running.settle()
    await _mark(running, MATLOCK)  # attendance team: held for 07:00, after it
    await running.settle()
    await _transition(running, VS, "suspend", "suspended", reason="breach")
    _every_window_passed(running)
    # One copy per pass stands for the default 200 with 200 Virtual School copies waiting.
    for _ in range(3):
        await release_once(running.hub.dispatch, limit=1)
    (mark,) = await running.drain("attendance-team", expect=1, wait_seconds=2)
    assert mark.object.get("LearnerPersonalRefId") == MATLOCK.refid


# --- 2. termination (Kent 7d) -------------------------------------------------------------


async def test_notice_then_termination_stops_everything_for_good(running: RunningHub) -> None:
    _sole_releaser(running)
    await _register_all(running)
    await _transition(running, CME, "give_notice", "terminating", reason="service ends")
    assert (await _summary(running, CME))["status"] == "terminating"
    await _personal(running, DOVEDALE)
    await running.settle()
    (during,) = await running.drain("cme", expect=1)  # notice lifts nothing yet
    assert during.object.get("RefId") == DOVEDALE.refid

    running.clock.advance(days=31)
    assert (await _summary(running, CME))["status"] == "terminated"
    await _personal(running, MATLOCK)
    await _mark(running, MATLOCK)
    await running.settle()
    await running.release()
    assert await running.drain("cme") == []
    # the hub still routes (admissions: one copy from before the notice ended, one after)
    assert len(await running.drain("admissions", expect=2)) == 2
    assert (await _summary(running, CME))["held"] == {}

    for transition in ("go_live", "suspend", "reinstate", "give_notice", "reviewed"):
        body = _assert_problem(await _lifecycle(running, CME, transition, reason="x"), 409)
        assert "terminated" in body["detail"]
    assert (await _summary(running, CME))["status"] == "terminated"


# --- 3. re-consent on widening ------------------------------------------------------------


async def test_widening_needs_each_schools_approval_narrowing_carries_it(
    running: RunningHub,
) -> None:
    await _register_all(running)
    added = await _post_version(running, _cme_v2())
    assert added == {
        "id": CME,
        "version": 2,
        "widens": True,
        "widened_for": ["cme"],
        "created": True,
    }
    assert await _versions(running, CME) == [1, 2]

    await _personal(running, HILLTOP, DOVEDALE)
    await running.settle()
    before = await running.drain("cme", expect=2)
    assert len(before) == 2
    for c in before:
        assert c.headers[naming.H_AGREEMENT_VERSION] == "1"
        assert not any(p.startswith(PHONE) for p in c.element_paths())
        assert GENDER in c.element_paths()

    approval = await running.admin(
        "POST",
        f"/admin/agreements/{CME}/approvals",
        json={"laestab": "8304012", "approved_by": "Principal", "version": 2},
    )
    assert approval.status_code == 201, approval.text
    await _personal(running, HILLTOP, DOVEDALE, DOVEDALE_2)
    await running.settle()
    after = await running.drain("cme", expect=3)
    assert len(after) == 3
    for c in after:
        dovedale = c.headers[naming.H_SCHOOL] == "8304012"
        assert c.headers[naming.H_AGREEMENT_VERSION] == ("2" if dovedale else "1")
        assert (f"{PHONE}/Number" in c.element_paths()) is dovedale
    (hilltop,) = _about(after, HILLTOP)
    assert hilltop.headers[naming.H_SCHOOL] == "8302001"

    v3 = _cme_v2()
    v3["version"] = 3
    _rule(v3, "LearnerPersonal")["include"].remove(GENDER)
    added = await _post_version(running, v3)
    assert added["widens"] is False and added["version"] == 3
    await _personal(running, HILLTOP, DOVEDALE)
    await running.settle()
    narrowed = await running.drain("cme", expect=2)
    (dove,) = _about(narrowed, DOVEDALE)
    assert dove.headers[naming.H_AGREEMENT_VERSION] == "3"  # approval of 2 carried over
    assert GENDER not in dove.element_paths()
    assert f"{PHONE}/Number" in dove.element_paths()
    (hill,) = _about(narrowed, HILLTOP)
    assert hill.headers[naming.H_AGREEMENT_VERSION] == "1"  # never approved the widening
    assert GENDER in hill.element_paths()
    assert not any(p.startswith(PHONE) for p in hill.element_paths())


# --- 4. suppression (Kent 4i/4j) ----------------------------------------------------------


async def test_suppression_overrides_every_agreement_until_lifted(running: RunningHub) -> None:
    _sole_releaser(running)
    by_upn, by_refid = HILLTOP_2, DOVEDALE_2
    cohort = await running.admin(
        "PUT",
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": [by_upn.upn, by_refid.upn]},
    )
    assert cohort.status_code == 200, cohort.text
    await _register_all(running)
    # Before any suppression: copies flow, and the Virtual School's copy waits for 09:30.
    await _personal(running, by_upn, by_refid)
    await running.settle()
    assert len(await running.drain("cme", expect=2)) == 2
    await _everything(running)  # take what left before the suppression
    assert (await _summary(running, VS))["held"] == {"schedule": 2}

    made = await running.admin(
        "POST", "/admin/suppressions", json={"learner": by_upn.upn, "reason": "deceased"}
    )
    assert made.status_code == 201, made.text
    suppression = made.json()
    assert suppression["learner"] == by_upn.upn
    made = await running.admin(
        "POST",
        "/admin/suppressions",
        json={"learner": by_refid.refid, "reason": "confidential-placement"},
    )
    assert made.status_code == 201, made.text
    listed = await running.admin("GET", "/admin/suppressions")
    assert listed.status_code == 200, listed.text
    assert {s["learner"] for s in listed.json()} == {by_upn.upn, by_refid.refid}

    await _personal(running, by_upn, by_refid, MATLOCK)
    await _mark(running, by_upn, by_refid, MATLOCK)
    await running.settle()
    _every_window_passed(running)
    await running.release()
    got = await _everything(running)
    for subscriber, copies in got.items():
        assert _about(copies, by_upn) == [], subscriber
        assert _about(copies, by_refid) == [], subscriber
    # Not a blanket stop: the unsuppressed pupil still reaches CME and the attendance team.
    assert len(_about(got["cme"], MATLOCK)) == 2
    assert len(_about(got["attendance-team"], MATLOCK)) == 1
    assert (await _summary(running, VS))["held"] == {}
    assert sorted(await _held_outcomes(running, VS)) == ["dropped", "dropped"]

    lifted = await running.admin(
        "POST",
        f"/admin/suppressions/{suppression['id']}/lift",
        json={"reason": "recorded in error"},
    )
    assert lifted.status_code == 200, lifted.text
    listed = await running.admin("GET", "/admin/suppressions")
    assert [s["learner"] for s in listed.json()] == [by_refid.refid]
    again = await running.admin(
        "POST",
        f"/admin/suppressions/{suppression['id']}/lift",
        json={"reason": "twice"},
    )
    _assert_problem(again, 404)

    await _personal(running, by_upn, by_refid)
    await _mark(running, by_upn, by_refid)
    await running.settle()
    back = await running.drain("cme", expect=2)
    assert len(_about(back, by_upn)) == 2 and _about(back, by_refid) == []


async def test_suppression_and_its_lifting_are_audited_with_the_actor(
    running: RunningHub,
) -> None:
    made = await running.admin(
        "POST", "/admin/suppressions", json={"learner": HILLTOP.upn, "reason": "adopted"}
    )
    assert made.status_code == 201, made.text
    ident = made.json()["id"]
    lifted = await running.admin(
        "POST", f"/admin/suppressions/{ident}/lift", json={"reason": "recorded in error"}
    )
    assert lifted.status_code == 200, lifted.text
    (suppressed,) = await _audit(running, "learner.suppressed")
    (unsuppressed,) = await _audit(running, "learner.unsuppressed")
    assert suppressed[1] == ident and unsuppressed[1] == ident
    assert suppressed[0] == ACTOR, suppressed
    assert unsuppressed[0] == ACTOR, unsuppressed
    async with running.hub.store.engine.connect() as conn:
        notes = (
            (
                await conn.execute(
                    text("SELECT DISTINCT note FROM audit WHERE action LIKE 'learner.%'")
                )
            )
            .scalars()
            .all()
        )
    assert notes == [ADMIN["X-Hub-Note"]]  # the header's text, beside the actor


# --- 5. disclosure log and subject access -------------------------------------------------


async def _sar(running: RunningHub, **query: str) -> dict[str, Any]:
    """Subject access by POST: the UPN travels in the body, never in the URL."""
    response = await running.admin("POST", "/admin/disclosures/search", json=query)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_disclosure_log_answers_a_subject_access_request(running: RunningHub) -> None:
    _sole_releaser(running)
    p = DOVEDALE
    await _register_all(running)
    puller = running.agent("capita-one")  # admissions' pull agent
    assert (await puller.register("Pull")).ok
    await _personal(running, p, MATLOCK)
    await _mark(running, p)
    await running.settle()
    cme = _about(await running.drain("cme", expect=3), p)
    send = _about(await running.drain("send-team", expect=2), p)
    assert len(cme) == 2 and len(send) == 1

    report = await _sar(running, upn=p.upn)
    rows = report["disclosures"]
    assert report["count"] == len(rows) == 4  # CME x2, admissions, SEND
    assert all(r["upn"] == p.upn and r["subject_refid"] == p.refid for r in rows)
    assert sorted((r["subscriber"], r["object_name"]) for r in rows) == [
        ("admissions", "LearnerPersonal"),
        ("cme", "LearnerAttendance"),
        ("cme", "LearnerPersonal"),
        ("send-team", "LearnerPersonal"),
    ]
    purposes = {a.id: a.purpose for a in running.config.agreements}
    expected_agreement = {"cme": CME, "admissions": ADM, "send-team": SEND}
    for r in rows:
        assert r["agreement_id"] == expected_agreement[r["subscriber"]]
        assert r["agreement_version"] == 1
        assert "Art 6(1)(e)" in r["lawful_basis"]
        assert r["purpose"] == purposes[r["agreement_id"]] and r["purpose"]
        assert r["school"] == p.school.laestab
        assert r["paths"] and not any(s in r["paths"] for s in SPECIAL)
        assert r["acknowledged_at"] is None
    (send_row,) = [r for r in rows if r["subscriber"] == "send-team"]
    assert "Art 9(2)(g)" in send_row["lawful_basis"]
    # Each row is the copy that left: same message ids, same released paths.
    for received in [*cme, *send]:
        (row,) = [r for r in rows if r["copy_msg_id"] == received.message_id]
        assert row["message_id"] == received.headers[naming.H_MESSAGE_ID]
        leaves = {
            x
            for x in received.element_paths()
            if not any(o.startswith(x + "/") for o in received.element_paths())
        }
        assert set(row["paths"].split(" ")) == leaves
    (mark_row,) = [r for r in rows if r["object_name"] == "LearnerAttendance"]
    assert mark_row["paths"].split(" ") == [
        "AttendanceCode",
        "AttendanceDate",
        "AttendanceDomain",
        "Session",
    ]

    # The attendance mark carries only the RefId; it is found by UPN and by RefId alike.
    by_refid = await _sar(running, refid=p.refid)
    assert by_refid["count"] == 4
    assert (await _sar(running, upn=MATLOCK.upn))["count"] == 3  # CME, admissions, SEND

    # A windowed release is logged too, when it leaves.
    running.clock.advance(hours=1, minutes=1)
    await running.release()
    (weekly,) = _about(await running.drain("attendance-team", expect=1), p)
    report = await _sar(running, upn=p.upn)
    assert report["count"] == 5
    (att_row,) = [r for r in report["disclosures"] if r["subscriber"] == "attendance-team"]
    assert att_row["agreement_id"] == "DSA-ATT-2026" and "Art 6(1)(c)" in att_row["lawful_basis"]
    assert att_row["copy_msg_id"] == weekly.message_id

    by_refid = await running.admin("GET", "/admin/disclosures", params={"refid": p.refid})
    assert by_refid.json()["count"] == report["count"]
    csv_response = await running.admin(
        "POST", "/admin/disclosures/search", json={"upn": p.upn, "format": "csv"}
    )
    assert csv_response.status_code == 200, csv_response.text
    assert csv_response.headers["content-type"].startswith("text/csv")
    lines = csv_response.text.strip().splitlines()
    assert lines[0].split(",")[:3] == ["published_at", "subscriber", "agreement_id"]
    assert len(lines) == 1 + 5

    # Pull mode: the admissions agent takes its copy and acknowledges it.
    pulled = await puller.get_message()
    assert pulled.status_code == 0 and pulled.data is not None, pulled.raw
    pulled_id = pulled.data.findtext("s:SIF_Event/s:SIF_Header/s:SIF_MsgId", None, NS)
    (adm_row,) = [r for r in report["disclosures"] if r["subscriber"] == "admissions"]
    if adm_row["copy_msg_id"] != pulled_id:  # MATLOCK's copy came first: ack it and go on
        assert (await puller.ack(str(pulled_id))).ok
        pulled = await puller.get_message()
        assert pulled.data is not None, pulled.raw
        pulled_id = pulled.data.findtext("s:SIF_Event/s:SIF_Header/s:SIF_MsgId", None, NS)
    assert pulled_id == adm_row["copy_msg_id"]
    assert (await puller.ack(str(pulled_id))).ok
    report = await _sar(running, upn=p.upn)
    acked = [r for r in report["disclosures"] if r["acknowledged_at"] is not None]
    assert [r["copy_msg_id"] for r in acked] == [pulled_id]


async def test_disclosures_report_from_the_command_line(
    running: RunningHub, request: pytest.FixtureRequest
) -> None:
    await _register_all(running)
    await _personal(running, DOVEDALE)
    await running.settle()
    expected = (await _sar(running, upn=DOVEDALE.upn))["count"]
    assert expected == 3  # CME, admissions, SEND
    url = running.hub.settings.resolved_database_url()
    if url.startswith("sqlite"):  # one backend is enough for the command itself
        env = {**os.environ, "HUB_DATABASE_URL": url}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub",
            "disclosures",
            "--upn",
            DOVEDALE.upn,
            "--format",
            "json",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()
        report = json.loads(out)
        assert report["count"] == expected == len(report["disclosures"])
        assert {r["subscriber"] for r in report["disclosures"]} == {
            "cme",
            "admissions",
            "send-team",
        }


# --- 6. preview and diff ------------------------------------------------------------------


def _sample(p: data.Learner, xml: str | None = None, object_name: str = "LearnerPersonal") -> str:
    body = m.event(AGENT_FOR[p.school.laestab], object_name, "Add", xml or data.learner_personal(p))
    return body.decode()


async def _preview(
    running: RunningHub, agreement_id: str, school: str, message: str, **extra: object
) -> httpx.Response:
    return await running.admin(
        "POST",
        f"/admin/agreements/{agreement_id}/preview",
        json={"school": school, "message": message, **extra},
    )


async def _previewed(
    running: RunningHub, agreement_id: str, p: data.Learner, **extra: object
) -> list[dict[str, Any]]:
    response = await _preview(running, agreement_id, p.school.laestab, _sample(p), **extra)
    assert response.status_code == 200, response.text
    return list(response.json()["copies"])


async def test_preview_shows_what_would_leave_and_diff_what_a_version_adds(
    running: RunningHub,
) -> None:
    member, outsider = HILLTOP, HILLTOP_2
    cohort = await running.admin(
        "PUT",
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": [member.upn]},
    )
    assert cohort.status_code == 200, cohort.text

    (vs,) = await _previewed(running, VS, member)
    assert vs["recipient"] == "virtual-school" and vs["agreement_version"] == 1
    assert set(vs["paths"]) == {
        "PersonalInformation/Name/GivenName",
        "PersonalInformation/Name/FamilyName",
        "PersonalInformation/Demographics/BirthDate",
        "UPN",
    }
    assert vs["held"] == "schedule" and vs["release_after"]
    assert member.surname in vs["xml"] and member.ethnicity not in vs["xml"]
    assert await _previewed(running, VS, outsider) == []  # not in the cohort

    (yj,) = await _previewed(running, YJ, DOVEDALE)  # a draft previews too
    assert yj["recipient"] == "youth-justice"
    assert set(yj["paths"]) == {
        "PersonalInformation/Name/FamilyName",
        "PersonalInformation/Name/GivenName",
        "UPN",
    }

    bad = _sample(member, f'<LearnerPersonal RefId="{member.refid}"><UPN>{member.upn}</UPN>')
    problem = _assert_problem(await _preview(running, VS, "8302001", bad), 422)
    assert problem["sif_category"] == 1
    missing = _sample(member, f'<LearnerPersonal RefId="{member.refid}"/>')
    problem = _assert_problem(await _preview(running, VS, "8302001", missing), 422)
    assert problem["sif_category"] == 1 and member.upn not in json.dumps(problem)

    await _post_version(running, _cme_v2())
    response = await running.admin(
        "GET", f"/admin/agreements/{CME}/diff", params={"from_version": 1, "to_version": 2}
    )
    assert response.status_code == 200, response.text
    diff = response.json()
    assert diff["widens"] is True
    assert list(diff["objects"]) == ["LearnerPersonal"]
    gained = diff["objects"]["LearnerPersonal"]["gained"]
    assert gained and all(g.startswith(PHONE + "/") for g in gained)
    assert f"{PHONE}/Number" in gained
    assert diff["objects"]["LearnerPersonal"]["lost"] == []
    # The unapproved version previews with the phone number; nothing is published.
    (cme,) = await _previewed(running, CME, DOVEDALE, version=2)
    assert f"{PHONE}/Number" in cme["paths"]
    (cme1,) = await _previewed(running, CME, DOVEDALE, version=1)
    assert not any(x.startswith(PHONE) for x in cme1["paths"])
    assert await running.drain("cme") == [] and await running.drain("virtual-school") == []


# --- 7. bad agreements are refused whole --------------------------------------------------


def _new_agreement(**changes: Any) -> dict[str, Any]:
    body = _spec(CME)
    body.update(id=f"DSA-NEW-{uuid.uuid4().hex[:6]}", version=1, **changes)
    return body


def _bad_payloads() -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """(case, payload, words one problem must contain)."""
    unknown_object = _new_agreement(rules=[{"object": "LearnerShoeSize"}])
    bad_path = _new_agreement(
        rules=[{"object": "LearnerPersonal", "include": ["UPN", "PersonalInformation/ShoeSize"]}]
    )
    ethnicity = _new_agreement(
        rules=[
            {
                "object": "LearnerPersonal",
                "include": ["UPN", "PersonalInformation/Demographics/EthnicityList"],
            }
        ]
    )
    sen = _new_agreement(rules=[{"object": "LearnerSpecialNeeds"}])
    recipient = _new_agreement(recipients=["cme", "the-press"])
    school = _new_agreement()
    school["schools"][0]["laestab"] = "8309999"
    return [
        ("unknown object", unknown_object, ("rules", "LearnerShoeSize", "unknown object")),
        ("no such path", bad_path, ("rules[0]", "PersonalInformation/ShoeSize", "not exist")),
        ("Art 9 element", ethnicity, ("EthnicityList", "article9")),
        ("Art 9 object", sen, ("LearnerSpecialNeeds", "article9")),
        ("unknown recipient", recipient, ("recipients", "the-press")),
        ("unknown school", school, ("schools", "8309999")),
    ]


async def test_bad_agreements_are_refused_and_nothing_is_applied(running: RunningHub) -> None:
    before = await running.admin("GET", f"/admin/agreements/{CME}")
    assert before.status_code == 200
    for case, payload, words in _bad_payloads():
        response = await running.admin("POST", "/admin/agreements", json=payload)
        body = _assert_problem(response, 422)
        problems = body["problems"]
        assert any(all(w in p for w in words) for p in problems), (case, problems)
        assert await _versions(running, payload["id"]) == [], case
        missing = await running.admin("GET", f"/admin/agreements/{payload['id']}")
        assert missing.status_code == 404, case
    async with running.hub.store.transaction() as tx:
        assert not [
            r for r in await tx.agreements.lifecycles() if r.agreement_id.startswith("DSA-NEW")
        ]
        assert not [
            a for a in await tx.agreements.approvals() if a.agreement_id.startswith("DSA-NEW")
        ]

    # Versions of an existing agreement: a higher one is stored, an older one is refused.
    v3 = _spec(CME)
    v3["version"] = 3
    v3["schools"] = []
    assert (await _post_version(running, v3))["widens"] is False
    v2 = _cme_v2()
    body = _assert_problem(await running.admin("POST", "/admin/agreements", json=v2), 422)
    assert any("overlapping" in p and "version 2" in p for p in body["problems"]), body
    changed = _spec(CME)
    changed["title"] = "Something else entirely"
    body = _assert_problem(await running.admin("POST", "/admin/agreements", json=changed), 422)
    assert any("version 1" in p and "different" in p for p in body["problems"]), body
    resent = await running.admin("POST", "/admin/agreements", json=_spec(CME))  # identical
    assert resent.status_code == 201 and resent.json()["created"] is False, resent.text
    assert await _versions(running, CME) == [1, 3]

    anonymous = await running.client.post("/admin/agreements", json=_cme_v2())
    _assert_problem(anonymous, 401)
    assert await _versions(running, CME) == [1, 3]
    after = await running.admin("GET", f"/admin/agreements/{CME}")
    assert after.json()["approvals"] == before.json()["approvals"]
    assert after.json()["lifecycle"] == before.json()["lifecycle"]


# --- 8. special category data -------------------------------------------------------------


async def test_special_category_leaves_only_under_an_article_9_condition(
    running: RunningHub,
) -> None:
    _sole_releaser(running)
    # Admissions version 2 takes the whole LearnerPersonal: without an Art 9 condition the
    # special category elements are still stripped.
    whole = _spec(ADM)
    whole["version"] = 2
    _rule(whole, "LearnerPersonal").pop("include")
    for school in whole["schools"]:
        school["version"] = 2
    assert (await _post_version(running, whole))["widens"] is True
    cohort = await running.admin(
        "PUT",
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": [DOVEDALE.refid]},
    )
    assert cohort.status_code == 200, cohort.text
    await _register_all(running)
    await _personal(running, HILLTOP, DOVEDALE, MATLOCK)
    await _send(running, DOVEDALE, "LearnerSpecialNeeds", _special_needs(DOVEDALE))
    await running.settle()
    _every_window_passed(running)
    await running.release()
    got = await _everything(running)

    (sen,) = _objects(got["send-team"], "LearnerSpecialNeeds")
    assert sen.headers[naming.H_AGREEMENT] == SEND
    assert {"Provision", "StartDate", "SENTypeList/SENType", "MedicalNotes"} <= (
        sen.element_paths()
    )
    for subscriber, copies in got.items():
        if subscriber != "send-team":
            assert _objects(copies, "LearnerSpecialNeeds") == [], subscriber

    admissions = _objects(got["admissions"], "LearnerPersonal")
    assert len(admissions) == 3
    for c in admissions:
        assert c.headers[naming.H_AGREEMENT_VERSION] == "2"
        assert {"InCare/Current", f"{PHONE}/Number", GENDER} <= c.element_paths()
    assert len(got["cme"]) == 3 and len(_objects(got["virtual-school"], "LearnerPersonal")) == 1
    copies = [c for cs in got.values() for c in cs]
    assert {c.headers[naming.H_AGREEMENT] for c in copies} == {CME, VS, ADM, SEND}
    for c in copies:
        if c.headers[naming.H_AGREEMENT] != SEND:
            assert not any(s in p for s in SPECIAL for p in c.element_paths()), c.headers
            assert b"Ethnicity" not in c.body and b"Religion" not in c.body
    async with running.hub.store.transaction() as tx:
        rows = await tx.disclosures.for_subject(upn=DOVEDALE.upn)
    assert not any(s in p for r in rows if r.agreement_id != SEND for p in r.paths for s in SPECIAL)
    (sen_row,) = [r for r in rows if r.object_name == "LearnerSpecialNeeds"]
    assert sen_row.subscriber == "send-team" and "MedicalNotes" in sen_row.paths
