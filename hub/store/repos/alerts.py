"""Alert states, the notifications made and their deliveries (implements
hub.core.ports.Alerts). On PostgreSQL an advisory lock lets one hub evaluate at a time;
deliveries are claimed with a lease, row by row, so two hubs never send one together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text, update

from hub.core.records import AlertDeliveryRecord, AlertEventRecord, AlertStateRecord
from hub.store.models import LAST_ERROR_MAX, alert_deliveries, alert_events, alert_states
from hub.store.repos.base import AnyRow, SqlRepo, from_row, values_of

# pg_try_advisory_xact_lock key for alert evaluation; any constant shared by all hubs.
ALERT_LOCK_KEY = 7_274_873_211


class SqlAlerts(SqlRepo):
    async def exclusive(self) -> bool:
        if not self._postgres:
            return True  # SQLite serialises every writer already
        query = text("SELECT pg_try_advisory_xact_lock(:key)")
        return bool((await self._execute(query, {"key": ALERT_LOCK_KEY})).scalar_one())

    async def states(self) -> list[AlertStateRecord]:
        rows = (await self._execute(select(alert_states))).all()
        return [from_row(AlertStateRecord, row) for row in rows]

    async def save_state(self, rule: str, subject: str, state: AlertStateRecord | None) -> None:
        if state is None:
            table = alert_states
            await self._execute(
                delete(table).where(table.c.rule == rule, table.c.subject == subject)
            )
            return
        await self._upsert(alert_states, values_of(state), ["rule", "subject"])

    async def add_event(
        self, event: AlertEventRecord, targets: Sequence[str], due: datetime
    ) -> int:
        values = values_of(event)
        del values["id"]
        inserted = alert_events.insert().values(values).returning(alert_events.c.id)
        event_id = int((await self._execute(inserted)).scalar_one())
        if targets:
            rows = [
                {"event_id": event_id, "target": t, "attempts": 0, "next_attempt_at": due}
                for t in targets
            ]
            await self._execute(alert_deliveries.insert(), rows)
        return event_id

    async def events(self, limit: int) -> list[AlertEventRecord]:
        query = select(alert_events).order_by(alert_events.c.id.desc()).limit(limit)
        return [from_row(AlertEventRecord, row) for row in (await self._execute(query)).all()]

    async def claim_deliveries(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[AlertDeliveryRecord]:
        d = alert_deliveries
        due = (
            select(d.c.id, d.c.next_attempt_at)
            .where(d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
        )
        lease = now + timedelta(seconds=lease_seconds)
        claimed: list[int] = []
        for row in (await self._execute(due)).all():
            # Only if nobody claimed it since we looked (another hub, between our two reads).
            taken = update(d).where(d.c.id == row.id, d.c.next_attempt_at == row.next_attempt_at)
            if (await self._execute(taken.values(next_attempt_at=lease))).rowcount == 1:
                claimed.append(int(row.id))
        return await self._deliveries(d.c.id, claimed)

    async def delivered(self, delivery_id: int, at: datetime) -> None:
        d = alert_deliveries
        query = update(d).where(d.c.id == delivery_id)
        await self._execute(
            query.values(attempts=d.c.attempts + 1, delivered_at=at, next_attempt_at=None)
        )

    async def failed(self, delivery_id: int, error: str, next_attempt_at: datetime | None) -> None:
        d = alert_deliveries
        query = update(d).where(d.c.id == delivery_id)
        await self._execute(
            query.values(
                attempts=d.c.attempts + 1,
                last_error=error[:LAST_ERROR_MAX],
                next_attempt_at=next_attempt_at,
            )
        )

    async def deliveries(self, event_ids: Sequence[int]) -> list[AlertDeliveryRecord]:
        return await self._deliveries(alert_deliveries.c.event_id, list(event_ids))

    async def _deliveries(self, column: object, ids: list[int]) -> list[AlertDeliveryRecord]:
        if not ids:
            return []
        d, e = alert_deliveries, alert_events
        query = (
            select(d, e.c.rule, e.c.subject, e.c.kind, e.c.at, e.c.value, e.c.summary)
            .join(e, e.c.id == d.c.event_id)
            .where(column.in_(ids))  # type: ignore[attr-defined]
            .order_by(d.c.id)
        )
        return [_delivery(row) for row in (await self._execute(query)).all()]


def _delivery(row: AnyRow) -> AlertDeliveryRecord:
    event = AlertEventRecord(
        id=int(row.event_id),
        rule=row.rule,
        subject=row.subject,
        kind=row.kind,
        at=row.at,
        value=row.value,
        summary=row.summary,
    )
    return AlertDeliveryRecord(
        id=int(row.id),
        event=event,
        target=row.target,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )
