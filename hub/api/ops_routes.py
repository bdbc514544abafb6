"""Health probes and admin endpoints for ops staff."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hub.api.admin_auth import AnyRoleDep
from hub.api.deps import HubDep
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core import naming
from hub.core.ports import BrokerUnavailable, StoreUnavailable
from hub.pipeline.health import disk_status, verdict

router = APIRouter()


class Live(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="degraded: serving, but behind (backlog) or a non-fatal check failing"
    )
    checks: dict[str, str] = Field(
        description="database, disk, broker, broker_users, backlog, tasks, webhook:<id>"
    )
    tasks: dict[str, str] = Field(description="Each supervised task's state")


class SubscriberOut(BaseModel):
    id: str
    name: str
    description: str
    queue: str
    dead_letter_queue: str
    broker_username: str | None = Field(description="The service's own RabbitMQ user")
    pull_agent: str | None
    delivery: dict[str, Any] = Field(description="How copies reach it: {type: amqp|webhook, ...}")
    agreements: list[str]


class Backlog(BaseModel):
    rows: int
    oldest_age_seconds: float
    max_rows: int
    max_age_seconds: float
    refusing: bool = Field(description="Ingest answers 'retry later' while over a bound")


class TaskStatus(BaseModel):
    state: str
    restarts: int
    last_error: str | None


class StatsOut(BaseModel):
    received: dict[str, int] = Field(description="Messages accepted, per object")
    rejected: dict[str, int] = Field(description="Messages refused, per reason")
    routed: dict[str, int] = Field(description="Outbox rows routed, per object")
    delivered: dict[str, int] = Field(description="Copies released, per subscriber")
    pending: int = Field(description="Outbox rows not yet routed")
    parked: int = Field(description="Outbox rows set aside until ops re-drive them")
    backlog: Backlog
    tasks: dict[str, TaskStatus]


@router.get("/health/live", response_model=Live)
async def live() -> Live:
    """The process is up and its event loop answers."""
    return Live()


@router.get("/health/ready", response_model=Readiness)
async def ready(hub: HubDep) -> Readiness:
    """200 {"status": "ok" | "degraded", "checks", "tasks"}; 503 problem+json with the same
    checks and tasks when a fatal check fails (see hub.pipeline.health and the README)."""
    checks = {
        "database": await hub.store.health(),
        "disk": disk_status(hub.disk_path, hub.settings.min_free_disk_mb),
        "broker": await _broker(hub),
        # Reported, never fatal: LA services already holding credentials are unaffected.
        "broker_users": hub.broker_users_status,
        "backlog": "over" if hub.backlog.over() else "ok",
        "tasks": "failing" if hub.supervisor.failing() else "ok",
        # Reported, never fatal: each webhook deliverer, running, no_secret (copies wait)
        # or stopped (a crash shows in `tasks` too).
        **{f"webhook:{s}": state for s, state in sorted(hub.push.status.items())},
        # Likewise each file subscriber's stager ("file:<id>") and cutter ("export:<id>").
        **dict(sorted(hub.exports.status.items())),
        **{f"feed:{s}": state for s, state in sorted(hub.feeds.status.items())},
    }
    tasks = {name: s.state for name, s in hub.supervisor.statuses().items()}
    status, failing = verdict(checks)
    if failing:
        detail = f"Failing: {', '.join(failing)}"
        raise Problem(503, "Not ready", detail, checks=checks, tasks=tasks)
    return Readiness(status=status, checks=checks, tasks=tasks)


async def _broker(hub: Hub) -> str:
    try:
        await hub.publisher.ping()
    except BrokerUnavailable:
        return "unavailable"
    return "ok"


@router.get("/admin/subscribers", response_model=list[SubscriberOut])
async def subscribers(hub: HubDep, _: AnyRoleDep) -> list[SubscriberOut]:
    """Each LA service: its queues, broker user, delivery and agreements."""
    return [
        SubscriberOut(
            id=sub.id,
            name=sub.name,
            description=sub.description,
            queue=naming.subscriber_queue(sub.id, hub.config.queue_prefix),
            dead_letter_queue=naming.dead_letter_queue(sub.id, hub.config.queue_prefix),
            broker_username=hub.broker_users.username(sub.id) if hub.broker_users else None,
            pull_agent=sub.pull_agent,
            delivery=sub.delivery.model_dump(),
            agreements=[g.id for g in hub.config.agreements if sub.id in g.recipients],
        )
        for sub in hub.config.subscribers
    ]


@router.get("/admin/stats", response_model=StatsOut)
async def stats(hub: HubDep, _: AnyRoleDep) -> StatsOut:
    """Counts since the store began, the outbox backlog against its bounds, and tasks."""
    try:
        async with hub.store.transaction() as tx:
            figures = await tx.disclosures.stats()
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "Statistics need the database") from None
    return StatsOut(
        received=figures.received,
        rejected=figures.rejected,
        routed=figures.routed,
        delivered=figures.delivered,
        pending=figures.pending,
        parked=figures.parked,
        backlog=Backlog(
            rows=hub.backlog.rows,
            oldest_age_seconds=round(hub.backlog.oldest_age_seconds, 3),
            max_rows=hub.backlog.limits.max_rows,
            max_age_seconds=hub.backlog.limits.max_age_seconds,
            refusing=hub.backlog.over() is not None,
        ),
        tasks={
            name: TaskStatus(state=s.state, restarts=s.restarts, last_error=s.last_error)
            for name, s in hub.supervisor.statuses().items()
        },
    )
