"""Re-driving a subscriber's dead letters back into its queue, audited. Shared by the admin
API (POST /admin/subscribers/{id}/dead-letters/redrive) and the console; the move itself is
the broker's (hub.amqp.dead_letters, wired in hub.composition)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from hub.core.ports import Store
from hub.core.records import Actor, audited

# (subscriber id, at most how many) -> how many moved
MoveDeadLetters = Callable[[str, int], Awaitable[int]]
MAX_REDRIVE = 10_000


async def redrive_dead_letters(
    store: Store,
    move: MoveDeadLetters,
    subscriber: str,
    *,
    limit: int,
    actor: Actor,
    now: datetime,
) -> int:
    moved = await move(subscriber, min(limit, MAX_REDRIVE))
    async with store.transaction() as tx:
        detail = {"subscriber": subscriber, "moved": moved}
        await tx.audit.add(audited(actor, now, "dead_letters.redrive", subscriber, detail))
    return moved
