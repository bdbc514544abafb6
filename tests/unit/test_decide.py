"""The single routing decision (hub.core.policy.decide) over hand-built agreement state."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from hub.core.agreements.compile import compile_version
from hub.core.agreements.diff import diff
from hub.core.agreements.model import Agreement, LawfulBasis, PupilAccess, Rule
from hub.core.agreements.schedule import next_window
from hub.core.agreements.scope import pupil_allowed
from hub.core.envelope import Action
from hub.core.paths import parse_path
from hub.core.policy import (
    HOLD_IDENTITY,
    HOLD_SCHEDULE,
    HOLD_SUSPENDED,
    AgreementState,
    Copy,
    Item,
    Policy,
    build_policy,
    decide,
)
from hub.core.records import LifecycleRecord
from hub.sif.schemas import load_schemas

NOW = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)  # a Wednesday, GMT
SCHOOL = "8301234"
OTHER_SCHOOL = "8305678"
REFID = "53E6F4C0109FDE4DC7E11DB9C0100163"
UPN = "H330950043367"
OTHER_REFID = "6219B1684CF9B799640234CBB9992134"
OTHER_UPN = "N936846321107"
STAFF_REFID = "A8C3D5EE44B359D7510100AA001B7B89"


def _spec(agreement_id: str = "A", version: int = 1, **overrides: Any) -> Agreement:
    data: dict[str, Any] = {
        "id": agreement_id,
        "version": version,
        "recipients": ["cme", "vs"],
        "purpose": "CME duty",
        "rules": [
            {
                "object": "LearnerPersonal",
                "actions": ["Add", "Change"],
                "include": ["UPN", "PersonalInformation/Name"],
            },
            {"object": "WorkforcePersonal"},
            {
                "object": "LearnerAttendance",
                "where": [{"path": "AttendanceDomain", "values": ["Session"]}],
            },
        ],
    }
    data.update(overrides)
    return Agreement.model_validate(data)


def _lifecycle(agreement_id: str = "A", status: str = "live", **fields: Any) -> LifecycleRecord:
    return LifecycleRecord(
        agreement_id,
        status,
        fields.pop("reason", ""),
        datetime(2025, 1, 6, tzinfo=UTC),
        "setup",
        **fields,
    )


def _state(
    *specs: Agreement,
    status: str = "live",
    approvals: dict[str, set[int]] | None = None,
    pupils: dict[str, PupilAccess] | None = None,
    widens: tuple[bool, ...] | None = None,
    **lifecycle: Any,
) -> AgreementState:
    specs = specs or (_spec(),)
    versions = tuple(compile_version(s) for s in specs)
    return AgreementState(
        versions,
        widens if widens is not None else (True,) * len(versions),
        _lifecycle(specs[0].id, status, **lifecycle),
        {k: frozenset(v) for k, v in (approvals or {SCHOOL: {1}}).items()},
        pupils or {},
    )


def _policy(*states: AgreementState, **kwargs: Any) -> Policy:
    return build_policy(list(states), now=kwargs.pop("now", NOW), **kwargs)


def _learner(
    action: Action = Action.ADD,
    school: str | None = SCHOOL,
    refid: str | None = REFID,
    upn: str | None = UPN,
) -> Item:
    return Item("LearnerPersonal", action, school, refid, upn)


def _attendance(domain: str | None = "Session") -> Item:
    values = {"AttendanceDomain": (domain,)} if domain else {}
    return Item("LearnerAttendance", Action.ADD, SCHOOL, REFID, UPN, values)


def _staff() -> Item:
    return Item("WorkforcePersonal", Action.ADD, SCHOOL, STAFF_REFID)


def _who(copies: list[Copy]) -> list[tuple[str, str, int]]:
    return sorted((c.subscriber, c.agreement_id, c.agreement_version) for c in copies)


# --- default deny ---------------------------------------------------------------------


def test_no_agreement_no_copy() -> None:
    assert decide(_learner(), _policy()) == []
    assert decide(_learner(), Policy()) == []


def test_draft_no_copy() -> None:
    assert decide(_learner(), _policy(_state(status="draft"))) == []


def test_live_with_approval_one_copy_per_recipient() -> None:
    spec = _spec()
    copies = decide(_learner(), _policy(_state(spec)))
    assert _who(copies) == [("cme", "A", 1), ("vs", "A", 1)]
    expected_filter = compile_version(spec).rules["LearnerPersonal"].filter
    for copy in copies:
        assert copy.filter == expected_filter
        assert copy.hold is None and copy.release_after is None
        assert copy.lawful_basis == "UK GDPR Art 6(1)(e)"
        assert copy.purpose == "CME duty"
    assert copies[0].filter.allows(parse_path("PersonalInformation/Name/FamilyName"))
    assert not copies[0].filter.allows(parse_path("PersonalInformation/Address"))


def test_school_not_approved_no_copy() -> None:
    policy = _policy(_state())
    assert decide(_learner(school=OTHER_SCHOOL), policy) == []
    assert decide(_learner(school=None), policy) == []


def test_school_with_an_empty_approval_set_no_copy() -> None:
    assert decide(_learner(), _policy(_state(approvals={SCHOOL: set()}))) == []


def test_action_not_granted_no_copy() -> None:
    policy = _policy(_state())
    assert decide(_learner(Action.DELETE), policy) == []
    assert len(decide(_learner(Action.CHANGE), policy)) == 2


def test_object_without_a_rule_no_copy() -> None:
    item = Item("LearnerSchoolEnrolment", Action.ADD, SCHOOL, REFID)
    assert decide(item, _policy(_state())) == []


def test_unknown_and_unroutable_objects_no_copy() -> None:
    policy = _policy(_state())
    assert decide(Item("Nonsense", Action.ADD, SCHOOL), policy) == []
    assert decide(Item("Identity", Action.ADD, SCHOOL, REFID), policy) == []


# --- lifecycle -------------------------------------------------------------------------


def test_suspended_copies_are_held() -> None:
    state = _state(status="suspended", reason="breach", suspended_until=NOW + timedelta(days=3))
    copies = decide(_learner(), _policy(state))
    assert _who(copies) == [("cme", "A", 1), ("vs", "A", 1)]
    assert all(c.hold == HOLD_SUSPENDED and c.release_after is None for c in copies)
    assert HOLD_SUSPENDED == "suspended"


def test_after_the_suspension_copies_flow() -> None:
    state = _state(status="suspended", suspended_until=NOW - timedelta(seconds=1))
    assert all(c.hold is None for c in decide(_learner(), _policy(state)))


def test_lapsed_review_holds_like_a_suspension() -> None:
    state = _state(review_due=NOW - timedelta(days=31))
    copies = decide(_learner(), _policy(state))
    assert copies and all(c.hold == HOLD_SUSPENDED for c in copies)
    warned = _state(review_due=NOW - timedelta(days=1))
    assert all(c.hold is None for c in decide(_learner(), _policy(warned)))


def test_windows_schedule_holds_until_the_next_window() -> None:
    spec = _spec(schedule={"mode": "windows", "times": ["09:30", "14:00"]})
    copies = decide(_learner(), _policy(_state(spec)))
    assert len(copies) == 2
    for copy in copies:
        assert copy.hold == HOLD_SCHEDULE == "schedule"
        assert copy.release_after == next_window(spec.schedule, NOW)
        assert copy.release_after == datetime(2025, 3, 12, 14, 0, tzinfo=UTC)


def test_suspension_wins_over_the_schedule() -> None:
    spec = _spec(schedule={"mode": "windows", "times": [time(9, 30)]})
    state = _state(spec, status="suspended")
    copies = decide(_learner(), _policy(state))
    assert copies and all((c.hold, c.release_after) == (HOLD_SUSPENDED, None) for c in copies)


def test_terminating_flows_until_notice_passes() -> None:
    during = _state(status="terminating", notice_effective=NOW + timedelta(days=1))
    assert len(decide(_learner(), _policy(during))) == 2
    passed = _state(status="terminating", notice_effective=NOW)
    assert decide(_learner(), _policy(passed)) == []


def test_terminated_no_copy() -> None:
    assert decide(_learner(), _policy(_state(status="terminated"))) == []


def test_policy_at_another_moment() -> None:
    policy = _policy(_state(status="terminating", notice_effective=NOW + timedelta(days=1)))
    assert decide(_learner(), policy)
    assert decide(_learner(), policy.at(NOW + timedelta(days=2))) == []
    standing = policy.at(NOW + timedelta(days=2)).standing("A")
    assert standing is not None and standing.status == "terminated"
    assert policy.standing("nope") is None


# --- suppression, pupil lists, cohorts -----------------------------------------------


def _two_agreements() -> Policy:
    a = _state(_spec("A"))
    b = _state(_spec("B", recipients=["ehe"]))
    return _policy(a, b, suppressed=frozenset({REFID, OTHER_UPN}))


def test_suppressed_learner_by_refid_no_copy_under_any_agreement() -> None:
    policy = _two_agreements()
    assert decide(_learner(refid=REFID, upn=None), policy) == []
    assert decide(_learner(refid=REFID, upn="Z999999999999"), policy) == []
    assert decide(_attendance(), policy) == []


def test_suppressed_learner_by_upn_no_copy_under_any_agreement() -> None:
    policy = _two_agreements()
    assert decide(_learner(refid=OTHER_REFID, upn=OTHER_UPN), policy) == []
    assert decide(_learner(refid=None, upn=OTHER_UPN), policy) == []


def test_unsuppressed_learner_gets_every_agreement() -> None:
    copies = decide(_learner(refid=OTHER_REFID, upn=UPN), _two_agreements())
    assert _who(copies) == [("cme", "A", 1), ("ehe", "B", 1), ("vs", "A", 1)]


@pytest.mark.parametrize("named", [REFID, UPN])
def test_pupils_all_except(named: str) -> None:
    state = _state(pupils={SCHOOL: PupilAccess(mode="all_except", learners=[named])})
    policy = _policy(state)
    assert decide(_learner(), policy) == []
    assert decide(_attendance(), policy) == []
    assert len(decide(_learner(refid=OTHER_REFID, upn=OTHER_UPN), policy)) == 2


@pytest.mark.parametrize("named", [REFID, UPN])
def test_pupils_only(named: str) -> None:
    state = _state(pupils={SCHOOL: PupilAccess(mode="only", learners=[named])})
    policy = _policy(state)
    assert len(decide(_learner(), policy)) == 2
    assert decide(_learner(refid=OTHER_REFID, upn=OTHER_UPN), policy) == []
    # Whose data this is cannot be told: held until the learner is known, never released.
    unknown = decide(_learner(refid=None, upn=None), policy)
    assert unknown and {c.hold for c in unknown} == {HOLD_IDENTITY}


def test_pupil_lists_are_per_school() -> None:
    state = _state(
        approvals={SCHOOL: {1}, OTHER_SCHOOL: {1}},
        pupils={OTHER_SCHOOL: PupilAccess(mode="only", learners=[OTHER_REFID])},
    )
    policy = _policy(state)
    assert len(decide(_learner(school=SCHOOL), policy)) == 2
    assert decide(_learner(school=OTHER_SCHOOL), policy) == []


def test_cohort_required_only_members_per_recipient() -> None:
    state = _state(_spec(cohort="missing-ed"))
    cohorts = {
        ("cme", "missing-ed"): frozenset({REFID}),
        ("vs", "missing-ed"): frozenset({OTHER_UPN}),
    }
    policy = _policy(state, cohorts=cohorts)
    assert _who(decide(_learner(), policy)) == [("cme", "A", 1)]
    assert _who(decide(_learner(refid=OTHER_REFID, upn=OTHER_UPN), policy)) == [("vs", "A", 1)]
    # UPN not yet known: the Virtual School's cohort (by UPN) could hold it, CME's cannot.
    waiting = decide(_learner(refid="0" * 32, upn=None), policy)
    assert [(c.subscriber, c.hold) for c in waiting] == [("vs", HOLD_IDENTITY)]
    assert _who(decide(_attendance(), policy)) == [("cme", "A", 1)]


def test_cohort_required_but_not_supplied_no_copy() -> None:
    policy = _policy(_state(_spec(cohort="missing-ed")))
    assert decide(_learner(), policy) == []


def test_a_workforce_object_ignores_pupil_lists_and_cohorts() -> None:
    state = _state(
        _spec(cohort="missing-ed"), pupils={SCHOOL: PupilAccess(mode="only", learners=[])}
    )
    policy = _policy(state, suppressed=frozenset({REFID}))
    assert decide(_learner(), policy) == []
    assert _who(decide(_staff(), policy)) == [("cme", "A", 1), ("vs", "A", 1)]


# --- where conditions ------------------------------------------------------------------


def test_where_condition_filters_objects() -> None:
    policy = _policy(_state())
    assert len(decide(_attendance("Session"), policy)) == 2
    assert decide(_attendance("Lesson"), policy) == []
    assert decide(_attendance(None), policy) == []
    both = Item(
        "LearnerAttendance",
        Action.ADD,
        SCHOOL,
        REFID,
        UPN,
        {"AttendanceDomain": ("Lesson", "Session")},
    )
    assert len(decide(both, policy)) == 2


def test_build_policy_lists_the_condition_paths_dispatch_must_read() -> None:
    policy = _policy(_state())
    assert policy.conditions == {"LearnerAttendance": frozenset({"AttendanceDomain"})}


# --- several agreements and versions -----------------------------------------------------


def test_each_agreement_releases_its_own_copy_per_recipient() -> None:
    b = _state(_spec("B", recipients=["cme", "ehe"], rules=[{"object": "LearnerPersonal"}]))
    a = _state(_spec("A", recipients=["cme"]))
    copies = decide(_learner(), _policy(b, a))
    assert _who(copies) == [("cme", "A", 1), ("cme", "B", 1), ("ehe", "B", 1)]
    by_agreement = {c.agreement_id: c for c in copies if c.subscriber == "cme"}
    assert not by_agreement["A"].filter.allows(parse_path("PersonalInformation/Address"))
    assert by_agreement["B"].filter.allows(parse_path("PersonalInformation/Address"))


LEARNER_ONLY = [{"object": "LearnerPersonal", "include": ["UPN"]}]


def test_an_unapproved_widening_version_is_not_used() -> None:
    v1 = _spec(version=1, rules=LEARNER_ONLY)
    v2 = _spec(version=2, recipients=["cme", "vs", "ehe"], rules=LEARNER_ONLY)
    paths_of = load_schemas().element_paths
    widens = diff(compile_version(v1), compile_version(v2), paths_of).widens
    assert widens
    state = _state(v1, v2, widens=(True, widens), approvals={SCHOOL: {1}})
    assert _who(decide(_learner(), _policy(state))) == [("cme", "A", 1), ("vs", "A", 1)]
    approved = _state(v1, v2, widens=(True, widens), approvals={SCHOOL: {1, 2}})
    assert _who(decide(_learner(), _policy(approved))) == [
        ("cme", "A", 2),
        ("ehe", "A", 2),
        ("vs", "A", 2),
    ]


def test_a_narrowing_version_carries_the_approval() -> None:
    v1 = _spec(version=1)
    v2 = _spec(version=2, recipients=["cme"])
    state = _state(v1, v2, widens=(True, False), approvals={SCHOOL: {1}})
    assert _who(decide(_learner(), _policy(state))) == [("cme", "A", 2)]


def test_a_version_not_yet_valid_is_not_used() -> None:
    v1 = _spec(version=1)
    v2 = _spec(version=2, recipients=["cme"], valid_from=date(2025, 3, 13))
    state = _state(v1, v2, widens=(True, False), approvals={SCHOOL: {1, 2}})
    assert _who(decide(_learner(), _policy(state))) == [("cme", "A", 1), ("vs", "A", 1)]
    tomorrow = _policy(state, now=NOW + timedelta(days=1))
    assert _who(decide(_learner(), tomorrow)) == [("cme", "A", 2)]


def test_skipping_a_version_not_yet_valid_does_not_carry_an_approval_past_a_widening() -> None:
    v1 = _spec(version=1, recipients=["cme"], rules=LEARNER_ONLY)
    v2 = _spec(
        version=2, recipients=["cme", "ehe"], valid_from=date(2099, 1, 1), rules=LEARNER_ONLY
    )
    v3 = _spec(version=3, recipients=["cme", "ehe"], rules=LEARNER_ONLY)
    paths_of = load_schemas().element_paths
    w2 = diff(compile_version(v1), compile_version(v2), paths_of).widens
    w3 = diff(compile_version(v2), compile_version(v3), paths_of).widens
    assert (w2, w3) == (True, False)
    assert diff(compile_version(v1), compile_version(v3), paths_of).widens
    state = _state(v1, v2, v3, widens=(True, w2, w3), approvals={SCHOOL: {1}})
    assert _who(decide(_learner(), _policy(state))) == [("cme", "A", 1)]


# --- special category: defence in depth ---------------------------------------------------


def test_learner_special_needs_flows_only_with_article9() -> None:
    spec = _spec(
        lawful_basis={"article6": "e", "article9": "g"}, rules=[{"object": "LearnerSpecialNeeds"}]
    )
    item = Item("LearnerSpecialNeeds", Action.ADD, SCHOOL, REFID, UPN)
    copies = decide(item, _policy(_state(spec)))
    assert len(copies) == 2
    assert copies[0].lawful_basis == "UK GDPR Art 6(1)(e); Art 9(2)(g)"


def test_compile_drops_special_category_even_when_validation_was_bypassed() -> None:
    """An agreement that skipped validation (model_construct) still cannot release
    special category data without an Art 9 condition."""
    spec = Agreement.model_construct(
        id="A",
        version=1,
        recipients=["cme"],
        lawful_basis=LawfulBasis(article6="e"),
        rules=[
            Rule(object="LearnerSpecialNeeds"),
            Rule(
                object="LearnerPersonal",
                include=["PersonalInformation/Demographics/EthnicityList", "UPN"],
            ),
        ],
        schools=[],
        cohort=None,
        valid_from=None,
        purpose="",
        schedule=Agreement.model_fields["schedule"].get_default(),
    )
    version = compile_version(spec)
    assert "LearnerSpecialNeeds" not in version.rules
    flt = version.rules["LearnerPersonal"].filter
    assert not flt.allows(parse_path("PersonalInformation/Demographics/EthnicityList"))
    assert flt.allows(parse_path("UPN"))
    state = AgreementState((version,), (True,), _lifecycle(), {SCHOOL: frozenset({1})})
    item = Item("LearnerSpecialNeeds", Action.ADD, SCHOOL, REFID, UPN)
    assert decide(item, _policy(state)) == []


def test_a_learner_excluded_by_a_former_upn_stays_excluded() -> None:
    """Suppression and all-except lists go by every UPN the learner had; an `only` list
    admits by the current one alone."""
    old, new = "W830200126001", "K830200126002"
    except_old = PupilAccess(mode="all_except", learners=[old])
    assert pupil_allowed(except_old, "R", new) is True
    assert pupil_allowed(except_old, "R", new, frozenset({old})) is False
    only_old = PupilAccess(mode="only", learners=[old])
    assert pupil_allowed(only_old, "R", new, frozenset({old})) is False
