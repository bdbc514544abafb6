"""Health probes and admin endpoints for ops staff."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.api.admin_auth import AnyRoleDep
from hub.api.deps import HubDep
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core import naming
from hub.core.ports import BrokerUnavailable, StoreUnavailable
from hub.pipeline.health import disk_status, verdict

router = APIRouter()


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(hub: HubDep) -> dict[str, Any]:
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
    }
    tasks = {name: s.state for name, s in hub.supervisor.statuses().items()}
    status, failing = verdict(checks)
    if failing:
        detail = f"Failing: {', '.join(failing)}"
        raise Problem(503, "Not ready", detail, checks=checks, tasks=tasks)
    return {"status": status, "checks": checks, "tasks": tasks}


async def _broker(hub: Hub) -> str:
    try:
        await hub.publisher.ping()
    except BrokerUnavailable:
        return "unavailable"
    return "ok"


@router.get("/admin/subscribers")
async def subscribers(hub: HubDep, _: AnyRoleDep) -> list[dict[str, Any]]:
    return [
        {
            "id": sub.id,
            "name": sub.name,
            "description": sub.description,
            "queue": naming.subscriber_queue(sub.id, hub.config.queue_prefix),
            "dead_letter_queue": naming.dead_letter_queue(sub.id, hub.config.queue_prefix),
            "broker_username": hub.broker_users.username(sub.id) if hub.broker_users else None,
            "pull_agent": sub.pull_agent,
            "delivery": sub.delivery.model_dump(),
            "agreements": [g.id for g in hub.config.agreements if sub.id in g.recipients],
        }
        for sub in hub.config.subscribers
    ]


@router.get("/admin/stats")
async def stats(hub: HubDep, _: AnyRoleDep) -> dict[str, Any]:
    try:
        async with hub.store.transaction() as tx:
            figures = await tx.disclosures.stats()
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "Statistics need the database") from None
    return {
        "received": figures.received,
        "rejected": figures.rejected,
        "routed": figures.routed,
        "delivered": figures.delivered,
        "pending": figures.pending,
        "parked": figures.parked,
        "backlog": {
            "rows": hub.backlog.rows,
            "oldest_age_seconds": round(hub.backlog.oldest_age_seconds, 3),
            "max_rows": hub.backlog.limits.max_rows,
            "max_age_seconds": hub.backlog.limits.max_age_seconds,
            "refusing": hub.backlog.over() is not None,
        },
        "tasks": {
            name: {"state": s.state, "restarts": s.restarts, "last_error": s.last_error}
            for name, s in hub.supervisor.statuses().items()
        },
    }
