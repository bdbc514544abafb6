"""Replay: route stored messages again through the agreements in force now, never blindly.

`plan_replay` shows what each recipient would receive (hub.pipeline.preview, the one
decision and filter dispatch uses); `replay` then re-queues the messages' objects through
the outbox as new rows (new ids, so their copies get new AMQP message_ids that recipients
do not discard as repeats), in one transaction with its audit row. Dispatch decides and
records them like any other row, so nothing leaves beyond an agreement and every copy has
its disclosure row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from hub.core.policy import Policy
from hub.core.ports import Store
from hub.core.records import Actor, OutboxRecord, audited
from hub.pipeline.preview import PreviewCopy, preview_in_force

MAX_REPLAY = 100  # messages per replay: a preview is read before anyone confirms


@dataclass(frozen=True, kw_only=True)
class ReplayPlan:
    """One stored object of a selected message and the copies it would give now."""

    message_id: str
    outbox_id: str
    object_name: str
    action: str
    copies: tuple[PreviewCopy, ...]


async def plan_replay(
    store: Store, policy: Policy, message_ids: Sequence[str], *, actor: Actor, now: datetime
) -> list[ReplayPlan]:
    """The preview shows the copies' content (personal data): seeing it is audited."""
    plans = []
    for record in await _objects(store, message_ids):
        copies = await preview_in_force(store, policy, record)
        plans.append(
            ReplayPlan(
                message_id=record.message_id,
                outbox_id=record.id,
                object_name=record.object_name,
                action=record.action.value,
                copies=tuple(copies),
            )
        )
    async with store.transaction() as tx:
        detail = {"messages": sorted({p.message_id for p in plans}), "objects": len(plans)}
        await tx.audit.add(audited(actor, now, "console.replay_preview", "outbox", detail))
    return plans


async def replay(
    store: Store, message_ids: Sequence[str], *, actor: Actor, now: datetime
) -> list[str]:
    """Re-queue the messages' objects; returns the new outbox ids. The caller wakes the
    dispatcher."""
    records = await _objects(store, message_ids)
    again = [replace(r, id=uuid.uuid4().hex, attempts=0) for r in records]
    async with store.transaction() as tx:
        await tx.outbox.add(again)
        detail = {
            "messages": sorted({r.message_id for r in records}),
            "rows": [r.id for r in again],
        }
        await tx.audit.add(audited(actor, now, "message.replay", "outbox", detail))
    return [r.id for r in again]


async def _objects(store: Store, message_ids: Sequence[str]) -> list[OutboxRecord]:
    """The routed objects of these messages, in order. Objects still waiting or parked are
    left out (dispatch or a re-drive sends those), as are objects purged by retention."""
    found: list[OutboxRecord] = []
    async with store.transaction() as tx:
        for message_id in list(dict.fromkeys(message_ids))[:MAX_REPLAY]:
            journey = await tx.journeys.journey(message_id)
            routed = [o for o in journey.objects if o.done_at is not None] if journey else []
            for obj in routed:
                record = await tx.outbox.get(obj.id)
                if record is not None and record.object_xml:
                    found.append(record)
    return found
