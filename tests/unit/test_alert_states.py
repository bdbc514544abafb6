"""The alert state machine (hub.core.alerts): over random observation sequences, exactly one
notification when a condition starts firing (after holding for the rule's `for`) and one when
it resolves; none for a condition that clears while pending, none for a repeated poll or an
unmeasured round, and notifications always alternate firing, resolved, firing..."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.alerts import Key, Reading, evaluate, step
from hub.core.records import AlertEventRecord, AlertStateRecord

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KEY: Key = ("parked_rows", "outbox")


@dataclass(frozen=True)
class Poll:
    """One evaluation round: `advance` seconds after the last, the condition holding
    (value), clear (None), or not measured at all (unmeasured)."""

    advance: float
    value: float | None
    unmeasured: bool = False
    repeat: int = 1  # the same round polled again at the same instant (a retry)


polls = st.lists(
    st.builds(
        Poll,
        advance=st.sampled_from([0.0, 1.0, 5.0, 30.0, 59.0, 60.0, 61.0, 600.0]),
        value=st.one_of(st.none(), st.integers(1, 5).map(float)),
        unmeasured=st.sampled_from([False, False, False, True]),
        repeat=st.integers(1, 3),
    ),
    max_size=40,
)
holds = st.sampled_from([0.0, 1.0, 60.0, 300.0])


def _play(seq: list[Poll], hold: float) -> list[tuple[datetime, AlertEventRecord]]:
    """Through `evaluate`, as the loop calls it, with the states kept between rounds."""
    states: dict[Key, AlertStateRecord] = {}
    now, out = T0, []
    for poll in seq:
        now += timedelta(seconds=poll.advance)
        for _ in range(poll.repeat):
            if poll.unmeasured:
                readings: dict[str, dict[str, Reading]] = {}
            else:
                found = (
                    {} if poll.value is None else {KEY[1]: Reading(value=poll.value, summary="s")}
                )
                readings = {KEY[0]: found}
            result = evaluate(states, readings, {KEY[0]: timedelta(seconds=hold)}, now)
            states = result.states
            out += [(now, e) for e in result.events]
    return out


def _oracle(seq: list[Poll], hold: float) -> tuple[int, int]:
    """(firing, resolved) written from the rule text: a run of measured rounds that hold
    fires iff it lasts at least `hold`; it resolves at the first measured clear round."""
    now, fired, resolved = T0, 0, 0
    run_start: datetime | None = None
    run_fired = False
    for poll in seq:
        now += timedelta(seconds=poll.advance)
        if poll.unmeasured:
            continue
        if poll.value is None:
            if run_fired:
                resolved += 1
            run_start, run_fired = None, False
            continue
        run_start = run_start or now
        if not run_fired and (now - run_start).total_seconds() >= hold:
            fired, run_fired = fired + 1, True
    return fired, resolved


@settings(max_examples=500, deadline=None)
@given(seq=polls, hold=holds)
def test_one_notification_per_start_and_per_resolution(seq: list[Poll], hold: float) -> None:
    events = [e for _, e in _play(seq, hold)]
    kinds = [e.kind for e in events]
    assert kinds == ["firing", "resolved"] * (len(kinds) // 2) + ["firing"] * (len(kinds) % 2)
    assert (kinds.count("firing"), kinds.count("resolved")) == _oracle(seq, hold)


@settings(max_examples=300, deadline=None)
@given(seq=polls, hold=holds)
def test_a_firing_notification_comes_only_after_the_hold(seq: list[Poll], hold: float) -> None:
    played = _play(seq, hold)
    for at, event in played:
        assert event.rule == KEY[0] and event.subject == KEY[1]
        assert at >= T0
    # Each firing notification is at least `hold` after the round its run began.
    now, run_start = T0, None
    firing_at = [at for at, e in played if e.kind == "firing"]
    starts = []
    for poll in seq:
        now += timedelta(seconds=poll.advance)
        if poll.unmeasured:
            continue
        if poll.value is None:
            run_start = None
        elif run_start is None:
            run_start = now
            starts.append(now)
    for at in firing_at:
        began = max(s for s in starts if s <= at)
        assert (at - began).total_seconds() >= hold


@given(value=st.floats(0, 1e6), hold=holds, gap=st.floats(0, 1e5))
def test_polling_again_changes_nothing(value: float, hold: float, gap: float) -> None:
    reading = Reading(value=value, summary="s")
    now = T0 + timedelta(seconds=gap)
    state, _ = step(None, KEY, reading, T0, timedelta(seconds=hold))
    once, _ = step(state, KEY, reading, now, timedelta(seconds=hold))
    twice, again = step(once, KEY, reading, now, timedelta(seconds=hold))
    assert twice == once and again is None


def test_a_condition_that_clears_while_pending_notifies_nothing() -> None:
    hold = timedelta(minutes=10)
    state, event = step(None, KEY, Reading(value=3, summary="s"), T0, hold)
    assert state is not None and state.status == "pending" and event is None
    cleared, event = step(state, KEY, None, T0 + timedelta(minutes=9), hold)
    assert cleared is None and event is None


def test_firing_then_resolved_carries_the_last_figure() -> None:
    hold = timedelta(minutes=1)
    state, _ = step(None, KEY, Reading(value=1, summary="one"), T0, hold)
    state, fired = step(state, KEY, Reading(value=2, summary="two"), T0 + hold, hold)
    assert fired is not None and (fired.kind, fired.value, fired.summary) == ("firing", 2, "two")
    assert state is not None and state.firing_at == T0 + hold
    state, again = step(state, KEY, Reading(value=7, summary="seven"), T0 + 2 * hold, hold)
    assert again is None and state is not None and state.value == 7
    gone, resolved = step(state, KEY, None, T0 + 3 * hold, hold)
    assert gone is None and resolved is not None
    assert (resolved.kind, resolved.value, resolved.at) == ("resolved", 7, T0 + 3 * hold)


def test_an_unmeasured_rule_keeps_its_states_and_others_move_on() -> None:
    hold = {"parked_rows": timedelta(), "dead_letters": timedelta()}
    firing = evaluate(
        {},
        {
            "parked_rows": {"outbox": Reading(value=1, summary="s")},
            "dead_letters": {"cme": Reading(value=2, summary="d")},
        },
        hold,
        T0,
    )
    assert sorted(e.rule for e in firing.events) == ["dead_letters", "parked_rows"]
    # The broker's figures are unreadable this round: dead_letters is left as it was.
    later = evaluate(firing.states, {"parked_rows": {}}, hold, T0 + timedelta(minutes=1))
    assert [(e.rule, e.kind) for e in later.events] == [("parked_rows", "resolved")]
    assert set(later.states) == {("dead_letters", "cme")}
    assert later.changed == {("parked_rows", "outbox"): None}
