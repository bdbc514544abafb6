"""The agreement spec (hub.core.agreements.model): what a valid agreement is, and every
refusal with a message that names the problem."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from pydantic import ValidationError

from hub.core.agreements.compile import compile_version
from hub.core.agreements.model import (
    Agreement,
    Condition,
    ItemFilter,
    LawfulBasis,
    PupilAccess,
    Rule,
    Schedule,
    SchoolOptIn,
)
from hub.core.agreements.special import SPECIAL_PATHS
from hub.core.envelope import Action
from hub.core.paths import Verdict, parse_path

APPROVED_AT = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def _agreement(**overrides: Any) -> Agreement:
    data: dict[str, Any] = {
        "id": "cme-2025",
        "recipients": ["cme"],
        "rules": [{"object": "LearnerPersonal", "include": ["UPN"]}],
    }
    data.update(overrides)
    return Agreement.model_validate(data)


def _school(laestab: str = "8301234", version: int = 1) -> dict[str, Any]:
    return {
        "laestab": laestab,
        "approved_by": "Head",
        "approved_at": APPROVED_AT,
        "version": version,
    }


# --- valid agreements ---------------------------------------------------------------


def test_a_full_agreement_is_valid_and_keeps_what_it_was_given() -> None:
    spec = _agreement(
        title="Children missing education",
        version=2,
        controller="County Council",
        purpose="CME duty (Education Act 1996 s436A)",
        clauses=["7b", "7c"],
        recipients=["cme", "vs"],
        lawful_basis={"article6": "e", "article9": "g", "dpa_schedule1": "Part 2 para 6"},
        rules=[
            {
                "object": "LearnerPersonal",
                "actions": ["Add", "Change"],
                "include": [
                    "UPN",
                    "PersonalInformation/Name",
                    "PersonalInformation/Demographics/EthnicityList",
                ],
                "exclude": ["PersonalInformation/Name/MiddleNames"],
                "keep_items": [
                    {
                        "path": "PersonalInformation/OtherAddressList/Address",
                        "attribute": "Type",
                        "values": ["Current"],
                    }
                ],
            },
            {
                "object": "LearnerAttendance",
                "where": [{"path": "AttendanceDomain", "values": ["Session", "Both"]}],
            },
        ],
        schools=[_school("8301234", 1), _school("8305678", 2)],
        cohort="cme-cohort",
        status="live",
        valid_from=date(2025, 1, 1),
        approved_on=date(2024, 12, 1),
        retention_days=730,
        schedule={"mode": "windows", "times": ["09:30", "14:00"], "days": ["Mon", "Thu"]},
    )
    assert spec.version == 2
    assert [r.object for r in spec.rules] == ["LearnerPersonal", "LearnerAttendance"]
    assert spec.rules[0].actions == [Action.ADD, Action.CHANGE]
    assert spec.rules[1].actions == list(Action)  # default: every action
    assert spec.rules[1].include is None  # default: the whole object
    assert spec.schedule.times == [time(9, 30), time(14, 0)]
    assert spec.schools[1].pupils == PupilAccess()
    assert spec.lawful_basis.describe() == (
        "UK GDPR Art 6(1)(e); Art 9(2)(g); DPA 2018 Sch 1 Part 2 para 6"
    )


def test_defaults_are_the_cautious_ones() -> None:
    spec = _agreement()
    assert spec.status == "draft"
    assert spec.lawful_basis == LawfulBasis(article6="e")
    assert spec.lawful_basis.article9 is None
    assert spec.schedule.mode == "immediate"
    assert spec.schools == [] and spec.cohort is None
    assert spec.lawful_basis.describe() == "UK GDPR Art 6(1)(e)"


def test_agreements_are_frozen_and_refuse_unknown_fields() -> None:
    spec = _agreement()
    with pytest.raises(ValidationError):
        spec.version = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        _agreement(colour="blue")
    with pytest.raises(ValidationError, match="extra"):
        _agreement(rules=[{"object": "LearnerPersonal", "inclde": ["UPN"]}])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "has space"),
        ("id", ""),
        ("recipients", []),
        ("recipients", ["bad/recipient"]),
        ("rules", []),
        ("version", 0),
        ("retention_days", 0),
        ("status", "suspended"),  # lifecycle states beyond live are not part of the spec
        ("cohort", "no spaces allowed"),
    ],
)
def test_bad_top_level_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        _agreement(**{field: value})


@pytest.mark.parametrize("path", ["/UPN", "UPN/", "Personal Information", "1UPN", "a//b", ""])
def test_element_paths_must_be_plain_slash_separated_names(path: str) -> None:
    with pytest.raises(ValidationError):
        _agreement(rules=[{"object": "LearnerPersonal", "include": [path]}])
    with pytest.raises(ValidationError):
        _agreement(rules=[{"object": "LearnerPersonal", "exclude": [path]}])


@pytest.mark.parametrize("laestab", ["830123", "83012345", "830123A", ""])
def test_a_school_is_a_seven_digit_laestab(laestab: str) -> None:
    with pytest.raises(ValidationError):
        SchoolOptIn.model_validate(_school(laestab))


def test_an_approval_needs_someone_who_approved() -> None:
    with pytest.raises(ValidationError):
        SchoolOptIn.model_validate({**_school(), "approved_by": ""})


# --- objects ------------------------------------------------------------------------


def test_unknown_object_is_refused_with_the_known_ones_listed() -> None:
    with pytest.raises(ValidationError, match="unknown object 'LearnerPersonel'") as info:
        _agreement(rules=[{"object": "LearnerPersonal"}, {"object": "LearnerPersonel"}])
    assert "LearnerAttendance" in str(info.value)  # the known objects are listed


def test_identity_rule_is_refused_because_it_carries_credentials() -> None:
    with pytest.raises(ValidationError, match="Identity is never routed"):
        Rule(object="Identity")
    with pytest.raises(ValidationError, match="credentials"):
        _agreement(rules=[{"object": "Identity", "exclude": ["PasswordList"]}])


# --- special category data (UK GDPR Art 9) ---------------------------------------------


SPECIAL_CASES = [(obj, path) for obj, paths in SPECIAL_PATHS.items() for path in paths]


@pytest.mark.parametrize(("obj", "path"), SPECIAL_CASES)
def test_explicit_special_category_path_needs_article9(obj: str, path: str) -> None:
    with pytest.raises(ValidationError) as info:
        _agreement(rules=[{"object": obj, "include": ["LocalId", path]}])
    text = str(info.value)
    assert path in text
    assert "article9" in text
    assert obj in text


@pytest.mark.parametrize("obj", sorted(SPECIAL_PATHS))
def test_ethnicity_example_from_the_brief(obj: str) -> None:
    with pytest.raises(ValidationError, match=r"PersonalInformation/Demographics/EthnicityList"):
        _agreement(
            rules=[{"object": obj, "include": ["PersonalInformation/Demographics/EthnicityList"]}]
        )


def test_a_path_below_a_special_category_path_also_needs_article9() -> None:
    below = "PersonalInformation/Demographics/EthnicityList/Ethnicity/Code"
    with pytest.raises(ValidationError, match="article9") as info:
        _agreement(rules=[{"object": "LearnerPersonal", "include": [below]}])
    assert below in str(info.value)


def test_every_special_path_requested_is_named() -> None:
    paths = ["Pregnant", "MedicalAlertMsgList", "PersonalInformation/Demographics/Religion"]
    with pytest.raises(ValidationError) as info:
        _agreement(rules=[{"object": "LearnerPersonal", "include": paths}])
    for path in paths:
        assert path in str(info.value)


@pytest.mark.parametrize(("obj", "path"), SPECIAL_CASES)
def test_special_category_path_with_article9_is_accepted(obj: str, path: str) -> None:
    spec = _agreement(
        lawful_basis={"article6": "e", "article9": "g"}, rules=[{"object": obj, "include": [path]}]
    )
    rule = compile_version(spec).rules[obj]
    assert rule.filter.verdict(parse_path(path)) is Verdict.KEEP


def test_an_ancestor_of_special_data_is_accepted_but_compiled_without_it() -> None:
    """Naming PersonalInformation is not an explicit request for ethnicity: accepted, and
    the special-category paths below it are stripped when there is no Art 9 condition."""
    spec = _agreement(rules=[{"object": "LearnerPersonal", "include": ["PersonalInformation"]}])
    flt = compile_version(spec).rules["LearnerPersonal"].filter
    for path in SPECIAL_PATHS["LearnerPersonal"]:
        assert not flt.allows(parse_path(path)), path
    assert flt.allows(parse_path("PersonalInformation/Name/FamilyName"))


def test_special_category_exclude_without_article9_is_fine() -> None:
    spec = _agreement(
        rules=[
            {
                "object": "LearnerPersonal",
                "exclude": ["PersonalInformation/Demographics/EthnicityList"],
            }
        ]
    )
    assert spec.rules[0].exclude == ["PersonalInformation/Demographics/EthnicityList"]


def test_learner_special_needs_without_article9_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        _agreement(rules=[{"object": "LearnerSpecialNeeds"}])
    text = str(info.value)
    assert "LearnerSpecialNeeds" in text and "article9" in text


def test_learner_special_needs_even_with_an_include_of_harmless_paths_needs_article9() -> None:
    with pytest.raises(ValidationError, match="article9"):
        _agreement(rules=[{"object": "LearnerSpecialNeeds", "include": ["StartDate"]}])


def test_learner_special_needs_with_article9_g_is_accepted() -> None:
    spec = _agreement(
        lawful_basis={"article6": "e", "article9": "g"}, rules=[{"object": "LearnerSpecialNeeds"}]
    )
    assert spec.lawful_basis.article9 == "g"
    assert "LearnerSpecialNeeds" in compile_version(spec).rules


def test_article9_letters_are_checked() -> None:
    with pytest.raises(ValidationError):
        LawfulBasis.model_validate({"article6": "e", "article9": "k"})
    with pytest.raises(ValidationError):
        LawfulBasis.model_validate({"article6": "g"})


# --- consistency ---------------------------------------------------------------------


def test_duplicate_rule_for_one_object_is_refused() -> None:
    with pytest.raises(ValidationError, match="object LearnerPersonal has more than one rule"):
        _agreement(
            rules=[
                {"object": "LearnerPersonal", "include": ["UPN"]},
                {"object": "LearnerAttendance"},
                {"object": "LearnerPersonal", "include": ["LocalId"]},
            ]
        )


def test_school_listed_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="school 8301234 is listed twice"):
        _agreement(schools=[_school("8301234"), _school("8305678"), _school("8301234")])


def test_approval_of_a_version_newer_than_the_agreement_is_refused() -> None:
    with pytest.raises(
        ValidationError, match="school 8301234 approved version 3, after this version 2"
    ):
        _agreement(version=2, schools=[_school("8301234", 3)])


def test_approval_of_this_or_an_older_version_is_fine() -> None:
    spec = _agreement(version=3, schools=[_school("8301234", 3), _school("8305678", 1)])
    assert [s.version for s in spec.schools] == [3, 1]


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(ValidationError) as info:
        _agreement(
            rules=[
                {"object": "LearnerPersonal", "include": ["Pregnant"]},
                {"object": "LearnerPersonal"},
            ],
            schools=[_school(), _school()],
        )
    text = str(info.value)
    assert "Pregnant" in text and "more than one rule" in text and "listed twice" in text


# --- schedules, item filters, conditions -----------------------------------------------


def test_windows_schedule_without_times_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one time and one day"):
        _agreement(schedule={"mode": "windows"})
    with pytest.raises(ValidationError, match="at least one time and one day"):
        Schedule(mode="windows", times=[time(9, 30)], days=[])


def test_windows_schedule_with_times_is_fine_and_immediate_needs_none() -> None:
    assert Schedule(mode="windows", times=[time(9, 30)]).days == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
    ]
    assert Schedule().mode == "immediate"
    with pytest.raises(ValidationError):
        Schedule(mode="windows", times=[time(9, 30)], days=["Monday"])


def test_windows_schedule_with_an_unknown_timezone_is_refused() -> None:
    refused = False
    try:
        Schedule(mode="windows", times=[time(9, 30)], timezone="Europe/Londn")
    except ValidationError:
        refused = True
    assert refused


def test_item_filter_needs_exactly_one_test_and_some_values() -> None:
    with pytest.raises(ValidationError, match="exactly one of attribute or child"):
        ItemFilter(path="PersonalInformation/OtherAddressList/Address", values=["Current"])
    with pytest.raises(ValidationError, match="exactly one of attribute or child"):
        ItemFilter(path="a/b", attribute="Type", child="Code", values=["x"])
    with pytest.raises(ValidationError):
        ItemFilter(path="a/b", attribute="Type", values=[])
    assert ItemFilter(path="a/b", child="Code", values=["x"]).child == "Code"


def test_condition_needs_values() -> None:
    with pytest.raises(ValidationError):
        Condition(path="AttendanceDomain", values=[])


def test_pupil_access_modes() -> None:
    assert PupilAccess().mode == "all"
    with pytest.raises(ValidationError):
        PupilAccess.model_validate({"mode": "some"})


# --- review dates (Kent 7b) -------------------------------------------------------------


def test_effective_review_due_is_three_years_after_approval() -> None:
    assert _agreement(approved_on=date(2024, 3, 15)).effective_review_due() == date(2027, 3, 15)


def test_effective_review_due_from_29_february_is_28_february() -> None:
    assert _agreement(approved_on=date(2024, 2, 29)).effective_review_due() == date(2027, 2, 28)


def test_effective_review_due_crossing_a_leap_day_is_still_the_anniversary() -> None:
    assert _agreement(approved_on=date(2025, 6, 1)).effective_review_due() == date(2028, 6, 1)


def test_an_explicit_review_date_wins() -> None:
    spec = _agreement(approved_on=date(2024, 3, 15), review_due=date(2025, 1, 1))
    assert spec.effective_review_due() == date(2025, 1, 1)
    assert _agreement(review_due=date(2026, 1, 1)).effective_review_due() == date(2026, 1, 1)


def test_no_approval_date_means_no_review_date() -> None:
    assert _agreement().effective_review_due() is None
