"""In-memory hub.core.ports.Held: leased claims, settled at most once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from hub.core.records import HeldRecord
from tests.fakes.state import FakeRepo, OutboxRow

DECISIONS = frozenset({"release", "discard"})


class FakeHeld(FakeRepo):
    async def add(self, records: Sequence[HeldRecord]) -> None:
        self._state.held.update((record.id, record) for record in records)

    async def claim_due(self, now: datetime, limit: int, lease_seconds: float) -> list[HeldRecord]:
        """Unsettled copies whose time has come, and suspended ones a decision released;
        oldest first, then in outbox (arrival) order, then by id; none under a live lease."""
        due = [h for h in self._unsettled() if _due(h, now) and self._lease_free(h.id, now)]
        claimed = sorted(due, key=self._order)[: max(limit, 0)]
        for h in claimed:
            self._state.held_leases[h.id] = now + timedelta(seconds=lease_seconds)
        return claimed

    async def decide(self, agreement_id: str, decision: str, now: datetime) -> int:
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {sorted(DECISIONS)}: {decision!r}")
        discard = decision == "discard"  # settled at once: never handed out
        settled_at, outcome = (now, "discarded") if discard else (None, None)
        decided = [
            h
            for h in self._unsettled()
            if h.agreement_id == agreement_id
            and h.reason == "suspended"
            and (not discard or self._lease_free(h.id, now))
        ]
        for h in decided:
            self._state.held[h.id] = dataclasses.replace(
                h, decision=decision, settled_at=settled_at, outcome=outcome
            )
        return len(decided)

    async def settle(self, held_ids: Sequence[str], outcome: str, at: datetime) -> list[str]:
        settled = []
        for held_id in dict.fromkeys(held_ids):
            record = self._state.held.get(held_id)
            if record is not None and record.settled_at is None:  # guarded, as the SQL store
                self._state.held[held_id] = dataclasses.replace(
                    record, settled_at=at, outcome=outcome
                )
                self._state.held_leases.pop(held_id, None)
                settled.append(held_id)
        return settled

    async def requeue(self, held_id: str, reason: str, release_after: datetime | None) -> None:
        record = self._state.held.get(held_id)
        if record is not None and record.settled_at is None:
            self._state.held[held_id] = dataclasses.replace(
                record, reason=reason, release_after=release_after, decision=None
            )
            self._state.held_leases.pop(held_id, None)

    async def wake_identity(
        self, now: datetime, *, learner: str | None = None, object_refid: str | None = None
    ) -> int:
        def about(row: OutboxRow) -> bool:
            if learner is None and object_refid is None:
                return True
            return (learner is not None and self._learner_of(row) == learner) or (
                object_refid is not None and row.record.object_refid == object_refid
            )

        return self._wake(now, about)

    async def wake_identities(
        self, now: datetime, *, learners: Sequence[str], object_refids: Sequence[str]
    ) -> int:
        who, wanted = set(learners), set(object_refids)
        return self._wake(
            now,
            lambda row: self._learner_of(row) in who or row.record.object_refid in wanted,
        )

    async def wake_resolved(self, now: datetime) -> int:
        return self._wake(now, lambda row: self._learner_of(row) in self._state.upns)

    def _wake(self, now: datetime, about: Callable[[OutboxRow], bool]) -> int:
        woken = 0
        for h in self._unsettled():
            row = self._state.outbox.get(h.outbox_id)
            if h.reason == "identity" and h.release_after is None and row and about(row):
                self._state.held[h.id] = dataclasses.replace(h, release_after=now)
                woken += 1
        return woken

    def _learner_of(self, row: OutboxRow) -> str | None:
        record = row.record
        mapped = self._state.object_learners.get(record.object_refid or "")
        return record.subject_refid or mapped

    async def expired_identity(self, held_before: datetime, limit: int) -> list[HeldRecord]:
        old = [h for h in self._unsettled() if h.reason == "identity" and h.held_at < held_before]
        return sorted(old, key=lambda h: h.held_at)[:limit]

    async def summary(self) -> dict[str, dict[str, int]]:
        summary: dict[str, dict[str, int]] = {}
        for h in self._unsettled():
            counts = summary.setdefault(h.agreement_id, {})
            counts[h.reason] = counts.get(h.reason, 0) + 1
        return summary

    async def unsettled(
        self,
        *,
        reason: str | None = None,
        subscriber: str | None = None,
        agreement_id: str | None = None,
        limit: int = 1000,
    ) -> list[HeldRecord]:
        wanted = [
            h
            for h in self._unsettled()
            if reason in (None, h.reason)
            and subscriber in (None, h.subscriber)
            and agreement_id in (None, h.agreement_id)
        ]
        return sorted(wanted, key=lambda h: (h.held_at, h.id))[:limit]

    def _unsettled(self) -> list[HeldRecord]:
        return [h for h in self._state.held.values() if h.settled_at is None]

    def _lease_free(self, held_id: str, now: datetime) -> bool:
        lease = self._state.held_leases.get(held_id)
        return lease is None or lease < now

    def _order(self, held: HeldRecord) -> tuple[datetime, int, str]:
        row = self._state.outbox.get(held.outbox_id)  # gone to retention: first in its instant
        return (held.held_at, 0 if row is None else row.seq_no, held.id)


def _due(held: HeldRecord, now: datetime) -> bool:
    opens = held.release_after
    return (opens is not None and opens <= now) or held.decision == "release"
