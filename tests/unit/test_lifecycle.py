"""Agreement lifecycle (hub.core.agreements.lifecycle): the status in force at a moment, and
every transition, allowed or refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hub.core.agreements.lifecycle import (
    NOTICE_DAYS,
    REVIEW_GRACE_DAYS,
    SUSPENSION_DAYS,
    Status,
    Transition,
    TransitionError,
    apply,
    initial,
    standing,
)
from hub.core.records import LifecycleRecord

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=400)  # far beyond the defaults, well before review


def _record(status: str, **fields: object) -> LifecycleRecord:
    base = LifecycleRecord("A", status, "", T0, "setup", review_due=NOW + timedelta(days=900))
    return replace(base, **fields)  # type: ignore[arg-type]


def _in(status: Status) -> LifecycleRecord:
    """A record whose standing at NOW is `status`."""
    if status is Status.SUSPENDED:
        return _record("suspended", reason="breach", suspended_until=NOW + timedelta(days=10))
    if status is Status.TERMINATING:
        return _record("terminating", notice_effective=NOW + timedelta(days=10))
    return _record(status.value)


RESULT = {
    Transition.GO_LIVE: Status.LIVE,
    Transition.SUSPEND: Status.SUSPENDED,
    Transition.REINSTATE: Status.LIVE,
    Transition.GIVE_NOTICE: Status.TERMINATING,
    Transition.REVIEWED: Status.LIVE,
}
ALLOWED = {
    (Transition.GO_LIVE, Status.DRAFT),
    (Transition.SUSPEND, Status.LIVE),
    (Transition.REINSTATE, Status.SUSPENDED),
    (Transition.GIVE_NOTICE, Status.LIVE),
    (Transition.GIVE_NOTICE, Status.SUSPENDED),
    (Transition.REVIEWED, Status.LIVE),
    (Transition.REVIEWED, Status.SUSPENDED),
}
EVERY = [(t, s) for t in Transition for s in Status]


def test_the_fixture_records_stand_where_they_claim() -> None:
    for status in Status:
        assert standing(_in(status), NOW).status is status


# From a (breach) suspension: notice and review change the record, but the agreement stays
# suspended until it is reinstated or the suspension runs out.
STAYS_SUSPENDED = {
    (Transition.GIVE_NOTICE, Status.SUSPENDED),
    (Transition.REVIEWED, Status.SUSPENDED),
}
STORED = {(Transition.REVIEWED, Status.SUSPENDED): Status.SUSPENDED}


@pytest.mark.parametrize(("transition", "status"), sorted(ALLOWED))
def test_allowed_transition(transition: Transition, status: Status) -> None:
    after = apply(_in(status), transition, now=NOW, actor="ops@la", reason="why")
    assert after.status == STORED.get((transition, status), RESULT[transition])
    expected = Status.SUSPENDED if (transition, status) in STAYS_SUSPENDED else RESULT[transition]
    assert standing(after, NOW).status is expected
    assert (after.changed_at, after.changed_by, after.reason) == (NOW, "ops@la", "why")
    assert after.agreement_id == "A"


@pytest.mark.parametrize(("transition", "status"), [p for p in EVERY if p not in ALLOWED])
def test_forbidden_transition(transition: Transition, status: Status) -> None:
    record = _in(status)
    with pytest.raises(TransitionError) as info:
        apply(record, transition, now=NOW, actor="ops@la")
    assert str(info.value) == f"cannot {transition.value} an agreement that is {status.value}"
    assert isinstance(info.value, ValueError)


def test_transitions_use_the_standing_not_the_stored_status() -> None:
    """A terminating record past its notice is terminated: nothing can revive it."""
    record = _record("terminating", notice_effective=NOW - timedelta(seconds=1))
    for transition in Transition:
        with pytest.raises(TransitionError, match="terminated"):
            apply(record, transition, now=NOW, actor="ops")
    # A suspension that has run out is live again: it can be suspended, not reinstated.
    lapsed = _record("suspended", suspended_until=NOW - timedelta(seconds=1))
    with pytest.raises(TransitionError, match="cannot reinstate an agreement that is live"):
        apply(lapsed, Transition.REINSTATE, now=NOW, actor="ops")
    assert apply(lapsed, Transition.SUSPEND, now=NOW, actor="ops").status == "suspended"


def test_apply_never_changes_its_input() -> None:
    record = _in(Status.LIVE)
    apply(record, Transition.SUSPEND, now=NOW, actor="ops")
    assert record == _in(Status.LIVE)


# --- standing ------------------------------------------------------------------------


def test_draft_neither_flows_nor_holds() -> None:
    now_standing = standing(_record("draft"), NOW)
    assert now_standing.status is Status.DRAFT
    assert not now_standing.flows and not now_standing.holds


def test_live_flows() -> None:
    now_standing = standing(_record("live"), NOW)
    assert now_standing.flows and not now_standing.holds
    assert now_standing.warning == "" and now_standing.reason == ""


def test_suspended_until_t_is_live_from_t() -> None:
    until = NOW + timedelta(days=7)
    record = _record("suspended", reason="breach", suspended_until=until)
    before = standing(record, until - timedelta(seconds=1))
    assert before.status is Status.SUSPENDED and before.reason == "breach"
    assert before.holds and not before.flows
    at = standing(record, until)
    assert at.status is Status.LIVE and at.flows and not at.holds
    assert standing(record, until + timedelta(days=1)).status is Status.LIVE


def test_suspended_without_an_end_stays_suspended() -> None:
    record = _record("suspended", reason="breach", suspended_until=None)
    assert standing(record, LATER).status is Status.SUSPENDED


def test_terminating_flows_until_notice_effective_then_terminated() -> None:
    effective = NOW + timedelta(days=30)
    record = _record("terminating", reason="LA withdrew", notice_effective=effective)
    during = standing(record, effective - timedelta(seconds=1))
    assert during.status is Status.TERMINATING and during.flows
    assert during.reason == "LA withdrew"
    after = standing(record, effective)
    assert after.status is Status.TERMINATED
    assert not after.flows and not after.holds
    assert after.reason == "notice period ended"


def test_terminated_is_final() -> None:
    record = _record("terminated", reason="ended")
    now_standing = standing(record, LATER)
    assert now_standing.status is Status.TERMINATED and now_standing.reason == "ended"
    assert not now_standing.flows and not now_standing.holds


def test_review_lapsed_warns_then_suspends_thirty_days_later() -> None:
    due = NOW
    record = _record("live", review_due=due)
    assert standing(record, due - timedelta(seconds=1)) == standing(_record("live"), NOW)
    at_due = standing(record, due)
    assert at_due.status is Status.LIVE and at_due.flows
    assert at_due.warning == "review overdue"
    last_day = standing(record, due + timedelta(days=REVIEW_GRACE_DAYS) - timedelta(seconds=1))
    assert last_day.status is Status.LIVE and last_day.warning == "review overdue"
    lapsed = standing(record, due + timedelta(days=REVIEW_GRACE_DAYS))
    assert lapsed.status is Status.SUSPENDED and lapsed.reason == "review lapsed"
    assert lapsed.holds and not lapsed.flows
    assert REVIEW_GRACE_DAYS == 30


def test_review_lapse_applies_after_a_suspension_runs_out() -> None:
    record = _record("suspended", suspended_until=NOW, review_due=NOW - timedelta(days=31))
    assert standing(record, NOW).reason == "review lapsed"


def test_a_lapsed_review_does_not_revive_a_terminated_agreement() -> None:
    record = _record("terminated", review_due=NOW - timedelta(days=100))
    assert standing(record, NOW).status is Status.TERMINATED


# --- effects of transitions ----------------------------------------------------------------


def test_go_live_sets_review_due_three_years_ahead_when_none() -> None:
    record = _record("draft", review_due=None)
    after = apply(record, Transition.GO_LIVE, now=NOW, actor="dpo")
    assert after.review_due is not None
    three_years = NOW.replace(year=NOW.year + 3)
    # Within three years of going live (Kent 7b), and no more than a day short of it.
    assert three_years - timedelta(days=1) <= after.review_due <= three_years
    assert standing(after, after.review_due - timedelta(seconds=1)).warning == ""


def test_go_live_keeps_an_existing_review_date() -> None:
    due = NOW + timedelta(days=100)
    after = apply(_record("draft", review_due=due), Transition.GO_LIVE, now=NOW, actor="dpo")
    assert after.review_due == due


def test_suspend_defaults_to_thirty_days_and_takes_a_length() -> None:
    live = _in(Status.LIVE)
    after = apply(live, Transition.SUSPEND, now=NOW, actor="dpo", reason="breach")
    assert after.suspended_until == NOW + timedelta(days=SUSPENSION_DAYS)
    assert SUSPENSION_DAYS == 30
    assert standing(after, NOW + timedelta(days=29)).status is Status.SUSPENDED
    assert standing(after, NOW + timedelta(days=30)).status is Status.LIVE
    short = apply(live, Transition.SUSPEND, now=NOW, actor="dpo", days=3)
    assert short.suspended_until == NOW + timedelta(days=3)


def test_reinstate_clears_the_suspension() -> None:
    after = apply(_in(Status.SUSPENDED), Transition.REINSTATE, now=NOW, actor="dpo")
    assert after.status == "live" and after.suspended_until is None
    assert standing(after, NOW).flows


def test_give_notice_defaults_to_thirty_days_and_takes_a_length() -> None:
    after = apply(_in(Status.LIVE), Transition.GIVE_NOTICE, now=NOW, actor="la")
    assert after.notice_effective == NOW + timedelta(days=NOTICE_DAYS)
    assert NOTICE_DAYS == 30
    assert standing(after, NOW + timedelta(days=29)).status is Status.TERMINATING
    assert standing(after, NOW + timedelta(days=30)).status is Status.TERMINATED
    quick = apply(_in(Status.LIVE), Transition.GIVE_NOTICE, now=NOW, actor="la", days=0)
    assert standing(quick, NOW).status is Status.TERMINATED


def test_notice_given_while_suspended_does_not_resume_the_flow() -> None:
    suspended = apply(_in(Status.LIVE), Transition.SUSPEND, now=NOW, actor="dpo", reason="breach")
    noticed = apply(suspended, Transition.GIVE_NOTICE, now=NOW + timedelta(days=1), actor="la")
    during = standing(noticed, NOW + timedelta(days=2))
    assert not during.flows
    assert standing(noticed, NOW + timedelta(days=31)).status is Status.TERMINATED


def test_reviewed_renews_the_review_date() -> None:
    record = _record("live", review_due=NOW - timedelta(days=10))
    assert standing(record, NOW).warning == "review overdue"
    after = apply(record, Transition.REVIEWED, now=NOW, actor="dpo")
    assert after.review_due is not None and after.review_due > NOW + timedelta(days=3 * 365 - 2)
    assert standing(after, NOW).warning == ""
    assert standing(after, NOW).status is Status.LIVE


def test_reviewed_lifts_a_review_lapse_suspension() -> None:
    record = _record("live", review_due=NOW - timedelta(days=REVIEW_GRACE_DAYS + 1))
    assert standing(record, NOW).status is Status.SUSPENDED
    with pytest.raises(TransitionError, match="suspended"):  # it already stands suspended
        apply(record, Transition.SUSPEND, now=NOW, actor="dpo")
    after = apply(record, Transition.REVIEWED, now=NOW, actor="dpo")
    assert standing(after, NOW).status is Status.LIVE
    assert standing(after, NOW).flows


def test_reinstating_a_review_lapse_suspension_does_not_make_it_flow() -> None:
    record = _record("live", review_due=NOW - timedelta(days=REVIEW_GRACE_DAYS + 1))
    after = apply(record, Transition.REINSTATE, now=NOW, actor="dpo")
    assert standing(after, NOW).status is Status.SUSPENDED  # the review is still overdue


def test_initial_record() -> None:
    due = NOW + timedelta(days=1000)
    record = initial("A", "draft", now=NOW, actor="config", review_due=due)
    assert record == LifecycleRecord("A", "draft", "", NOW, "config", review_due=due)
    assert standing(record, NOW).status is Status.DRAFT
