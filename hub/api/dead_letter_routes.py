"""Admin API for a subscriber's dead letters: put them back in its queue (operator)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hub.api.admin_auth import OperatorDep
from hub.api.deps import HubDep
from hub.api.problems import Problem
from hub.composition import dead_letter_mover
from hub.core.ports import BrokerUnavailable
from hub.pipeline.dead_letters import MAX_REDRIVE, redrive_dead_letters

router = APIRouter(prefix="/admin/subscribers")


class DeadLetterRedrive(BaseModel):
    limit: int = Field(default=1000, ge=1, le=MAX_REDRIVE, description="At most this many")


class DeadLettersRedriven(BaseModel):
    subscriber: str
    moved: int


@router.post("/{subscriber_id}/dead-letters/redrive", response_model=DeadLettersRedriven)
async def redrive(
    subscriber_id: str, body: DeadLetterRedrive, hub: HubDep, actor: OperatorDep
) -> DeadLettersRedriven:
    """Move the subscriber's dead letters back into its queue (same copies, same
    message_id, already in the disclosure log); audited."""
    if hub.config.subscriber(subscriber_id) is None:
        raise Problem(404, "Unknown subscriber", f"No subscriber {subscriber_id!r}")
    try:
        moved = await redrive_dead_letters(
            hub.store,
            dead_letter_mover(hub),
            subscriber_id,
            limit=body.limit,
            actor=actor,
            now=hub.clock(),
        )
    except BrokerUnavailable:
        raise Problem(503, "Broker unavailable", "RabbitMQ did not answer") from None
    return DeadLettersRedriven(subscriber=subscriber_id, moved=moved)
