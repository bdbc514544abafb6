"""End to end over HTTP, the real database and real RabbitMQ: nothing leaves beyond an
agreement in any order of arrival. One test (or more) per defect found by independent
testing; each failed before its fix.

1. keep_items / where on special category data without Art 9; empty filter values.
2. an exclude overridden by an item filter; the tested child delivered unasked.
3. an object naming a school the hub does not know, or schools not all the agent's.
4. RefId squatting: a Change for a learner the hub has never seen.
5. UPN-keyed suppression and pupil lists while the learner's UPN is not yet known.
6. learner objects whose learner a partial Change leaves out.
7. a new agreement version wiping pupil lists set through the API.
8. identifiers normalised in one place.
9. two agreements for one recipient.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from stdnum.gb import upn as upn_check

from hub.core import naming
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.la_consumer import Received
from tests.e2e.conftest import RunningHub
from tests.e2e.test_agreements import (
    CME,
    DAY,
    DOVEDALE,
    DOVEDALE_2,
    HILLTOP,
    HILLTOP_2,
    HILLTOP_OBJECTED,
    _about,
    _assert_problem,
    _audit,
    _mark,
    _personal,
    _post_version,
    _register_all,
    _rule,
    _spec,
    _special_needs,
    _transition,
)

pytestmark = pytest.mark.integration

HILLTOP_SCHOOL, DOVEDALE_SCHOOL, MATLOCK_SCHOOL = "8302001", "8304012", "8302105"
DEMOGRAPHICS = "PersonalInformation/Demographics"
LANGUAGE = f"{DEMOGRAPHICS}/LanguageList/Language"
UNKNOWN_SCHOOL_REFID = "0123456789ABCDEF0123456789ABCDEF"


def _approvals(*schools: str) -> list[dict[str, Any]]:
    return [
        {"laestab": s, "approved_by": "Head teacher", "approved_at": "2026-09-01T09:00:00Z"}
        for s in schools
    ]


def _agreement(
    agreement_id: str, recipients: list[str], rules: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "id": agreement_id,
        "version": 1,
        "recipients": recipients,
        "lawful_basis": {"article6": "e"},
        "status": "live",
        "schools": _approvals(HILLTOP_SCHOOL, DOVEDALE_SCHOOL, MATLOCK_SCHOOL),
        "rules": rules,
        **extra,
    }


async def _ok(running: RunningHub, agent_id: str, name: str, action: str, xml: str) -> None:
    ack = await running.agent(agent_id).send_event(name, action, xml)
    assert ack.ok, ack.raw


async def _refused(
    running: RunningHub, agent_id: str, name: str, action: str, xml: str, code: int
) -> None:
    ack = await running.agent(agent_id).send_event(name, action, xml)
    assert (ack.error_category, ack.error_code) == (4, code), ack.raw


def _with_languages(p: data.Learner) -> str:
    languages = (
        "<LanguageList><Language><Code>ENG</Code><Fluent>Yes</Fluent></Language>"
        "<Language><Code>POL</Code><Fluent>No</Fluent></Language></LanguageList>"
    )
    return data.learner_personal(p).replace("<Religion>", languages + "<Religion>")


def _change(p: data.Learner, family_name: str = "Changed") -> str:
    """A partial LearnerPersonal Change: no school, no UPN."""
    return (
        f'<LearnerPersonal RefId="{p.refid}"><PersonalInformation>'
        f'<Name Type="C"><FamilyName>{family_name}</FamilyName><GivenName>{p.forename}</GivenName>'
        "</Name></PersonalInformation></LearnerPersonal>"
    )


def _entitlement(p: data.Learner, refid: str, with_learner: bool = True) -> str:
    learner = f"<LearnerPersonalRefId>{p.refid}</LearnerPersonalRefId>" if with_learner else ""
    school = f"<SchoolInfoRefId>{p.school.refid}</SchoolInfoRefId>" if with_learner else ""
    return (
        f'<LearnerEntitlement RefId="{refid}">{learner}{school}'
        "<EntitlementType>FSM</EntitlementType></LearnerEntitlement>"
    )


async def _identity_held(running: RunningHub, subscriber: str = "cme") -> dict[str, Any]:
    """Copies held awaiting a learner's identity, for one recipient (admin API)."""
    params = {"reason": "identity", "subscriber": subscriber}
    response = await running.admin("GET", "/admin/held", params=params)
    assert response.status_code == 200, response.text
    body = dict(response.json())
    assert all(c["reason"] == "identity" for c in body["copies"])
    assert len(body["copies"]) == body["count"]
    return body


def _texts(copies: list[Received]) -> bytes:
    return b"".join(c.body for c in copies)


# --- 1 and 2: what a rule can bring back ----------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        {"keep_items": [{"path": DEMOGRAPHICS, "child": "Religion", "values": ["CH"]}]},
        {
            "include": ["UPN"],
            "keep_items": [
                {
                    "path": f"{DEMOGRAPHICS}/EthnicityList/Ethnicity",
                    "child": "Code",
                    "values": ["WBRI"],
                }
            ],
        },
        {"keep_items": [{"path": DEMOGRAPHICS, "child": "Traveller", "values": ["x"]}]},
        {"where": [{"path": f"{DEMOGRAPHICS}/Religion/AffiliationCode", "values": ["CH"]}]},
    ],
    ids=["religion", "ethnicity", "traveller", "where"],
)
async def test_special_category_paths_in_filters_are_refused_without_art9(
    running: RunningHub, rule: dict[str, Any]
) -> None:
    body = _agreement("DSA-LEAK-1", ["youth-justice"], [{"object": "LearnerPersonal", **rule}])
    problem = _assert_problem(await running.admin("POST", "/admin/agreements", json=body), 422)
    assert any("special category" in p for p in problem["problems"]), problem
    empty = _agreement(
        "DSA-LEAK-1",
        ["youth-justice"],
        [
            {
                "object": "LearnerPersonal",
                "keep_items": [{"path": LANGUAGE, "child": "Code", "values": [""]}],
            }
        ],
    )
    _assert_problem(await running.admin("POST", "/admin/agreements", json=empty), 422)
    # Nothing was applied: a learner posted now reaches nobody through DSA-LEAK-1.
    await _register_all(running)
    await _personal(running, HILLTOP)
    await running.settle()
    assert await running.drain("youth-justice") == []


async def test_an_exclude_beats_an_item_filter_and_the_tested_child_stays_home(
    running: RunningHub,
) -> None:
    rules = [
        {
            "object": "LearnerPersonal",
            "exclude": [f"{LANGUAGE}/Code"],
            "keep_items": [{"path": LANGUAGE, "child": "Code", "values": ["ENG", "POL"]}],
        }
    ]
    await _post_version(running, _agreement("DSA-LEAK-2", ["youth-justice"], rules))
    include_rules = [
        {
            "object": "LearnerPersonal",
            "include": [f"{LANGUAGE}/Fluent", "UPN"],
            "keep_items": [{"path": LANGUAGE, "child": "Code", "values": ["POL", "ENG"]}],
        }
    ]
    await _post_version(running, _agreement("DSA-LEAK-2B", ["hr-payroll"], include_rules))
    await _register_all(running)
    await _ok(running, "hilltop-mis", "LearnerPersonal", "Add", _with_languages(HILLTOP))
    await running.settle()
    for subscriber in ("youth-justice", "hr-payroll"):
        (copy,) = await running.drain(subscriber, expect=1)
        assert copy.body.count(b"<Fluent>") == 2, copy.body  # both items kept ...
        assert b"<Code>ENG</Code>" not in copy.body and b"<Code>POL</Code>" not in copy.body


# --- 3. schools the agent may not speak for -------------------------------------------


async def test_an_object_naming_an_unknown_school_is_refused_on_every_path(
    running: RunningHub,
) -> None:
    await _register_all(running)
    attendance = data.learner_attendance(HILLTOP, DAY, "AM", "/").replace(
        HILLTOP.school.refid, UNKNOWN_SCHOOL_REFID
    )
    needs = _special_needs(HILLTOP).replace(HILLTOP.school.refid, UNKNOWN_SCHOOL_REFID)
    await _refused(running, "hilltop-mis", "LearnerAttendance", "Add", attendance, 10)
    await _refused(running, "hilltop-mis", "LearnerSpecialNeeds", "Change", needs, 11)
    await _refused(running, "hilltop-mis", "LearnerSpecialNeeds", "Delete", needs, 12)
    agent = running.agent("hilltop-mis")
    reply = await agent.post(m.response("hilltop-mis", m.msg_id(), 1, False, [attendance]))
    assert (reply.error_category, reply.error_code) == (4, 6), reply.raw
    # A DfE number the hub does not know is refused the same way.
    unknown_dfe = data.learner_personal(HILLTOP).replace(
        "<EstablishmentId>2001</EstablishmentId>", "<EstablishmentId>9999</EstablishmentId>"
    )
    await _refused(running, "hilltop-mis", "LearnerPersonal", "Add", unknown_dfe, 10)
    await running.settle()
    for subscriber in ("cme", "send-team", "attendance-team"):
        assert await running.drain(subscriber) == []


async def test_an_object_naming_several_schools_needs_them_all(running: RunningHub) -> None:
    await _register_all(running)
    (staff,) = data.make_staff(1)
    assignment = (
        "<CurrentAssignment><LAId>830</LAId><EstablishmentId>4012</EstablishmentId>"
        "</CurrentAssignment></CurrentAssignmentList>"
    )
    two_schools = data.workforce_personal(staff).replace("</CurrentAssignmentList>", assignment)
    assert staff.school.laestab == HILLTOP_SCHOOL
    await _refused(running, "hilltop-mis", "WorkforcePersonal", "Add", two_schools, 10)
    await running.settle()
    assert await running.drain("hr-payroll") == []


# --- 4. RefId squatting ----------------------------------------------------------------


async def test_no_agent_can_capture_another_schools_learner(running: RunningHub) -> None:
    await _register_all(running)
    # Matlock speaks first about Dovedale's learner, whom the hub has never seen: routed as
    # Matlock's (its only school), but the learner is not bound to Matlock ...
    await _ok(running, "matlock-mis", "LearnerPersonal", "Change", _change(DOVEDALE, "Squat"))
    # ... so Dovedale's own Change is still accepted.
    await _ok(running, "dovedale-mis", "LearnerPersonal", "Change", _change(DOVEDALE))
    await _personal(running, DOVEDALE)  # the Add shows the school: binds the learner to it
    await _refused(running, "matlock-mis", "LearnerPersonal", "Change", _change(DOVEDALE), 11)
    await _refused(running, "matlock-mis", "LearnerPersonal", "Delete", _change(DOVEDALE), 12)
    await _ok(running, "dovedale-mis", "LearnerPersonal", "Delete", _change(DOVEDALE))
    await running.settle()
    copies = await running.drain("cme")
    schools = [(c.headers[naming.H_ACTION], c.headers[naming.H_SCHOOL]) for c in copies]
    assert schools == [
        ("Change", MATLOCK_SCHOOL),
        ("Change", DOVEDALE_SCHOOL),
        ("Add", DOVEDALE_SCHOOL),
        ("Delete", DOVEDALE_SCHOOL),
    ]


# --- 5. UPN-keyed restrictions before the UPN is known ---------------------------------


async def test_a_upn_suppression_holds_what_arrives_before_the_learners_upn(
    running: RunningHub,
) -> None:
    await _register_all(running)
    response = await running.admin(
        "POST", "/admin/suppressions", json={"learner": HILLTOP.upn, "reason": "deceased"}
    )
    assert response.status_code == 201, response.text
    await _mark(running, HILLTOP, HILLTOP_2)  # before any LearnerPersonal: no UPN known
    await running.settle()
    assert await running.drain("cme") == []
    assert (await _identity_held(running))["count"] == 2
    # The identities arrive: the suppressed child's copy is dropped, the other released.
    await _personal(running, HILLTOP, HILLTOP_2)
    await running.settle()
    await running.release()
    copies = await running.drain("cme")
    assert _about(copies, HILLTOP) == []
    assert {c.headers[naming.H_OBJECT] for c in _about(copies, HILLTOP_2)} == {
        "LearnerPersonal",
        "LearnerAttendance",
    }
    assert (await _identity_held(running))["count"] == 0


def _new_upn(p: data.Learner, serial: int = 999) -> str:
    """Another valid UPN for the learner (a temporary one replaced, or an adoption)."""
    body = f"{p.school.laestab}{26:02d}{serial:03d}"
    return upn_check.calc_check_digit(body) + body


async def test_a_upn_suppression_holds_after_the_learners_upn_changes(
    running: RunningHub,
) -> None:
    """The child's own school sends a new UPN for the same RefId: what the suppression
    (by the old UPN) hid stays hidden, on every later object about the child."""
    await _register_all(running)
    await _personal(running, HILLTOP, HILLTOP_2)
    await running.settle()
    await running.drain("cme")
    response = await running.admin(
        "POST", "/admin/suppressions", json={"learner": HILLTOP.upn, "reason": "adopted"}
    )
    assert response.status_code == 201, response.text
    rekeyed = data.learner_personal(HILLTOP).replace(HILLTOP.upn, _new_upn(HILLTOP))
    await _ok(running, "hilltop-mis", "LearnerPersonal", "Change", rekeyed)
    await _mark(running, HILLTOP, HILLTOP_2)
    await running.settle()
    copies = await running.drain("cme")
    assert _about(copies, HILLTOP) == []
    assert [c.headers[naming.H_OBJECT] for c in _about(copies, HILLTOP_2)] == ["LearnerAttendance"]


async def test_a_school_leaving_a_pupil_out_by_upn_holds_after_the_upn_changes(
    running: RunningHub,
) -> None:
    response = await running.admin(
        "PUT",
        f"/admin/agreements/{CME}/schools/{DOVEDALE_SCHOOL}/pupils",
        json={"mode": "all_except", "learners": [DOVEDALE.upn]},
    )
    assert response.status_code == 200, response.text
    await _register_all(running)
    await _personal(running, DOVEDALE, DOVEDALE_2)
    rekeyed = data.learner_personal(DOVEDALE).replace(DOVEDALE.upn, _new_upn(DOVEDALE))
    await _ok(running, "dovedale-mis", "LearnerPersonal", "Change", rekeyed)
    await _mark(running, DOVEDALE, DOVEDALE_2)
    await running.settle()
    copies = await running.drain("cme")
    assert _about(copies, DOVEDALE) == []
    assert len(_about(copies, DOVEDALE_2)) == 2  # its LearnerPersonal and its mark


async def test_a_parents_objection_by_upn_holds_until_the_upn_is_known(
    running: RunningHub,
) -> None:
    # Hilltop's CME pupil list excludes P830200123843 (HILLTOP_OBJECTED) by UPN.
    await _register_all(running)
    await _mark(running, HILLTOP_OBJECTED, HILLTOP)
    await running.settle()
    assert await running.drain("cme") == []
    await _personal(running, HILLTOP_OBJECTED, HILLTOP)
    await running.settle()
    await running.release()
    copies = await running.drain("cme")
    assert _about(copies, HILLTOP_OBJECTED) == []
    assert len(_about(copies, HILLTOP)) == 2


async def test_unresolved_identity_holds_expire_with_an_audit_row(running: RunningHub) -> None:
    await _register_all(running)
    await _mark(running, HILLTOP)  # Hilltop's CME list names a UPN: held
    await running.settle()
    assert (await _identity_held(running))["count"] == 1
    running.clock.advance(days=running.hub.settings.identity_hold_days + 1)
    await running.release()
    assert (await _identity_held(running))["count"] == 0
    assert [subject for _, subject in await _audit(running, "held.expired")]
    await _personal(running, HILLTOP)  # too late: the expired copy never leaves
    await running.settle()
    await running.release()
    assert {c.headers[naming.H_OBJECT] for c in await running.drain("cme")} == {"LearnerPersonal"}


# --- 6. learner objects whose learner a partial event leaves out -----------------------


async def test_a_partial_change_is_tied_to_its_learner_by_the_objects_refid(
    running: RunningHub,
) -> None:
    rules = [{"object": "LearnerEntitlement"}]
    await _post_version(running, _agreement("DSA-LEAK-6", ["youth-justice"], rules))
    await _register_all(running)
    kept, suppressed, unseen = (m.refid() for _ in range(3))
    await _ok(running, "dovedale-mis", "LearnerEntitlement", "Add", _entitlement(DOVEDALE, kept))
    await _ok(
        running, "dovedale-mis", "LearnerEntitlement", "Add", _entitlement(DOVEDALE_2, suppressed)
    )
    await running.settle()  # both Adds leave before the suppression (else it stops one)
    response = await running.admin(
        "POST", "/admin/suppressions", json={"learner": DOVEDALE_2.refid, "reason": "adopted"}
    )
    assert response.status_code == 201, response.text
    for refid in (kept, suppressed, unseen):
        await _ok(
            running,
            "dovedale-mis",
            "LearnerEntitlement",
            "Change",
            _entitlement(DOVEDALE, refid, with_learner=False),
        )
    await running.settle()
    copies = await running.drain("youth-justice")
    assert [(c.headers[naming.H_ACTION], c.object.get("RefId")) for c in copies] == [
        ("Add", kept),
        ("Add", suppressed),
        ("Change", kept),
    ]
    # The unseen object's learner is unknown: held, never released.
    assert (await _identity_held(running, "youth-justice"))["count"] == 1
    # Every disclosure names its learner: subject access finds the partial Change.
    report = await running.admin("GET", "/admin/disclosures", params={"refid": DOVEDALE.refid})
    rows = report.json()["disclosures"]
    assert sorted(r["action"] for r in rows if r["subscriber"] == "youth-justice") == [
        "Add",
        "Change",
    ]


# --- 7. pupil lists survive new versions -----------------------------------------------


async def test_a_new_version_keeps_pupil_lists_set_through_the_api(running: RunningHub) -> None:
    response = await running.admin(
        "PUT",
        f"/admin/agreements/{CME}/schools/{DOVEDALE_SCHOOL}/pupils",
        json={"mode": "all_except", "learners": [DOVEDALE.upn]},
    )
    assert response.status_code == 200, response.text
    v2 = _spec(CME)
    v2["version"] = 2
    _rule(v2, "LearnerPersonal")["include"].remove("PersonalInformation/Address")  # narrows
    v2["schools"] = [s for s in v2["schools"] if s["laestab"] == DOVEDALE_SCHOOL]
    for school in v2["schools"]:
        school.pop("pupils", None)
    await _post_version(running, v2)
    await _register_all(running)
    await _personal(running, DOVEDALE, DOVEDALE_2)
    await running.settle()
    copies = await running.drain("cme")
    assert _about(copies, DOVEDALE) == []
    assert len(_about(copies, DOVEDALE_2)) == 1


# --- 8. identifiers in one form ---------------------------------------------------------


async def test_identifiers_are_normalised_everywhere(running: RunningHub) -> None:
    padded = f"  {HILLTOP.upn.lower()} "
    response = await running.admin(
        "POST", "/admin/suppressions", json={"learner": padded, "reason": "deceased"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["learner"] == HILLTOP.upn
    bad = "A" + HILLTOP.upn[1:] if HILLTOP.upn[0] != "A" else "B" + HILLTOP.upn[1:]
    _assert_problem(
        await running.admin(
            "POST", "/admin/suppressions", json={"learner": bad, "reason": "other"}
        ),
        422,
    )
    _assert_problem(
        await running.admin(
            "PUT",
            f"/admin/agreements/{CME}/schools/{DOVEDALE_SCHOOL}/pupils",
            json={"mode": "all_except", "learners": [bad]},
        ),
        422,
    )
    response = await running.admin(
        "PUT",
        f"/admin/agreements/{CME}/schools/{DOVEDALE_SCHOOL}/pupils",
        json={"mode": "all_except", "learners": [f" {DOVEDALE.refid.lower()}\t"]},
    )
    assert response.status_code == 200, response.text
    await _register_all(running)
    await _personal(running, HILLTOP, HILLTOP_2, DOVEDALE, DOVEDALE_2)
    await running.settle()
    copies = await running.drain("cme")
    assert _about(copies, HILLTOP) == [] and _about(copies, DOVEDALE) == []
    assert len(_about(copies, HILLTOP_2)) == len(_about(copies, DOVEDALE_2)) == 1
    report = await running.admin("GET", "/admin/disclosures", params={"upn": HILLTOP_2.upn.lower()})
    assert report.json()["count"] >= 1


# --- 9. two agreements, one recipient ---------------------------------------------------


async def test_a_suspended_agreement_neither_blocks_nor_widens_another(
    running: RunningHub,
) -> None:
    rules = [{"object": "LearnerAttendance", "include": ["AttendanceCode"]}]
    await _post_version(running, _agreement("DSA-LEAK-9", ["cme"], rules))
    await _transition(running, CME, "suspend", "suspended", reason="breach")
    await _register_all(running)
    await _personal(running, DOVEDALE)
    await _mark(running, DOVEDALE)
    await running.settle()
    copies = await running.drain("cme")
    # Only DSA-LEAK-9's copy of the mark leaves, cut to its own rule.
    assert [(c.headers[naming.H_OBJECT], c.headers[naming.H_AGREEMENT]) for c in copies] == [
        ("LearnerAttendance", "DSA-LEAK-9")
    ]
    assert b"AttendanceDate" not in copies[0].body
    async with running.hub.store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT agreement_id FROM disclosures WHERE subscriber = 'cme'")
        )
        assert [r.agreement_id for r in rows.all()] == ["DSA-LEAK-9"]
    # Reinstated, the held copies of DSA-CME-2026 are its own: each agreement its own copy.
    await _transition(running, CME, "reinstate", "live")
    response = await running.admin(
        "POST", f"/admin/agreements/{CME}/held", json={"decision": "release"}
    )
    assert response.status_code == 200, response.text
    await running.release()
    copies = await running.drain("cme")
    assert sorted(c.headers[naming.H_AGREEMENT] for c in copies) == [CME, CME]
    assert len({c.message_id for c in copies}) == 2
