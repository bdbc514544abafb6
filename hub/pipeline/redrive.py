"""Re-driving parked outbox rows: back in the queue, due now, attempts reset, audited.
Shared by the admin API (POST /admin/outbox/redrive) and the console."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hub.core.ports import Store
from hub.core.records import Actor, audited


async def redrive(
    store: Store, outbox_ids: Sequence[str] | None, *, actor: Actor, now: datetime
) -> list[str]:
    """Re-drive these parked rows (or all); returns the ids put back. The caller wakes the
    dispatcher."""
    async with store.transaction() as tx:
        done = await tx.outbox.redrive(outbox_ids, now)
        detail = {"rows": len(done), "ids": done[:100]}
        await tx.audit.add(audited(actor, now, "outbox.redrive", "outbox", detail))
    return done
