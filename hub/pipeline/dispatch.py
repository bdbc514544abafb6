"""Where an agreement is applied and a message leaves: outbox -> filtered copies -> queues.

Claims outbox rows, asks the policy who may receive each object, cuts each copy down with
the one filter, publishes all copies with pipelined confirms, and only then records the
disclosures and marks the rows done, in one transaction. A crash between confirm and
commit re-sends the same copies (same message ids): delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hub.core import naming
from hub.core.envelope import HUB_VERSION
from hub.core.policy import Copy, Item, Policy, decide
from hub.core.ports import BrokerUnavailable, Outgoing, Publisher, Store, StoreUnavailable
from hub.core.records import DisclosureRecord, OutboxRecord
from hub.core.retry import RetryPolicy, compute_backoff
from hub.sif.build import copy_msg_id, event_copy
from hub.sif.filter import apply_filter
from hub.sif.parse import parse_trusted

log = logging.getLogger("hub.dispatch")


@dataclass
class DispatchContext:
    store: Store
    publisher: Publisher
    policy: Callable[[], Policy]
    queue_prefix: str = naming.PREFIX
    batch: int = 200
    lease_seconds: float = 60.0
    idle_seconds: float = 0.05
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _Planned:
    item: OutboxRecord
    copies: list[tuple[Copy, Outgoing]]


def plan(item: OutboxRecord, policy: Policy, prefix: str = naming.PREFIX) -> _Planned:
    """Decide and build every copy of one object (pure apart from XML work)."""
    copies = decide(Item(item.object_name, item.action, item.school, item.subject_refid), policy)
    if not copies:
        return _Planned(item, [])
    element = parse_trusted(item.object_xml)
    return _Planned(item, [(copy, _outgoing(item, copy, element, prefix)) for copy in copies])


def _outgoing(item: OutboxRecord, copy: Copy, element: object, prefix: str) -> Outgoing:
    msg_id = copy_msg_id(item.id, copy.subscriber)
    filtered = apply_filter(element, copy.filter)  # type: ignore[arg-type]
    body = event_copy(
        HUB_VERSION, item.source_agent, msg_id, item.object_name, item.action.value, filtered
    )
    headers = {
        naming.H_MESSAGE_ID: item.message_id,
        naming.H_ZONE: item.zone,
        naming.H_OBJECT: item.object_name,
        naming.H_ACTION: item.action.value,
        naming.H_SOURCE: item.source_agent,
        naming.H_SCHOOL: item.school or "",
        naming.H_AGREEMENT: copy.agreement_id,
        naming.H_AGREEMENT_VERSION: str(copy.agreement_version),
        naming.H_SUBSCRIBER: copy.subscriber,
    }
    return Outgoing(naming.subscriber_queue(copy.subscriber, prefix), body, msg_id, headers)


async def dispatch_once(ctx: DispatchContext) -> int:
    """Route one batch; returns how many outbox rows were claimed."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        items = await tx.claim_outbox(ctx.batch, now, ctx.lease_seconds)
    if not items:
        return 0
    policy = ctx.policy()
    planned = [plan(item, policy, ctx.queue_prefix) for item in items]
    outgoing = [out for p in planned for _, out in p.copies]
    results = await ctx.publisher.publish_batch(outgoing) if outgoing else []
    await _settle(ctx, planned, results)
    return len(items)


async def _settle(
    ctx: DispatchContext, planned: list[_Planned], results: list[Exception | None]
) -> None:
    done, disclosures, failed = [], [], []
    cursor = 0
    published_at = ctx.clock()
    for p in planned:
        outcome = results[cursor : cursor + len(p.copies)]
        cursor += len(p.copies)
        errors = [r for r in outcome if r is not None]
        if errors:
            failed.append((p.item, errors[0]))
            continue
        done.append(p.item.id)
        disclosures += [_disclosure(p.item, copy, out, published_at) for copy, out in p.copies]
    async with ctx.store.transaction() as tx:
        await tx.complete_outbox(done, disclosures)
        for item, error in failed:
            delay = compute_backoff(item.attempts, ctx.retry)
            await tx.retry_outbox(
                item.id, published_at + timedelta(seconds=delay), type(error).__name__
            )
    if failed:
        log.warning(
            "dispatch.publish_failed rows=%d first_error=%s",
            len(failed),
            type(failed[0][1]).__name__,
        )


def _disclosure(item: OutboxRecord, copy: Copy, out: Outgoing, at: datetime) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id=item.id,
        message_id=item.message_id,
        copy_msg_id=out.message_id,
        subscriber=copy.subscriber,
        agreement_id=copy.agreement_id,
        agreement_version=copy.agreement_version,
        object_name=item.object_name,
        action=item.action,
        school=item.school,
        subject_refid=item.subject_refid,
        published_at=at,
    )


async def run_dispatcher(ctx: DispatchContext, stop: asyncio.Event) -> None:
    """Drain the outbox until `stop` is set, backing off while the DB or broker is down."""
    failures = 0
    while not stop.is_set():
        ctx.wake.clear()  # work arriving from now on must wake the next idle wait
        try:
            claimed = await dispatch_once(ctx)
            failures = 0
        except (StoreUnavailable, BrokerUnavailable) as exc:
            failures += 1
            log.warning("dispatch.unavailable error=%s attempt=%d", type(exc).__name__, failures)
            await _sleep(ctx, stop, compute_backoff(failures, ctx.retry))
            continue
        if claimed < ctx.batch:
            await _sleep(ctx, stop, ctx.idle_seconds)


async def _sleep(ctx: DispatchContext, stop: asyncio.Event, seconds: float) -> None:
    """Wait up to `seconds`, waking early when ingest signals new work or on stop."""
    waiters = [asyncio.ensure_future(ctx.wake.wait()), asyncio.ensure_future(stop.wait())]
    _, pending = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
