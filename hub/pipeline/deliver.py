"""Where a pushed copy leaves: from the subscriber's queue to its endpoint, accounted for.

Dispatch has already decided, filtered and published the copy; this stage only moves it
on and records what happened, so a push route can never release more than the queue
route. A copy is pushed only once its disclosure row is committed (dispatch writes it just
after the publish confirm, so the first look can come a moment early: it waits briefly,
then the copy is set aside in the first retry queue without counting an attempt; one
whose row never appears was never released and is dead-lettered). A copy already
acknowledged (a re-sent duplicate) is not pushed again. Every try is one attempt row, and
a 2xx acknowledges the disclosure in the same transaction. A failure waits in the retry
ladder; after `ladder.max_attempts` tries the copy goes to the subscriber's DLQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.core.config import WebhookDelivery
from hub.core.ports import (
    Delivered,
    DeliverySource,
    Pusher,
    PushResult,
    Settle,
    Store,
    StoreUnavailable,
)
from hub.core.records import WebhookAttemptRecord
from hub.core.retry import RetryLadder
from hub.pipeline.dispatch import sleep_or_wake

log = logging.getLogger("hub.deliver")

OUTCOMES = {"done": "delivered", "retry": "retry", "dead": "dead_lettered"}


@dataclass
class PushContext:
    store: Store
    pusher: Pusher
    ladder: RetryLadder = field(default_factory=RetryLadder)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Pauses while a copy waits for its disclosure row before it is set aside, and how
    # often it may be set aside for that before it counts as never released.
    disclosure_waits: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    max_deferrals: int = 6
    # Set when a secret is issued, so a deliverer waiting for one starts at once.
    secret_issued: asyncio.Event = field(default_factory=asyncio.Event)
    secret_poll_seconds: float = 5.0
    # Per subscriber, for readiness: no_secret, running, or stopped (ended or crashed).
    status: dict[str, str] = field(default_factory=dict)


async def push_copy(
    ctx: PushContext, subscriber: str, target: WebhookDelivery, copy: Delivered
) -> Settle:
    """Push one copy and say what becomes of it."""
    try:
        acknowledged, sealed = await _lookup(ctx, subscriber, copy.message_id)
    except StoreUnavailable:
        return set_aside(ctx, copy)
    if acknowledged is None:
        return set_aside(ctx, copy, unreleased=True)
    if acknowledged:
        log.info("deliver.duplicate subscriber=%s copy=%s", subscriber, copy.message_id)
        return Settle(kind="done", attempts=copy.attempts, deferrals=copy.deferrals)
    if sealed is None:
        return set_aside(ctx, copy)
    result = await ctx.pusher.push(target.url, sealed, copy, timeout_seconds=target.timeout_seconds)
    settle = verdict(result, copy.attempts + 1, copy.deferrals, ctx.ladder)
    try:
        await _record(ctx, subscriber, copy, result, settle)
    except StoreUnavailable:  # unaccounted for: try again later rather than count it
        return set_aside(ctx, copy)
    return settle


def verdict(result: PushResult, attempt: int, deferrals: int, ladder: RetryLadder) -> Settle:
    """After try number `attempt`: done, wait in the ladder, or give up."""
    if result.ok:
        return Settle(kind="done", attempts=attempt, deferrals=deferrals)
    delay = ladder.delay_after(attempt)
    if delay is None:
        return Settle(kind="dead", attempts=attempt, deferrals=deferrals)
    return Settle(kind="retry", delay_ms=delay, attempts=attempt, deferrals=deferrals)


def set_aside(ctx: PushContext, copy: Delivered, *, unreleased: bool = False) -> Settle:
    """Set the copy aside without a try: the first retry step while the database is
    away or no secret is issued; up the ladder while its disclosure row is missing."""
    if not unreleased:
        return Settle(
            kind="retry",
            delay_ms=ctx.ladder.wait(1),
            attempts=copy.attempts,
            deferrals=copy.deferrals,
        )
    deferrals = copy.deferrals + 1
    if deferrals > ctx.max_deferrals:
        log.warning("deliver.never_released copy=%s", copy.message_id)
        return Settle(kind="dead", attempts=copy.attempts, deferrals=deferrals)
    return Settle(
        kind="retry",
        delay_ms=ctx.ladder.wait(deferrals),
        attempts=copy.attempts,
        deferrals=deferrals,
    )


async def await_release(store: Store, copy_msg_id: str, waits: tuple[float, ...]) -> bool | None:
    """Whether the copy is acknowledged yet, once its disclosure row is committed; None if
    the row does not appear within `waits` (not released yet, or never). Every delivery
    (webhook, feed, file) checks this before a copy leaves, so none outruns dispatch."""
    for pause in (*waits, None):
        async with store.transaction() as tx:
            found = await tx.disclosures.recorded([copy_msg_id])
        if copy_msg_id in found:
            return found[copy_msg_id]
        if pause is not None:
            await asyncio.sleep(pause)
    return None


async def _lookup(
    ctx: PushContext, subscriber: str, copy_msg_id: str
) -> tuple[bool | None, bytes | None]:
    """Is the copy acknowledged yet (None while its disclosure row is not yet written),
    and the subscriber's sealed secret."""
    acknowledged = await await_release(ctx.store, copy_msg_id, ctx.disclosure_waits)
    if acknowledged is None:
        return None, None
    return acknowledged, await _secret(ctx, subscriber)


async def _secret(ctx: PushContext, subscriber: str) -> bytes | None:
    async with ctx.store.transaction() as tx:
        return await tx.webhooks.secret(subscriber)


async def _record(
    ctx: PushContext, subscriber: str, copy: Delivered, result: PushResult, settle: Settle
) -> None:
    """The attempt row, and the acknowledgement of a success, in one transaction."""
    at = ctx.clock()
    record = WebhookAttemptRecord(
        copy_msg_id=copy.message_id,
        subscriber=subscriber,
        attempt=settle.attempts,
        attempted_at=at,
        outcome=OUTCOMES[settle.kind],
        status_code=result.status,
        error=result.error,
        retry_in_ms=settle.delay_ms if settle.kind == "retry" else None,
    )
    async with ctx.store.transaction() as tx:
        await tx.webhooks.add_attempt(record)
        if result.ok:
            await tx.disclosures.acknowledge([copy.message_id], at)
    if not result.ok:
        log.warning(
            "deliver.push_failed subscriber=%s attempt=%d error=%s outcome=%s",
            subscriber,
            settle.attempts,
            result.error,
            record.outcome,
        )


async def run_webhook(
    ctx: PushContext,
    source: DeliverySource,
    subscriber: str,
    target: WebhookDelivery,
    stop: asyncio.Event,
) -> None:
    """Deliver one webhook subscriber's copies until `stop`; copies wait in its queue
    until a secret has been issued."""

    async def handle(copy: Delivered) -> Settle:
        return await push_copy(ctx, subscriber, target, copy)

    ctx.status[subscriber] = "no_secret"
    try:
        if await _wait_for_secret(ctx, subscriber, stop):
            ctx.status[subscriber] = "running"
            await source.run(subscriber, handle, concurrency=target.concurrency, stop=stop)
    except Exception:
        log.exception("deliver.crashed subscriber=%s", subscriber)
        raise
    finally:
        ctx.status[subscriber] = "stopped"


async def _wait_for_secret(ctx: PushContext, subscriber: str, stop: asyncio.Event) -> bool:
    warned = False
    while not stop.is_set():
        with contextlib.suppress(StoreUnavailable):
            if await _secret(ctx, subscriber) is not None:
                return True
        if not warned:
            log.warning("deliver.no_secret subscriber=%s", subscriber)
            warned = True
        ctx.secret_issued.clear()
        await sleep_or_wake(ctx.secret_issued, stop, ctx.secret_poll_seconds)
    return False
