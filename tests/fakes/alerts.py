"""In-memory hub.core.ports.Alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from hub.core.records import AlertDeliveryRecord, AlertEventRecord, AlertStateRecord
from tests.fakes.state import FakeRepo


class FakeAlerts(FakeRepo):
    async def exclusive(self) -> bool:
        return True

    async def states(self) -> list[AlertStateRecord]:
        return list(self._state.alert_states.values())

    async def save_state(self, rule: str, subject: str, state: AlertStateRecord | None) -> None:
        if state is None:
            self._state.alert_states.pop((rule, subject), None)
        else:
            self._state.alert_states[(rule, subject)] = state

    async def add_event(
        self, event: AlertEventRecord, targets: Sequence[str], due: datetime
    ) -> int:
        stored = replace(event, id=len(self._state.alert_events) + 1)
        self._state.alert_events.append(stored)
        for target in targets:
            delivery_id = len(self._state.alert_deliveries) + 1
            self._state.alert_deliveries[delivery_id] = AlertDeliveryRecord(
                id=delivery_id, event=stored, target=target, attempts=0, next_attempt_at=due
            )
        return int(stored.id or 0)

    async def events(self, limit: int) -> list[AlertEventRecord]:
        return list(reversed(self._state.alert_events))[:limit]

    async def claim_deliveries(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[AlertDeliveryRecord]:
        rows = self._state.alert_deliveries
        due = sorted(
            (
                d
                for d in rows.values()
                if d.next_attempt_at is not None and d.next_attempt_at <= now
            ),
            key=lambda d: (d.next_attempt_at, d.id),
        )[:limit]
        lease = now + timedelta(seconds=lease_seconds)
        for d in due:
            rows[d.id] = replace(d, next_attempt_at=lease)
        return [rows[d.id] for d in due]

    async def delivered(self, delivery_id: int, at: datetime) -> None:
        d = self._state.alert_deliveries[delivery_id]
        self._state.alert_deliveries[delivery_id] = replace(
            d, attempts=d.attempts + 1, delivered_at=at, next_attempt_at=None
        )

    async def failed(self, delivery_id: int, error: str, next_attempt_at: datetime | None) -> None:
        d = self._state.alert_deliveries[delivery_id]
        self._state.alert_deliveries[delivery_id] = replace(
            d, attempts=d.attempts + 1, last_error=error, next_attempt_at=next_attempt_at
        )

    async def deliveries(self, event_ids: Sequence[int]) -> list[AlertDeliveryRecord]:
        wanted = set(event_ids)
        return [d for d in self._state.alert_deliveries.values() if d.event.id in wanted]
