"""Whose data a school's approvals reach (hub.core.agreements.scope) and when a held copy
may leave (hub.core.agreements.schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from hub.core.agreements.model import PupilAccess, Schedule
from hub.core.agreements.schedule import next_window
from hub.core.agreements.scope import effective_version, in_cohort, pupil_allowed

# --- effective_version ---------------------------------------------------------------

# (number, widens its predecessor, value)
V1 = (1, True, "v1")
V2_NARROWS = (2, False, "v2")
V3_WIDENS = (3, True, "v3")
V4_NARROWS = (4, False, "v4")


def test_approved_v1_then_a_narrowing_v2_carries_the_approval() -> None:
    assert effective_version([V1, V2_NARROWS], {1}) == "v2"


def test_a_widening_v3_without_approval_leaves_the_school_on_v2() -> None:
    assert effective_version([V1, V2_NARROWS, V3_WIDENS], {1}) == "v2"


def test_approving_v3_moves_the_school_to_v3() -> None:
    assert effective_version([V1, V2_NARROWS, V3_WIDENS], {1, 3}) == "v3"
    assert effective_version([V1, V2_NARROWS, V3_WIDENS], {3}) == "v3"


def test_a_narrowing_after_an_unapproved_widening_does_not_carry() -> None:
    """v4 narrows v3, but v3 was never approved: v4 may still be wider than v2."""
    assert effective_version([V1, V2_NARROWS, V3_WIDENS, V4_NARROWS], {1}) == "v2"
    assert effective_version([V1, V2_NARROWS, V3_WIDENS, V4_NARROWS], {3}) == "v4"


def test_approved_none_is_none() -> None:
    assert effective_version([V1, V2_NARROWS, V3_WIDENS], set()) is None
    assert effective_version([], {1}) is None


def test_approval_of_a_version_that_does_not_exist_reaches_nothing() -> None:
    assert effective_version([V1, V2_NARROWS], {7}) is None


def test_approving_only_an_old_version_after_widenings() -> None:
    versions = [V1, (2, True, "v2"), (3, True, "v3")]
    assert effective_version(versions, {1}) == "v1"
    assert effective_version(versions, {2}) == "v2"
    assert effective_version(versions, {1, 2, 3}) == "v3"


def test_approvals_may_be_any_iterable() -> None:
    assert effective_version([V1, V2_NARROWS], iter([1])) == "v2"
    assert effective_version([V1, V2_NARROWS], frozenset({1})) == "v2"


# --- pupils and cohorts ---------------------------------------------------------------

REFID = "53E6F4C0109FDE4DC7E11DB9C0100163"
UPN = "H330950043367"
OTHER_REFID = "6219B1684CF9B799640234CBB9992134"
OTHER_UPN = "N936846321107"


def test_all_allows_everyone() -> None:
    access = PupilAccess()
    assert pupil_allowed(access, REFID, UPN) is True
    assert pupil_allowed(access, None, None) is True


@pytest.mark.parametrize("named", [REFID, UPN])
def test_all_except_leaves_out_the_named_learner_by_upn_or_refid(named: str) -> None:
    access = PupilAccess(mode="all_except", learners=[named])
    assert pupil_allowed(access, REFID, UPN) is False
    assert (
        pupil_allowed(access, REFID if named == REFID else None, UPN if named == UPN else None)
        is False
    )
    assert pupil_allowed(access, OTHER_REFID, OTHER_UPN) is True


def test_all_except_by_upn_cannot_tell_until_the_upn_is_known() -> None:
    access = PupilAccess(mode="all_except", learners=[UPN])
    assert pupil_allowed(access, OTHER_REFID, None) is None
    assert pupil_allowed(access, None, None) is None
    assert pupil_allowed(access, REFID, UPN) is False


def test_all_except_by_refid_only_is_decided_without_a_upn() -> None:
    access = PupilAccess(mode="all_except", learners=[REFID])
    assert pupil_allowed(access, OTHER_REFID, None) is True
    assert pupil_allowed(access, REFID, None) is False


@pytest.mark.parametrize("named", [REFID, UPN])
def test_only_lets_through_the_named_learner_by_upn_or_refid(named: str) -> None:
    access = PupilAccess(mode="only", learners=[named])
    assert pupil_allowed(access, REFID, UPN) is True
    assert (
        pupil_allowed(access, REFID if named == REFID else None, UPN if named == UPN else None)
        is True
    )
    assert pupil_allowed(access, OTHER_REFID, OTHER_UPN) is False


def test_only_by_upn_waits_for_the_upn_and_by_refid_does_not() -> None:
    assert pupil_allowed(PupilAccess(mode="only", learners=[UPN]), OTHER_REFID, None) is None
    assert pupil_allowed(PupilAccess(mode="only", learners=[REFID]), OTHER_REFID, None) is False


def test_only_with_an_empty_list_lets_nobody_through() -> None:
    assert pupil_allowed(PupilAccess(mode="only"), REFID, UPN) is False


def test_all_except_with_an_empty_list_lets_everybody_through() -> None:
    assert pupil_allowed(PupilAccess(mode="all_except"), REFID, UPN) is True


def test_pupil_lists_are_normalised_and_checked() -> None:
    access = PupilAccess(mode="only", learners=[f"  {UPN.lower()} ", REFID.lower(), UPN])
    assert access.learners == sorted([UPN, REFID])
    with pytest.raises(ValueError, match="check letter"):
        PupilAccess(mode="only", learners=["A" + UPN[1:]])
    with pytest.raises(ValueError, match="not a UPN"):
        PupilAccess(mode="only", learners=[""])


def test_cohort_membership_by_refid_or_upn() -> None:
    members = frozenset({REFID, OTHER_UPN})
    assert in_cohort(members, REFID, None) is True
    assert in_cohort(members, None, OTHER_UPN) is True
    assert in_cohort(members, OTHER_REFID, OTHER_UPN) is True
    assert in_cohort(members, OTHER_REFID, UPN) is False
    assert in_cohort(members, OTHER_REFID, None) is None  # could be OTHER_UPN
    assert in_cohort(frozenset({REFID}), OTHER_REFID, None) is False
    assert in_cohort(frozenset(), REFID, UPN) is False


# --- next_window -----------------------------------------------------------------------

TWICE_DAILY = Schedule(mode="windows", times=[time(14, 0), time(9, 30)])  # unsorted on purpose
WEEKLY_MONDAY = Schedule(mode="windows", times=[time(9, 30)], days=["Mon"])
WEEKDAYS = Schedule(
    mode="windows", times=[time(9, 30), time(14, 0)], days=["Mon", "Tue", "Wed", "Thu", "Fri"]
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Winter (GMT = UTC): Wednesday 15 January 2025.
        (utc(2025, 1, 15, 8, 0), utc(2025, 1, 15, 9, 30)),
        (utc(2025, 1, 15, 9, 31), utc(2025, 1, 15, 14, 0)),
        (utc(2025, 1, 15, 14, 1), utc(2025, 1, 16, 9, 30)),
        (utc(2025, 1, 15, 23, 59), utc(2025, 1, 16, 9, 30)),
        # Summer (BST = UTC+1): Tuesday 15 July 2025; 09:30 BST is 08:30 UTC.
        (utc(2025, 7, 15, 8, 0), utc(2025, 7, 15, 8, 30)),
        (utc(2025, 7, 15, 8, 45), utc(2025, 7, 15, 13, 0)),
        (utc(2025, 7, 15, 9, 15), utc(2025, 7, 15, 13, 0)),  # 09:15 UTC is 10:15 BST
        (utc(2025, 7, 15, 13, 30), utc(2025, 7, 16, 8, 30)),
        # 23:30 UTC is already 00:30 BST on the 16th: that day's first window.
        (utc(2025, 7, 15, 23, 30), utc(2025, 7, 16, 8, 30)),
        # Across the clock changes: Sunday 30 March 2025 (BST starts), 26 October (ends).
        (utc(2025, 3, 29, 15, 0), utc(2025, 3, 30, 8, 30)),
        (utc(2025, 10, 25, 15, 0), utc(2025, 10, 26, 9, 30)),
    ],
)
def test_twice_daily_in_uk_local_time(now: datetime, expected: datetime) -> None:
    got = next_window(TWICE_DAILY, now)
    assert got == expected
    assert got is not None and got.utcoffset() == timedelta(0)


def test_exactly_at_a_window_time_is_that_window() -> None:
    assert next_window(TWICE_DAILY, utc(2025, 1, 15, 9, 30)) == utc(2025, 1, 15, 9, 30)
    assert next_window(TWICE_DAILY, utc(2025, 7, 15, 13, 0)) == utc(2025, 7, 15, 13, 0)
    just_after = utc(2025, 1, 15, 14, 0) + timedelta(microseconds=1)
    assert next_window(TWICE_DAILY, just_after) == utc(2025, 1, 16, 9, 30)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2025, 1, 15, 12, 0), utc(2025, 1, 20, 9, 30)),  # Wednesday -> Monday
        (utc(2025, 1, 20, 9, 0), utc(2025, 1, 20, 9, 30)),  # Monday morning -> today
        (utc(2025, 1, 20, 9, 30), utc(2025, 1, 20, 9, 30)),  # exactly then
        (utc(2025, 1, 20, 10, 0), utc(2025, 1, 27, 9, 30)),  # Monday after -> next Monday
        (utc(2025, 1, 19, 23, 59), utc(2025, 1, 20, 9, 30)),  # Sunday night
        (utc(2025, 7, 14, 9, 0), utc(2025, 7, 21, 8, 30)),  # Monday 10:00 BST -> next week
        (utc(2025, 3, 26, 12, 0), utc(2025, 3, 31, 8, 30)),  # the week BST starts
    ],
)
def test_weekly_on_monday(now: datetime, expected: datetime) -> None:
    assert next_window(WEEKLY_MONDAY, now) == expected


def test_weekdays_only_skip_the_weekend() -> None:
    friday_afternoon = utc(2025, 1, 17, 15, 0)
    assert next_window(WEEKDAYS, friday_afternoon) == utc(2025, 1, 20, 9, 30)


def test_now_in_another_offset_is_the_same_instant() -> None:
    new_york = timezone(timedelta(hours=-5))
    now = datetime(2025, 1, 15, 3, 0, tzinfo=new_york)  # 08:00 UTC
    assert next_window(TWICE_DAILY, now) == utc(2025, 1, 15, 9, 30)


def test_another_timezone_can_be_named() -> None:
    schedule = Schedule(mode="windows", times=[time(9, 0)], timezone="UTC")
    assert next_window(schedule, utc(2025, 7, 15, 8, 0)) == utc(2025, 7, 15, 9, 0)


def test_immediate_is_none() -> None:
    assert next_window(Schedule(), utc(2025, 1, 15, 8, 0)) is None
    assert next_window(Schedule(times=[time(9, 30)]), utc(2025, 1, 15, 8, 0)) is None


def test_the_window_is_never_in_the_past_and_at_most_a_week_away() -> None:
    start = utc(2025, 3, 24, 0, 0)
    for hours in range(0, 24 * 14, 5):
        now = start + timedelta(hours=hours, minutes=7 * hours % 60)
        for schedule in (TWICE_DAILY, WEEKLY_MONDAY, WEEKDAYS):
            got = next_window(schedule, now)
            assert got is not None
            assert now <= got <= now + timedelta(days=7)
