"""In-memory hub.core.ports.Held."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from hub.core.records import HeldRecord
from tests.fakes.state import FakeRepo, utcnow

DECISIONS = frozenset({"release", "discard"})


class FakeHeld(FakeRepo):
    async def add(self, records: Sequence[HeldRecord]) -> None:
        self._state.held.update((record.id, record) for record in records)

    async def due(self, now: datetime, limit: int) -> list[HeldRecord]:
        """Unsettled copies whose window has opened, and suspended ones a decision released;
        oldest first, then in outbox (arrival) order, then by id."""
        due = [h for h in self._state.held.values() if h.settled_at is None and _due(h, now)]
        return sorted(due, key=self._order)[: max(limit, 0)]

    async def decide(self, agreement_id: str, decision: str) -> int:
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {sorted(DECISIONS)}: {decision!r}")
        discard = decision == "discard"  # settled at once: never handed out
        settled_at, outcome = (utcnow(), "discarded") if discard else (None, None)
        decided = [
            h
            for h in self._state.held.values()
            if h.settled_at is None and h.agreement_id == agreement_id and h.reason == "suspended"
        ]
        for h in decided:
            self._state.held[h.id] = dataclasses.replace(
                h, decision=decision, settled_at=settled_at, outcome=outcome
            )
        return len(decided)

    async def settle(self, held_ids: Sequence[str], outcome: str, at: datetime) -> None:
        for held_id in held_ids:  # not guarded on settled_at, as the SQL store
            if held_id in self._state.held:
                record = self._state.held[held_id]
                self._state.held[held_id] = dataclasses.replace(
                    record, settled_at=at, outcome=outcome
                )

    async def summary(self) -> dict[str, dict[str, int]]:
        summary: dict[str, dict[str, int]] = {}
        for h in self._state.held.values():
            if h.settled_at is None:
                counts = summary.setdefault(h.agreement_id, {})
                counts[h.reason] = counts.get(h.reason, 0) + 1
        return summary

    def _order(self, held: HeldRecord) -> tuple[datetime, int, str]:
        row = self._state.outbox.get(held.outbox_id)  # gone to retention: first in its instant
        return (held.held_at, 0 if row is None else row.seq_no, held.id)


def _due(held: HeldRecord, now: datetime) -> bool:
    opens = held.release_after if held.reason == "schedule" else None
    return (opens is not None and opens <= now) or held.decision == "release"
