"""Admin API for copies the hub is holding back: for a delivery window, a suspension, or a
learner's identity. Lists opaque ids only (no personal data)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from hub.api.admin_auth import OperatorDep
from hub.api.deps import HubDep

router = APIRouter(prefix="/admin/held")


class HeldCopy(BaseModel):
    id: str
    outbox_id: str
    subscriber: str
    agreement_id: str
    reason: str
    held_at: datetime
    release_after: datetime | None
    decision: str | None


class HeldCopies(BaseModel):
    count: int
    copies: list[HeldCopy]


@router.get("", response_model=HeldCopies)
async def held_copies(
    hub: HubDep,
    _: OperatorDep,
    reason: Literal["schedule", "suspended", "identity"] | None = None,
    subscriber: str | None = None,
    agreement_id: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> HeldCopies:
    """Unsettled held copies, oldest first. `reason=identity`: copies awaiting a learner's
    identity (they expire after HUB_IDENTITY_HOLD_DAYS with an audit row)."""
    async with hub.store.transaction() as tx:
        records = await tx.held.unsettled(
            reason=reason, subscriber=subscriber, agreement_id=agreement_id, limit=limit
        )
    copies = [
        HeldCopy(
            id=h.id,
            outbox_id=h.outbox_id,
            subscriber=h.subscriber,
            agreement_id=h.agreement_id,
            reason=h.reason,
            held_at=h.held_at,
            release_after=h.release_after,
            decision=h.decision,
        )
        for h in records
    ]
    return HeldCopies(count=len(copies), copies=copies)
