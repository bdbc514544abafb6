"""Replay of held copies: when a delivery window arrives, when a learner's identity
arrives, or after ops decide to release what a suspension held. Every held copy is decided
again with the policy (and what the hub knows of the learner) now, so a learner suppressed,
or an agreement terminated, in the meantime releases nothing; a copy that must still wait
is held again, for its new reason. Copies awaiting an identity that never comes expire.

Claims are leased and settling is guarded, so hubs sharing one database release a copy
once and record its disclosure once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.core.policy import HOLD_SCHEDULE, Policy, decide
from hub.core.ports import BrokerUnavailable, StoreUnavailable
from hub.core.records import AuditRecord, HeldRecord, OutboxRecord
from hub.core.retry import compute_backoff
from hub.pipeline.batches import publish_copies
from hub.pipeline.dispatch import (
    DispatchContext,
    Identity,
    Release,
    disclosure,
    identities,
    item_of,
    release,
)
from hub.pipeline.dispatch import sleep_or_wake as _sleep
from hub.sif.parse import parse_trusted

log = logging.getLogger("hub.release")
RELEASE_INTERVAL_SECONDS = 5.0
RELEASE_LEASE_SECONDS = 60.0
EXPIRE_BATCH = 500


@dataclass(frozen=True, kw_only=True)
class Rehold:
    """The copy must go on waiting: for a window, a suspension decision or an identity."""

    reason: str
    release_after: datetime | None


Replan = Release | Rehold | None


def replan(
    held: HeldRecord, record: OutboxRecord, policy: Policy, who: Identity, prefix: str
) -> Replan:
    """The copy to publish now, the hold it stays under, or None if no longer entitled."""
    element = parse_trusted(record.object_xml)
    copy = next(
        (
            c
            for c in decide(item_of(record, who, element, policy), policy)
            if (c.subscriber, c.agreement_id) == (held.subscriber, held.agreement_id)
        ),
        None,
    )
    if copy is None:
        return None
    # A copy held for its window is due: the window has come, whatever the next one is.
    if copy.hold is None or (copy.hold == HOLD_SCHEDULE and held.reason == HOLD_SCHEDULE):
        return release(record, copy, element, prefix)
    return Rehold(reason=copy.hold, release_after=copy.release_after)


async def release_once(ctx: DispatchContext, limit: int = 200) -> int:
    async with ctx.release_lock:  # the loop and ad-hoc calls in one process take turns
        expired = await _expire_identity_holds(ctx)
        return expired + await _release_once(ctx, limit)


async def _release_once(ctx: DispatchContext, limit: int) -> int:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        await tx.held.wake_resolved(now)
        due = await tx.held.claim_due(now, limit, RELEASE_LEASE_SECONDS)
        records = {h.outbox_id: await tx.outbox.get(h.outbox_id) for h in due}
        who = await identities(tx, [r for r in records.values() if r is not None])
    if not due:
        return 0
    policy = ctx.policy()
    plans = [
        (h, records[h.outbox_id], _plan(h, records[h.outbox_id], policy, who, ctx)) for h in due
    ]
    ready = [(h, r, p) for h, r, p in plans if isinstance(p, Release) and r is not None]
    results = await publish_copies(
        ctx.publisher, [p.outgoing for _, _, p in ready], ctx.copy_batches
    )
    await _settle(ctx, plans, ready, results, who, now)
    return len(due)


def _plan(
    held: HeldRecord,
    record: OutboxRecord | None,
    policy: Policy,
    who: dict[str, Identity],
    ctx: DispatchContext,
) -> Replan:
    if held.decision == "discard" or record is None:
        return None
    return replan(held, record, policy, who[record.id], ctx.queue_prefix)


async def _settle(
    ctx: DispatchContext,
    plans: list[tuple[HeldRecord, OutboxRecord | None, Replan]],
    ready: list[tuple[HeldRecord, OutboxRecord, Release]],
    results: list[Exception | None],
    who: dict[str, Identity],
    now: datetime,
) -> None:
    published = [(h, r, p) for (h, r, p), error in zip(ready, results, strict=True) if not error]
    gone = [h.id for h, _, p in plans if p is None]
    async with ctx.store.transaction() as tx:
        # Only rows this call settles record a disclosure: never twice, whoever else tried.
        released = set(await tx.held.settle([h.id for h, _, _ in published], "released", now))
        await tx.disclosures.add(
            [disclosure(r, p, who[r.id], now) for h, r, p in published if h.id in released]
        )
        dropped = set(await tx.held.settle(gone, "dropped", now))
        for h, _, p in plans:
            if isinstance(p, Rehold):
                await tx.held.requeue(h.id, p.reason, p.release_after)
    for h, r, _ in published:
        if h.id in released:
            ctx.metrics.released(r.object_name, h.subscriber, "released")
    for h, record, _ in plans:
        if h.id in dropped:
            ctx.metrics.released(record.object_name if record else "", h.subscriber, "dropped")
    log.info(
        "release.settled released=%d dropped=%d reheld=%d failed=%d",
        len(released),
        len(gone),
        sum(isinstance(p, Rehold) for _, _, p in plans),
        len(ready) - len(published),
    )


async def _expire_identity_holds(ctx: DispatchContext) -> int:
    """Default deny: a copy whose learner's identity never arrived is dropped, audited."""
    now = ctx.clock()
    cutoff = now - timedelta(days=ctx.identity_hold_days)
    async with ctx.store.transaction() as tx:
        old = await tx.held.expired_identity(cutoff, EXPIRE_BATCH)
        expired = set(await tx.held.settle([h.id for h in old], "expired", now))
        per_agreement: dict[str, int] = {}
        for h in old:
            if h.id in expired:
                per_agreement[h.agreement_id] = per_agreement.get(h.agreement_id, 0) + 1
        for agreement_id, count in sorted(per_agreement.items()):
            detail = {"copies": count, "reason": "identity", "days": ctx.identity_hold_days}
            await tx.audit.add(AuditRecord(now, "hub", "held.expired", agreement_id, detail))
    if expired:
        log.warning("release.identity_expired copies=%d", len(expired))
    return len(expired)


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
