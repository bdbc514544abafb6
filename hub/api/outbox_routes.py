"""Admin API for outbox rows that kept failing: parked with their reason, re-driven by ops.
Lists opaque ids and object names only (no payload, no personal data)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hub.api.admin_auth import OperatorDep
from hub.api.deps import HubDep
from hub.composition import work_waiting
from hub.pipeline import redrive as service

router = APIRouter(prefix="/admin/outbox")


class ParkedRow(BaseModel):
    id: str
    message_id: str
    object_name: str
    action: str
    school: str | None
    attempts: int
    last_error: str | None
    parked_at: datetime


class Redrive(BaseModel):
    ids: list[str] | None = Field(
        default=None, max_length=10_000, description="Parked rows to re-drive; omit for all"
    )


class Redriven(BaseModel):
    redriven: int


@router.get("/parked", response_model=list[ParkedRow])
async def parked(
    hub: HubDep, _: OperatorDep, limit: int = Query(default=100, ge=1, le=1000)
) -> list[ParkedRow]:
    """Rows set aside after HUB_OUTBOX_MAX_ATTEMPTS failed attempts, oldest first."""
    async with hub.store.transaction() as tx:
        rows = await tx.outbox.parked(limit)
    return [
        ParkedRow(
            id=r.id,
            message_id=r.message_id,
            object_name=r.object_name,
            action=r.action.value,
            school=r.school,
            attempts=r.attempts,
            last_error=r.last_error,
            parked_at=r.parked_at,
        )
        for r in rows
    ]


@router.post("/redrive", response_model=Redriven)
async def redrive(body: Redrive, hub: HubDep, actor: OperatorDep) -> Redriven:
    """Put parked rows back in the queue (due now, attempts reset); audited."""
    done = await service.redrive(hub.store, body.ids, actor=actor, now=hub.clock())
    work_waiting(hub)  # this process's dispatcher, and the workers'
    return Redriven(redriven=len(done))
