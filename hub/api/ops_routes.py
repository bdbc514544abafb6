"""Health probes and admin endpoints for ops staff."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.api.deps import AdminDep, HubDep
from hub.api.problems import Problem
from hub.core import naming
from hub.core.ports import BrokerUnavailable, StoreUnavailable

router = APIRouter()


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(hub: HubDep) -> dict[str, Any]:
    checks = {"database": "ok", "broker": "ok"}
    try:
        await hub.store.ping()
    except StoreUnavailable:
        checks["database"] = "unavailable"
    try:
        await hub.publisher.ping()
    except BrokerUnavailable:
        checks["broker"] = "unavailable"
    # Reported, never fatal: LA services already holding credentials are unaffected.
    checks["broker_users"] = hub.broker_users_status
    # Webhook deliverers, per subscriber: running, no_secret (copies wait), or stopped.
    checks.update({f"webhook:{s}": state for s, state in sorted(hub.push.status.items())})
    if "unavailable" in checks.values():
        raise Problem(503, "Not ready", "A dependency is unavailable", checks=checks)
    return {"status": "ok", "checks": checks}


@router.get("/admin/subscribers")
async def subscribers(hub: HubDep, _: AdminDep) -> list[dict[str, Any]]:
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
async def stats(hub: HubDep, _: AdminDep) -> dict[str, Any]:
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
    }
