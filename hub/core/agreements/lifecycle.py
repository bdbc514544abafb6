"""Agreement lifecycle with real effects.

draft -> live -> suspended (reason, until; Kent 7c default 30 days on a breach: copies are
held, then released or discarded by an explicit decision) -> live; live or suspended ->
terminating (notice; Kent 7d effective after 30 days) -> terminated (nothing flows again).
A lapsed review (Kent 7b) warns for 30 days, then suspends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from hub.core.records import LifecycleRecord

SUSPENSION_DAYS = 30
NOTICE_DAYS = 30
REVIEW_GRACE_DAYS = 30
REVIEW_YEARS = 3


class Status(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    SUSPENDED = "suspended"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class Transition(StrEnum):
    GO_LIVE = "go_live"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    GIVE_NOTICE = "give_notice"
    REVIEWED = "reviewed"


class TransitionError(ValueError):
    """The transition is not allowed from the agreement's current status."""


@dataclass(frozen=True)
class Standing:
    """Status in force at a moment, with why (for logs, the admin API and holds)."""

    status: Status
    reason: str = ""
    warning: str = ""

    @property
    def flows(self) -> bool:
        return self.status in (Status.LIVE, Status.TERMINATING)

    @property
    def holds(self) -> bool:
        return self.status is Status.SUSPENDED


def standing(record: LifecycleRecord, now: datetime) -> Standing:
    status = Status(record.status)
    if status is Status.TERMINATED:
        return Standing(status, record.reason)
    if status is Status.TERMINATING:
        if record.notice_effective and now >= record.notice_effective:
            return Standing(Status.TERMINATED, "notice period ended")
        if record.suspended_until and now < record.suspended_until:
            return Standing(Status.SUSPENDED, "suspended during notice")  # notice lifts nothing
        return Standing(status, record.reason)
    if status is Status.SUSPENDED and record.suspended_until and now >= record.suspended_until:
        status = Status.LIVE  # suspension over; held copies still await a decision
    if status is Status.SUSPENDED:
        return Standing(status, record.reason)
    if status is Status.LIVE and record.review_due:
        if now >= record.review_due + timedelta(days=REVIEW_GRACE_DAYS):
            return Standing(Status.SUSPENDED, "review lapsed")
        if now >= record.review_due:
            return Standing(Status.LIVE, warning="review overdue")
    return Standing(status, record.reason if status is not Status.LIVE else "")


_ALLOWED = {
    Transition.GO_LIVE: {Status.DRAFT},
    Transition.SUSPEND: {Status.LIVE},
    Transition.REINSTATE: {Status.SUSPENDED},
    Transition.GIVE_NOTICE: {Status.LIVE, Status.SUSPENDED},
    Transition.REVIEWED: {Status.LIVE, Status.SUSPENDED},
}


def allowed(status: Status) -> list[Transition]:
    """The transitions open from a status (what the console offers)."""
    return [t for t in Transition if status in _ALLOWED[t]]


def apply(
    record: LifecycleRecord,
    transition: Transition,
    *,
    now: datetime,
    actor: str,
    reason: str = "",
    days: int | None = None,
) -> LifecycleRecord:
    """The record after `transition`, or TransitionError naming why not."""
    current = standing(record, now).status
    if current not in _ALLOWED[transition]:
        raise TransitionError(f"cannot {transition.value} an agreement that is {current.value}")
    base = replace(record, changed_at=now, changed_by=actor, reason=reason)
    if transition is Transition.GO_LIVE:
        review = record.review_due or _years_later(now, REVIEW_YEARS)
        return replace(base, status=Status.LIVE, review_due=review, suspended_until=None)
    if transition is Transition.SUSPEND:
        until = now + timedelta(days=SUSPENSION_DAYS if days is None else days)
        return replace(base, status=Status.SUSPENDED, suspended_until=until)
    if transition is Transition.REINSTATE:
        return replace(base, status=Status.LIVE, suspended_until=None)
    if transition is Transition.GIVE_NOTICE:
        effective = now + timedelta(days=NOTICE_DAYS if days is None else days)
        return replace(base, status=Status.TERMINATING, notice_effective=effective)
    # Reviewed: renews the review date (ending a review-lapse suspension, which is derived
    # from it) but leaves a breach suspension in place.
    return replace(base, status=record.status, review_due=_years_later(now, REVIEW_YEARS))


def _years_later(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def initial(
    agreement_id: str, status: str, *, now: datetime, actor: str, review_due: datetime | None
) -> LifecycleRecord:
    return LifecycleRecord(agreement_id, status, "", now, actor, review_due=review_due)
