"""Admin API for alerts: what fires now, what may fire soon, and the latest notifications
with how each delivery went (hub.pipeline.alerts.current_alerts; the console reads the
same). Counts, rule names and subscriber or agreement ids only: no personal data."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hub.api.admin_auth import AnyRoleDep
from hub.api.deps import HubDep
from hub.api.openapi import problem_doc
from hub.api.problems import Problem
from hub.core.ports import StoreUnavailable
from hub.core.records import AlertDeliveryRecord, AlertStateRecord
from hub.pipeline.alerts import AlertHistoryItem, current_alerts

router = APIRouter(prefix="/admin")


class AlertState(BaseModel):
    rule: str
    subject: str = Field(description="a subscriber, an agreement, `outbox` or `ingest`")
    status: str = Field(description="pending (not yet held for the rule's `for`) or firing")
    since: datetime = Field(description="when the condition was first seen holding")
    firing_at: datetime | None
    value: float
    summary: str


class AlertDelivery(BaseModel):
    target: str = Field(description="webhook:N (the Nth configured webhook) or email")
    attempts: int
    delivered_at: datetime | None
    next_attempt_at: datetime | None = Field(description="null once delivered or given up")
    last_error: str | None


class AlertEvent(BaseModel):
    id: int
    kind: str = Field(description="firing or resolved")
    rule: str
    subject: str
    at: datetime
    value: float
    summary: str
    deliveries: list[AlertDelivery]


class Alerts(BaseModel):
    firing: list[AlertState]
    pending: list[AlertState]
    history: list[AlertEvent] = Field(description="latest notifications, newest first")


@router.get(
    "/alerts",
    response_model=Alerts,
    responses={503: problem_doc("The database is unreachable")},
)
async def alerts(
    hub: HubDep, _: AnyRoleDep, history: int = Query(default=50, ge=0, le=1000)
) -> Alerts:
    """Alerts firing and pending now, and the latest notifications (one when a condition
    starts firing, one when it resolves) with each target's delivery."""
    try:
        view = await current_alerts(hub.store, history=history)
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "Alerts are kept in the database") from None
    return Alerts(
        firing=[_state(s) for s in view.firing],
        pending=[_state(s) for s in view.pending],
        history=[_event(item) for item in view.history],
    )


def _state(s: AlertStateRecord) -> AlertState:
    return AlertState(
        rule=s.rule,
        subject=s.subject,
        status=s.status,
        since=s.since,
        firing_at=s.firing_at,
        value=s.value,
        summary=s.summary,
    )


def _event(item: AlertHistoryItem) -> AlertEvent:
    e = item.event
    return AlertEvent(
        id=e.id or 0,
        kind=e.kind,
        rule=e.rule,
        subject=e.subject,
        at=e.at,
        value=e.value,
        summary=e.summary,
        deliveries=[_delivery(d) for d in item.deliveries],
    )


def _delivery(d: AlertDeliveryRecord) -> AlertDelivery:
    return AlertDelivery(
        target=d.target,
        attempts=d.attempts,
        delivered_at=d.delivered_at,
        next_attempt_at=d.next_attempt_at,
        last_error=d.last_error,
    )
