"""Alert evaluation, pure: readings in, states and notifications out.

Each rule and subject (a subscriber, an agreement, the outbox) is a small state machine:
inactive (no state) -> pending (the condition holds, not yet for the rule's `for`) ->
firing -> inactive again. Exactly one notification is made when it starts firing and one
when it resolves; a condition that clears while pending notifies nothing, and a poll that
finds things as they were changes nothing, however often it runs (Mirth #1288: no flood of
e-mails while a queue retries).

A rule whose source could not be read this round (the broker's management API is down, the
database is away) is left as it was: an unknown is neither a start nor a resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hub.core.alert_rules import AlertRules
from hub.core.records import AlertEventRecord, AlertStateRecord, QueueLevel

Key = tuple[str, str]  # (rule, subject)
OUTBOX, INGEST = "outbox", "ingest"
REVIEWABLE = frozenset({"live", "suspended"})


@dataclass(frozen=True, kw_only=True)
class Reading:
    """A condition found holding now, with its figure and a line for people."""

    value: float
    summary: str


# {rule: {subject: reading}} for the rules measured this round; a subject left out of a
# measured rule does not hold.
Readings = Mapping[str, Mapping[str, Reading]]


def step(
    state: AlertStateRecord | None,
    key: Key,
    reading: Reading | None,
    now: datetime,
    hold: timedelta,
) -> tuple[AlertStateRecord | None, AlertEventRecord | None]:
    """The next state of one rule and subject, and the notification the change makes."""
    rule, subject = key
    if reading is None:
        if state is not None and state.status == "firing":
            return None, _event(state, "resolved", now)
        return None, None
    if state is None:
        state = AlertStateRecord(
            rule=rule,
            subject=subject,
            status="pending",
            since=now,
            firing_at=None,
            value=reading.value,
            summary=reading.summary,
        )
    state = replace(state, value=reading.value, summary=reading.summary)
    if state.status == "pending" and now - state.since >= hold:
        state = replace(state, status="firing", firing_at=now)
        return state, _event(state, "firing", now)
    return state, None


def _event(state: AlertStateRecord, kind: str, now: datetime) -> AlertEventRecord:
    return AlertEventRecord(
        rule=state.rule,
        subject=state.subject,
        kind=kind,
        at=now,
        value=state.value,
        summary=state.summary,
    )


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    states: dict[Key, AlertStateRecord]  # every state after this round
    changed: dict[Key, AlertStateRecord | None]  # what to write (None: delete)
    events: list[AlertEventRecord]


def evaluate(
    states: Mapping[Key, AlertStateRecord],
    readings: Readings,
    holds: Mapping[str, timedelta],
    now: datetime,
) -> Evaluation:
    """Step every known state and every new reading of the measured rules."""
    after = dict(states)
    changed: dict[Key, AlertStateRecord | None] = {}
    events: list[AlertEventRecord] = []
    keys = {k for k in states if k[0] in readings}
    keys |= {(rule, subject) for rule, found in readings.items() for subject in found}
    for key in sorted(keys):
        rule, subject = key
        old = states.get(key)
        hold = holds.get(rule, timedelta())
        new, event = step(old, key, readings[rule].get(subject), now, hold)
        if new != old:
            changed[key] = new
            if new is None:
                del after[key]
            else:
                after[key] = new
        if event is not None:
            events.append(event)
    return Evaluation(states=after, changed=changed, events=events)


def holds(rules: AlertRules) -> dict[str, timedelta]:
    return {name: timedelta(seconds=rules.hold_seconds(name)) for name in rules.enabled()}


# --- what the hub looks like now, and which conditions hold ------------------------------


@dataclass(frozen=True, kw_only=True)
class SubscriberLevels:
    """A subscriber's queue and dead-letter queue; `consumed`: its LA service (or the hub's
    webhook deliverer) is expected to hold a consumer on the queue (not a pull agent's)."""

    subscriber: str
    queue: QueueLevel | None  # None: the queue does not exist (yet)
    dead_letters: QueueLevel | None
    consumed: bool


@dataclass(frozen=True, kw_only=True)
class AgreementStanding:
    agreement: str
    status: str
    review_due: datetime | None


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """The hub's state as observed this round; None: that source could not be read."""

    backlog_rows: int | None = None
    parked_rows: int | None = None
    subscribers: Sequence[SubscriberLevels] | None = None
    agreements: Sequence[AgreementStanding] | None = None
    refusals: int | None = None  # refused agent messages within the refusal rule's window


def read(rules: AlertRules, snap: Snapshot, now: datetime) -> dict[str, dict[str, Reading]]:
    """The conditions that hold, per enabled rule whose source was read. A disabled rule
    reads as holding nowhere, so what it had firing resolves."""
    out: dict[str, dict[str, Reading]] = {}
    enabled = set(rules.enabled())
    for name, found in (
        ("outbox_backlog", _backlog(rules, snap)),
        ("parked_rows", _parked(snap)),
        ("dead_letters", _dead_letters(snap)),
        ("not_consuming", _not_consuming(snap)),
        ("review_due", _review_due(rules, snap, now)),
        ("ingest_refusals", _refusals(rules, snap)),
    ):
        if name not in enabled:
            out[name] = {}
        elif found is not None:
            out[name] = found
    return out


def _backlog(rules: AlertRules, snap: Snapshot) -> dict[str, Reading] | None:
    if snap.backlog_rows is None:
        return None
    rows, above = snap.backlog_rows, rules.outbox_backlog.above
    if rows <= above:
        return {}
    return {
        OUTBOX: Reading(value=rows, summary=f"{rows} outbox rows wait to be routed (> {above})")
    }


def _parked(snap: Snapshot) -> dict[str, Reading] | None:
    if snap.parked_rows is None:
        return None
    rows = snap.parked_rows
    if rows <= 0:
        return {}
    return {OUTBOX: Reading(value=rows, summary=f"{rows} parked outbox rows wait for a re-drive")}


def _dead_letters(snap: Snapshot) -> dict[str, Reading] | None:
    if snap.subscribers is None:
        return None
    return {
        s.subscriber: Reading(
            value=s.dead_letters.messages,
            summary=f"{s.dead_letters.messages} messages in {s.subscriber}'s dead-letter queue",
        )
        for s in snap.subscribers
        if s.dead_letters is not None and s.dead_letters.messages > 0
    }


def _not_consuming(snap: Snapshot) -> dict[str, Reading] | None:
    if snap.subscribers is None:
        return None
    return {
        s.subscriber: Reading(
            value=s.queue.messages,
            summary=f"{s.queue.messages} messages wait for {s.subscriber} and no consumer reads",
        )
        for s in snap.subscribers
        if s.consumed and s.queue is not None and s.queue.messages > 0 and s.queue.consumers == 0
    }


def _review_due(rules: AlertRules, snap: Snapshot, now: datetime) -> dict[str, Reading] | None:
    if snap.agreements is None:
        return None
    horizon = now + timedelta(days=rules.review_due.within_days)
    out = {}
    for a in snap.agreements:
        if a.status in REVIEWABLE and a.review_due is not None and a.review_due < horizon:
            days = (a.review_due - now).total_seconds() / 86400
            when = f"in {days:.0f} days" if days >= 0 else f"{-days:.0f} days overdue"
            summary = f"agreement {a.agreement} is due for review {when}"
            out[a.agreement] = Reading(value=round(days, 2), summary=summary)
    return out


def _refusals(rules: AlertRules, snap: Snapshot) -> dict[str, Reading] | None:
    if snap.refusals is None:
        return None
    rule = rules.ingest_refusals
    rate = snap.refusals / rule.window_minutes
    if rate <= rule.per_minute:
        return {}
    summary = (
        f"{rate:.1f} agent messages refused a minute over {rule.window_minutes:g} minutes "
        f"(> {rule.per_minute:g})"
    )
    return {INGEST: Reading(value=round(rate, 3), summary=summary)}


def title(event: AlertEventRecord) -> str:
    """One line naming the notification, for an e-mail subject or a chat message."""
    state = "FIRING" if event.kind == "firing" else "RESOLVED"
    return f"[SIF Hub] {state}: {event.rule} ({event.subject})"
