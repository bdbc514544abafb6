"""The dashboard: what arrived and left per object and per subscriber (last hour, today,
last 24 hours), each subscriber's queue depth, consumers and dead letters (RabbitMQ's
management API), the outbox backlog and parked rows, agreements needing attention, and the
alerts (hub.pipeline.alerts, as GET /admin/alerts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hub.amqp.provision import management_target
from hub.amqp.queue_stats import QueueFigures, queue_figures
from hub.api.deps import HubDep
from hub.composition import Hub
from hub.console.pages import AnyUser, render
from hub.core import naming
from hub.core.agreements.lifecycle import Status, standing
from hub.core.policy import AgreementState
from hub.core.ports import BrokerUnavailable
from hub.core.records import Activity
from hub.pipeline.alerts import AlertsView, current_alerts

router = APIRouter()
LONDON = ZoneInfo("Europe/London")
ATTENTION_DAYS = 30


@dataclass(frozen=True, kw_only=True)
class SubscriberQueue:
    id: str
    name: str
    queue: str
    depth: int | None
    consumers: int | None
    dead_letters: int | None


@dataclass(frozen=True, kw_only=True)
class Attention:
    agreement_id: str
    title: str
    why: str


async def open_alerts(hub: Hub) -> AlertsView:
    """The Alerts panel: what fires now, what may fire soon, and the latest notifications,
    read by the same service function as GET /admin/alerts."""
    return await current_alerts(hub.store, history=10)


def windows(now: datetime) -> list[tuple[str, datetime]]:
    midnight = now.astimezone(LONDON).replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        ("Last hour", now - timedelta(hours=1)),
        ("Today", midnight),
        ("Last 24 hours", now - timedelta(hours=24)),
    ]


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, hub: HubDep, user: AnyUser) -> Response:
    now = hub.clock()
    activity: list[tuple[str, Activity]] = []
    async with hub.store.transaction() as tx:
        for label, since in windows(now):
            activity.append((label, await tx.journeys.activity(since)))
        backlog = await tx.outbox.backlog()
    queues, broker_error = await subscriber_queues(hub)
    return render(
        request,
        "dashboard.html",
        user,
        now=now,
        activity=activity,
        objects=sorted({k for _, a in activity for k in a.by_object}),
        subscribers=sorted({k for _, a in activity for k in a.by_subscriber}),
        queues=queues,
        broker_error=broker_error,
        backlog=backlog,
        oldest_age=None if backlog.oldest is None else now - backlog.oldest,
        attention=attention(hub.policies.current().agreements, now),
        alerts=await open_alerts(hub),
    )


async def subscriber_queues(hub: Hub) -> tuple[list[SubscriberQueue], str | None]:
    prefix = hub.config.queue_prefix
    subs = hub.config.subscribers
    names = [n for s in subs for n in (_queue(s.id, prefix), _dlq(s.id, prefix))]
    target = management_target(hub.settings.amqp_url, hub.settings.amqp_management_url)
    figures: dict[str, QueueFigures | None] = {}
    error = None
    try:
        figures = await queue_figures(target, names)
    except BrokerUnavailable:
        error = "RabbitMQ's management API did not answer"
    rows = []
    for s in subs:
        queue, dlq = figures.get(_queue(s.id, prefix)), figures.get(_dlq(s.id, prefix))
        rows.append(
            SubscriberQueue(
                id=s.id,
                name=s.name,
                queue=_queue(s.id, prefix),
                depth=None if queue is None else queue.messages,
                consumers=None if queue is None else queue.consumers,
                dead_letters=None if dlq is None else dlq.messages,
            )
        )
    return rows, error


def _queue(subscriber: str, prefix: str) -> str:
    return naming.subscriber_queue(subscriber, prefix)


def _dlq(subscriber: str, prefix: str) -> str:
    return naming.dead_letter_queue(subscriber, prefix)


def attention(states: Sequence[AgreementState], now: datetime) -> list[Attention]:
    """Review due within 30 days, suspended, terminating, schools yet to approve a widening."""
    return [
        Attention(agreement_id=s.agreement_id, title=s.versions[-1].spec.title, why=why)
        for s in states
        for why in _reasons(s, now)
    ]


def _reasons(state: AgreementState, now: datetime) -> list[str]:
    reasons = []
    status = standing(state.lifecycle, now).status
    if status in (Status.SUSPENDED, Status.TERMINATING):
        reasons.append(f"{status.value}: {state.lifecycle.reason or 'no reason given'}")
    due = state.lifecycle.review_due
    if due is not None and due - now <= timedelta(days=ATTENTION_DAYS):
        reasons.append(f"review due {due:%Y-%m-%d}")
    waiting = awaiting_approval(state)
    if waiting:
        reasons.append(f"schools yet to approve the widening: {', '.join(waiting)}")
    return reasons


def awaiting_approval(state: AgreementState) -> list[str]:
    """Schools whose latest approval predates the agreement's latest widening version."""
    widening = [v.spec.version for v, w in zip(state.versions, state.widens, strict=False) if w]
    if not widening:
        return []
    latest = max(widening)
    return sorted(s for s, versions in state.approvals.items() if max(versions) < latest)
