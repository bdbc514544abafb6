"""Replay of held copies: when a delivery window arrives, or after ops decide to release
what a suspension held. Every held copy is decided again with the policy in force now, so
a learner suppressed, or an agreement terminated, in the meantime releases nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime

from hub.core.policy import HOLD_SCHEDULE, HOLD_SUSPENDED, Policy, decide
from hub.core.ports import BrokerUnavailable, StoreUnavailable
from hub.core.records import HeldRecord, OutboxRecord
from hub.core.retry import compute_backoff
from hub.pipeline.dispatch import DispatchContext, Release, disclosure, item_of, release
from hub.pipeline.dispatch import sleep_or_wake as _sleep
from hub.sif.parse import parse_trusted

log = logging.getLogger("hub.release")
RELEASE_INTERVAL_SECONDS = 5.0


def replan(
    held: HeldRecord, record: OutboxRecord, policy: Policy, upn: str | None, prefix: str
) -> Release | str | None:
    """The copy to publish now; "wait" if it must stay held; None if no longer entitled."""
    element = parse_trusted(record.object_xml)
    copies = [
        c
        for c in decide(item_of(record, upn, element, policy), policy)
        if c.subscriber == held.subscriber
    ]
    if not copies:
        return None
    copy = copies[0]
    if copy.hold is not None and copy.hold != HOLD_SCHEDULE:  # the window has come
        return "wait"
    return release(record, copy, element, prefix)


async def release_once(ctx: DispatchContext, limit: int = 200) -> int:
    async with ctx.release_lock:  # the loop and ad-hoc calls must not release a copy twice
        return await _release_once(ctx, limit)


async def _release_once(ctx: DispatchContext, limit: int) -> int:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        due = await tx.held.due(now, limit)
        records = {h.outbox_id: await tx.outbox.get(h.outbox_id) for h in due}
        upns = await tx.learners.upns(
            [r.subject_refid for r in records.values() if r and r.subject_refid]
        )
    if not due:
        return 0
    policy = ctx.policy()
    plans = [
        (h, records[h.outbox_id], _plan(h, records[h.outbox_id], policy, upns, ctx)) for h in due
    ]
    ready = [(h, r, p) for h, r, p in plans if isinstance(p, Release) and r is not None]
    results = await ctx.publisher.publish_batch([p.outgoing for _, _, p in ready])
    await _settle(ctx, plans, ready, results, upns, now)
    return len(due)


def _plan(
    held: HeldRecord,
    record: OutboxRecord | None,
    policy: Policy,
    upns: dict[str, str],
    ctx: DispatchContext,
) -> Release | str | None:
    if held.decision == "discard" or record is None:
        return None
    return replan(held, record, policy, upns.get(record.subject_refid or ""), ctx.queue_prefix)


async def _settle(
    ctx: DispatchContext,
    plans: list[tuple[HeldRecord, OutboxRecord | None, Release | str | None]],
    ready: list[tuple[HeldRecord, OutboxRecord, Release]],
    results: list[Exception | None],
    upns: dict[str, str],
    now: datetime,
) -> None:
    released, disclosures = [], []
    for (held, record, rel), error in zip(ready, results, strict=True):
        if error is None:
            released.append(held.id)
            disclosures.append(disclosure(record, rel, upns.get(record.subject_refid or ""), now))
    discarded = [h.id for h, _, p in plans if p is None and h.decision == "discard"]
    dropped = [h.id for h, _, p in plans if p is None and h.decision != "discard"]
    # Due but its agreement is suspended: it now waits for the ops decision like any copy
    # the suspension held (and stops coming back on every pass).
    waiting = [h for h, _, p in plans if p == "wait"]
    rehold = [
        HeldRecord(uuid.uuid4().hex, h.outbox_id, h.subscriber, h.agreement_id, HOLD_SUSPENDED, now)
        for h in waiting
    ]
    # One transaction: a crash can neither lose a held copy nor release it twice.
    async with ctx.store.transaction() as tx:
        await tx.disclosures.add(disclosures)
        await tx.held.add(rehold)
        await tx.held.settle(released, "released", now)
        await tx.held.settle(discarded, "discarded", now)
        await tx.held.settle(dropped, "dropped", now)
        await tx.held.settle([h.id for h in waiting], "held-for-decision", now)
    log.info(
        "release.settled released=%d discarded=%d dropped=%d",
        len(released),
        len(discarded),
        len(dropped),
    )


async def run_releaser(ctx: DispatchContext, stop: asyncio.Event, wake: asyncio.Event) -> None:
    failures = 0
    while not stop.is_set():
        wake.clear()
        try:
            await release_once(ctx)
            failures = 0
        except (StoreUnavailable, BrokerUnavailable) as exc:
            failures += 1
            log.warning("release.unavailable error=%s", type(exc).__name__)
            await _sleep(wake, stop, compute_backoff(failures, ctx.retry))
            continue
        await _sleep(wake, stop, RELEASE_INTERVAL_SECONDS)
