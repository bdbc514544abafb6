"""One agreement, several partners, each with its own minimised scope (Warwickshire): no
partner receives another partner's fields, schedules and cohorts are per partner, and
re-consent on widening is judged per partner."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from hub.core.agreements.compile import compile_version
from hub.core.agreements.diff import diff
from hub.core.agreements.model import Agreement
from hub.core.envelope import Action
from hub.core.paths import parse_path
from hub.core.policy import HOLD_SCHEDULE, AgreementState, Item, build_policy, decide
from hub.core.records import LifecycleRecord
from hub.sif.schemas import load_schemas

NOW = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)  # a Wednesday
SCHOOL = "8301234"
REFID = "53E6F4C0109FDE4DC7E11DB9C0100163"
UPN = "H330950043367"
STAFF = "A8C3D5EE44B359D7510100AA001B7B89"
ETHNICITY = parse_path("PersonalInformation/Demographics/EthnicityList")
NAME = parse_path("PersonalInformation/Name")
NI = parse_path("NINumber")


def _warwickshire(version: int = 1, **overrides: Any) -> Agreement:
    data: dict[str, Any] = {
        "id": "warwickshire",
        "version": version,
        "recipients": ["cme", "admissions", "hr_payroll"],
        "lawful_basis": {"article6": "e", "article9": "g", "dpa_schedule1": "Part 2 para 6"},
        "rules": [
            {
                "object": "LearnerPersonal",
                "include": ["UPN", "PersonalInformation/Name", "PersonalInformation/Demographics"],
            }
        ],
        "partners": [
            {"recipient": "cme", "rules": [{"object": "LearnerPersonal", "include": ["UPN"]}]},
            {
                "recipient": "hr_payroll",
                "rules": [{"object": "WorkforcePersonal", "include": ["NINumber"]}],
                "schedule": {"mode": "windows", "times": ["18:00"]},
            },
        ],
    }
    data.update(overrides)
    return Agreement.model_validate(data)


def _state(*specs: Agreement, approved: set[int] | None = None) -> AgreementState:
    versions = tuple(compile_version(s) for s in specs)
    old = None
    widened = []
    for v in versions:
        widened.append(diff(old, v, load_schemas().element_paths).widened_for)
        old = v
    return AgreementState(
        versions,
        tuple(bool(w) for w in widened),
        LifecycleRecord("warwickshire", "live", "", datetime(2025, 1, 6, tzinfo=UTC), "setup"),
        {SCHOOL: frozenset(approved or {1})},
        {},
        tuple(widened),
    )


def _copies(state: AgreementState, object_name: str, subject: str) -> dict[str, Any]:
    item = Item(object_name, Action.ADD, SCHOOL, subject_refid=subject, upn=UPN)
    return {c.subscriber: c for c in decide(item, build_policy([state], now=NOW))}


def test_each_partner_gets_only_its_own_scope() -> None:
    state = _state(_warwickshire())
    learner = _copies(state, "LearnerPersonal", REFID)
    assert set(learner) == {"cme", "admissions"}  # HR & Payroll has no pupil rule at all
    assert learner["cme"].filter.allows(parse_path("UPN"))
    assert not learner["cme"].filter.allows(NAME)
    assert not learner["cme"].filter.allows(ETHNICITY)
    assert learner["admissions"].filter.allows(ETHNICITY)  # the agreement-level rules
    staff = _copies(state, "WorkforcePersonal", STAFF)
    assert set(staff) == {"hr_payroll"}
    assert staff["hr_payroll"].filter.allows(NI)
    assert not staff["hr_payroll"].filter.allows(NAME)


def test_a_partner_schedule_holds_only_that_partner() -> None:
    spec = _warwickshire(
        rules=[{"object": "WorkforcePersonal", "include": ["NINumber", "PersonalInformation"]}]
    )
    copies = _copies(_state(spec), "WorkforcePersonal", STAFF)
    assert copies["hr_payroll"].hold == HOLD_SCHEDULE
    assert copies["admissions"].hold is None


def test_a_partner_cohort_applies_to_that_partner_only() -> None:
    spec = _warwickshire(
        partners=[
            {
                "recipient": "cme",
                "rules": [{"object": "LearnerPersonal", "include": ["UPN"]}],
                "cohort": "missing",
            }
        ]
    )
    state = _state(spec)
    item = Item("LearnerPersonal", Action.ADD, SCHOOL, subject_refid=REFID, upn=UPN)
    outside = decide(item, build_policy([state], now=NOW))
    # hr_payroll has no partner entry here: it takes the agreement-level rules, no cohort
    assert {c.subscriber for c in outside} == {"admissions", "hr_payroll"}
    inside = decide(
        item, build_policy([state], cohorts={("cme", "missing"): frozenset({UPN})}, now=NOW)
    )
    assert {c.subscriber for c in inside} == {"admissions", "cme", "hr_payroll"}


def test_widening_one_partner_needs_reapproval_for_that_partner_only() -> None:
    v1 = _warwickshire()
    # v2 widens HR & Payroll (name as well as NI number) and narrows admissions (no
    # demographics): only HR & Payroll waits for the school's approval of v2.
    v2 = _warwickshire(
        version=2,
        rules=[{"object": "LearnerPersonal", "include": ["UPN", "PersonalInformation/Name"]}],
        partners=[
            {"recipient": "cme", "rules": [{"object": "LearnerPersonal", "include": ["UPN"]}]},
            {
                "recipient": "hr_payroll",
                "rules": [
                    {"object": "WorkforcePersonal", "include": ["NINumber", "PersonalInformation"]}
                ],
            },
        ],
    )
    result = diff(compile_version(v1), compile_version(v2), load_schemas().element_paths)
    assert result.widened_for == {"hr_payroll"}
    assert not result.recipients["admissions"].widens
    assert result.recipients["admissions"].objects["LearnerPersonal"].lost
    state = _state(v1, v2, approved={1})
    staff = _copies(state, "WorkforcePersonal", STAFF)
    assert staff["hr_payroll"].agreement_version == 1  # still v1's narrower scope
    assert not staff["hr_payroll"].filter.allows(NAME)
    learner = _copies(state, "LearnerPersonal", REFID)
    assert learner["admissions"].agreement_version == 2  # narrowing applies at once
    assert not learner["admissions"].filter.allows(ETHNICITY)
    approved = _copies(_state(v1, v2, approved={1, 2}), "WorkforcePersonal", STAFF)
    assert approved["hr_payroll"].agreement_version == 2
    assert approved["hr_payroll"].filter.allows(NAME)


def test_versions_recorded_before_partner_scopes_widen_for_everyone() -> None:
    v1, v2 = _warwickshire(), _warwickshire(version=2)
    state = AgreementState(
        (compile_version(v1), compile_version(v2)),
        (True, True),  # no per-recipient record: the one flag counts for every recipient
        LifecycleRecord("warwickshire", "live", "", datetime(2025, 1, 6, tzinfo=UTC), "setup"),
        {SCHOOL: frozenset({1})},
    )
    assert {c.agreement_version for c in _copies(state, "LearnerPersonal", REFID).values()} == {1}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"partners": [{"recipient": "ict", "rules": [{"object": "LearnerPersonal"}]}]},
            "partner ict is not one of the agreement's recipients",
        ),
        (
            {
                "rules": [],
                "partners": [{"recipient": "cme", "rules": [{"object": "LearnerPersonal"}]}],
            },
            "recipient admissions has no rules",
        ),
        (
            {
                "partners": [
                    {"recipient": "cme", "rules": [{"object": "LearnerPersonal"}]},
                    {"recipient": "cme", "rules": [{"object": "LearnerAttendance"}]},
                ]
            },
            "partner cme is listed twice",
        ),
        (
            {
                "lawful_basis": {"article6": "e"},
                "rules": [{"object": "LearnerPersonal", "include": ["UPN"]}],
                "partners": [
                    {
                        "recipient": "cme",
                        "rules": [
                            {
                                "object": "LearnerPersonal",
                                "include": ["PersonalInformation/Demographics/EthnicityList"],
                            }
                        ],
                    }
                ],
            },
            "(partner cme) names special category data",
        ),
    ],
)
def test_partner_scopes_are_checked(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        _warwickshire(**overrides)


def test_without_art9_a_partner_never_receives_special_category_data() -> None:
    spec = _warwickshire(
        lawful_basis={"article6": "e"},
        rules=[{"object": "LearnerPersonal", "include": ["UPN", "PersonalInformation/Name"]}],
        partners=[{"recipient": "cme", "rules": [{"object": "LearnerPersonal"}]}],
    )
    copies = _copies(_state(spec), "LearnerPersonal", REFID)
    assert copies["cme"].filter.allows(NAME)
    assert not copies["cme"].filter.allows(ETHNICITY)
