"""What a new agreement version releases that the old one did not, and the reverse
(hub.core.agreements.diff), over every element path the hub's schemas allow."""

from __future__ import annotations

from typing import Any

import pytest

from hub.core.agreements.compile import CompiledVersion, compile_version
from hub.core.agreements.diff import ObjectDiff, diff, released
from hub.core.agreements.model import Agreement
from hub.core.agreements.special import SPECIAL_PATHS
from hub.sif.schemas import load_schemas

PATHS_OF = load_schemas().element_paths
NAME_LEAVES = sorted(
    p for p in PATHS_OF("LearnerPersonal") if p.startswith("PersonalInformation/Name/")
)


def _version(version: int = 1, **overrides: Any) -> CompiledVersion:
    data: dict[str, Any] = {
        "id": "A",
        "version": version,
        "recipients": ["cme"],
        "rules": [{"object": "LearnerPersonal", "include": ["UPN"]}],
    }
    data.update(overrides)
    return compile_version(Agreement.model_validate(data))


def _lp(**rule: Any) -> list[dict[str, Any]]:
    return [{"object": "LearnerPersonal", **rule}]


def test_the_name_leaves_are_what_the_schema_says() -> None:
    assert "PersonalInformation/Name/FamilyName" in NAME_LEAVES
    assert "PersonalInformation/Name/GivenName" in NAME_LEAVES
    assert len(NAME_LEAVES) == 10


def test_adding_an_include_path_gains_its_leaves_and_widens() -> None:
    old = _version(1)
    new = _version(2, rules=_lp(include=["UPN", "PersonalInformation/Name"]))
    result = diff(old, new, PATHS_OF)
    assert result.objects == {"LearnerPersonal": ObjectDiff(gained=NAME_LEAVES)}
    assert result.widens


def test_removing_an_include_path_loses_its_leaves_and_narrows() -> None:
    old = _version(1, rules=_lp(include=["UPN", "PersonalInformation/Name"]))
    new = _version(2)
    result = diff(old, new, PATHS_OF)
    assert result.objects == {"LearnerPersonal": ObjectDiff(lost=NAME_LEAVES)}
    assert result.widens is False


def test_an_exclude_narrows_and_dropping_it_widens() -> None:
    whole = _lp(include=["PersonalInformation/Name"])
    cut = _lp(include=["PersonalInformation/Name"], exclude=["PersonalInformation/Name/Title"])
    narrowing = diff(_version(1, rules=whole), _version(2, rules=cut), PATHS_OF)
    assert narrowing.objects["LearnerPersonal"].lost == ["PersonalInformation/Name/Title"]
    assert not narrowing.widens
    widening = diff(_version(1, rules=cut), _version(2, rules=whole), PATHS_OF)
    assert widening.objects["LearnerPersonal"].gained == ["PersonalInformation/Name/Title"]
    assert widening.widens


def test_adding_a_recipient_widens() -> None:
    result = diff(_version(1), _version(2, recipients=["cme", "vs"]), PATHS_OF)
    assert result.recipients_gained == ["vs"] and result.recipients_lost == []
    assert result.objects == {}
    assert result.widens


def test_removing_a_recipient_narrows() -> None:
    result = diff(_version(1, recipients=["cme", "vs"]), _version(2), PATHS_OF)
    assert result.recipients_lost == ["vs"] and result.recipients_gained == []
    assert not result.widens


def test_replacing_a_recipient_widens() -> None:
    result = diff(_version(1), _version(2, recipients=["vs"]), PATHS_OF)
    assert (result.recipients_gained, result.recipients_lost) == (["vs"], ["cme"])
    assert result.widens


def test_gaining_an_action_widens_and_losing_one_narrows() -> None:
    add_only = _lp(include=["UPN"], actions=["Add"])
    add_change = _lp(include=["UPN"], actions=["Add", "Change"])
    gained = diff(_version(1, rules=add_only), _version(2, rules=add_change), PATHS_OF)
    assert gained.objects == {"LearnerPersonal": ObjectDiff(actions_gained=["Change"])}
    assert gained.widens
    lost = diff(_version(1, rules=add_change), _version(2, rules=add_only), PATHS_OF)
    assert lost.objects == {"LearnerPersonal": ObjectDiff(actions_lost=["Change"])}
    assert not lost.widens


KEEP_CURRENT = {
    "path": "PersonalInformation/OtherAddressList/Address",
    "attribute": "Type",
    "values": ["Current"],
}


def test_dropping_a_keep_items_filter_is_relaxed_and_widens() -> None:
    filtered = _lp(include=["PersonalInformation/OtherAddressList"], keep_items=[KEEP_CURRENT])
    unfiltered = _lp(include=["PersonalInformation/OtherAddressList"])
    result = diff(_version(1, rules=filtered), _version(2, rules=unfiltered), PATHS_OF)
    entry = result.objects["LearnerPersonal"]
    assert entry.filters_relaxed
    assert entry.gained == [] and entry.lost == []  # same paths, more items
    assert result.widens


def test_adding_a_keep_items_filter_narrows() -> None:
    filtered = _lp(include=["PersonalInformation/OtherAddressList"], keep_items=[KEEP_CURRENT])
    unfiltered = _lp(include=["PersonalInformation/OtherAddressList"])
    result = diff(_version(1, rules=unfiltered), _version(2, rules=filtered), PATHS_OF)
    assert result.objects == {}
    assert not result.widens


def test_more_values_in_a_keep_items_filter_widen() -> None:
    one = _lp(keep_items=[KEEP_CURRENT])
    two = _lp(keep_items=[{**KEEP_CURRENT, "values": ["Current", "Previous"]}])
    assert diff(_version(1, rules=one), _version(2, rules=two), PATHS_OF).widens


ATTENDANCE_SESSION = [
    {"object": "LearnerAttendance", "where": [{"path": "AttendanceDomain", "values": ["Session"]}]}
]
ATTENDANCE_ALL = [{"object": "LearnerAttendance"}]


def test_where_conditions_dropped_widen_added_narrow_and_unchanged_differ_in_nothing() -> None:
    dropped = diff(
        _version(1, rules=ATTENDANCE_SESSION), _version(2, rules=ATTENDANCE_ALL), PATHS_OF
    )
    assert dropped.objects["LearnerAttendance"].filters_relaxed and dropped.widens
    added = diff(_version(1, rules=ATTENDANCE_ALL), _version(2, rules=ATTENDANCE_SESSION), PATHS_OF)
    assert added.objects == {} and not added.widens
    same = diff(
        _version(1, rules=ATTENDANCE_SESSION), _version(2, rules=ATTENDANCE_SESSION), PATHS_OF
    )
    assert same.objects == {} and not same.widens


def test_a_where_condition_on_a_new_object_is_simply_part_of_it() -> None:
    result = diff(
        _version(1), _version(2, rules=[*_lp(include=["UPN"]), *ATTENDANCE_SESSION]), PATHS_OF
    )
    assert not result.objects["LearnerAttendance"].filters_relaxed
    assert result.widens  # a new object


def test_a_new_object_gains_all_its_released_paths() -> None:
    new = _version(2, rules=[*_lp(include=["UPN"]), *ATTENDANCE_ALL])
    result = diff(_version(1), new, PATHS_OF)
    entry = result.objects["LearnerAttendance"]
    assert "AttendanceCode" in entry.gained and "AttendanceDomain" in entry.gained
    assert entry.actions_gained == ["Add", "Change", "Delete"]
    assert result.widens


def test_a_dropped_object_loses_everything_and_narrows() -> None:
    old = _version(1, rules=[*_lp(include=["UPN"]), *ATTENDANCE_ALL])
    result = diff(old, _version(2), PATHS_OF)
    entry = result.objects["LearnerAttendance"]
    assert entry.gained == [] and "AttendanceCode" in entry.lost
    assert entry.actions_lost == ["Add", "Change", "Delete"]
    assert not result.widens


def test_the_first_version_gains_everything_it_releases() -> None:
    result = diff(None, _version(1), PATHS_OF)
    assert result.objects == {
        "LearnerPersonal": ObjectDiff(gained=["UPN"], actions_gained=["Add", "Change", "Delete"])
    }
    assert result.recipients_gained == ["cme"]
    assert result.widens


def test_identical_versions_differ_in_nothing() -> None:
    rules = [
        *_lp(include=["UPN", "PersonalInformation"], keep_items=[KEEP_CURRENT]),
        *ATTENDANCE_ALL,
    ]
    result = diff(_version(1, rules=rules), _version(2, rules=rules), PATHS_OF)
    assert result.objects == {} and not result.widens
    assert result.recipients_gained == [] and result.recipients_lost == []


def test_gaining_an_article9_condition_gains_the_special_category_leaves() -> None:
    result = diff(
        _version(1, rules=_lp()),
        _version(2, rules=_lp(), lawful_basis={"article6": "e", "article9": "g"}),
        PATHS_OF,
    )
    gained = result.objects["LearnerPersonal"].gained
    assert "PersonalInformation/Demographics/EthnicityList/Ethnicity/Code" in gained
    assert "PersonalInformation/Demographics/Religion/AffiliationCode" in gained
    assert "Pregnant" in gained and "MedicalAlertMsgList/MedicalAlertMsg" in gained
    assert all(
        any(p == s or p.startswith(s + "/") for s in SPECIAL_PATHS["LearnerPersonal"])
        for p in gained
    )
    assert result.widens


def test_losing_the_article9_condition_loses_them_and_narrows() -> None:
    result = diff(
        _version(1, rules=_lp(), lawful_basis={"article6": "e", "article9": "g"}),
        _version(2, rules=_lp()),
        PATHS_OF,
    )
    assert "Pregnant" in result.objects["LearnerPersonal"].lost
    assert not result.widens


@pytest.mark.parametrize("obj", sorted(SPECIAL_PATHS))
def test_released_never_lists_special_category_paths_without_article9(obj: str) -> None:
    version = _version(1, rules=[{"object": obj}])
    paths = released(version, obj, PATHS_OF)
    assert paths
    for path in paths:
        assert not any(path == s or path.startswith(s + "/") for s in SPECIAL_PATHS[obj]), path
    assert "PersonalInformation/Name/FamilyName" in paths


def test_released_lists_leaves_only() -> None:
    paths = released(
        _version(1, rules=_lp(include=["PersonalInformation/Name"])), "LearnerPersonal", PATHS_OF
    )
    assert sorted(paths) == NAME_LEAVES
    assert "PersonalInformation/Name" not in paths


def test_released_for_a_missing_rule_or_version_is_empty() -> None:
    assert released(None, "LearnerPersonal", PATHS_OF) == set()
    assert released(_version(1), "LearnerAttendance", PATHS_OF) == set()


def test_dropping_the_cohort_widens() -> None:
    result = diff(_version(1, cohort="cme-cohort"), _version(2), PATHS_OF)
    assert result.widens
