"""Where a pulled copy waits: from the subscriber's queue into its JSON feed, accounted for.

Dispatch has already decided, filtered and published the copy; this stage only keeps it
for the subscriber to fetch (GET /api/v1/feeds/{subscriber}, hub.api.feed_routes), so the
pull route can never release more than the queue route. A copy is kept only once its
disclosure row is committed (`await_release`, shared with webhook push; a copy whose row
is not there yet is set aside in the retry ladder, one whose row never appears is
dead-lettered). Each copy becomes one feed item under the subscriber's next cursor, in one
transaction, and only then is the AMQP message acked; a redelivered copy (same message id)
is acked without a second item. Items go at their agreement's `retention_days`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hub.core import naming
from hub.core.config import ApiDelivery
from hub.core.envelope import Action
from hub.core.ports import Delivered, DeliverySource, Settle, Store, StoreUnavailable
from hub.core.records import FeedItemRecord
from hub.core.retry import RetryLadder
from hub.pipeline.deliver import await_release, set_aside
from hub.sif.envelope import read_event, sniff
from hub.sif.parse import parse_trusted

log = logging.getLogger("hub.feed")

# (agreement id, version) -> the days its released copies are kept.
RetentionDays = Callable[[str, int], int]


@dataclass
class FeedContext:
    store: Store
    retention_days: RetentionDays
    ladder: RetryLadder = field(default_factory=RetryLadder)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    disclosure_waits: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    max_deferrals: int = 6
    # Per subscriber, for readiness: running, or stopped (ended or crashed).
    status: dict[str, str] = field(default_factory=dict)


async def keep_copy(ctx: FeedContext, subscriber: str, copy: Delivered) -> Settle:
    """Keep one released copy in the subscriber's feed and say what becomes of it."""
    try:
        released = await await_release(ctx.store, copy.message_id, ctx.disclosure_waits)
    except StoreUnavailable:
        return set_aside(ctx, copy)
    if released is None:
        return set_aside(ctx, copy, unreleased=True)
    # A body dispatch did not build raises here: back to the queue, and its delivery limit
    # dead-letters it (AmqpDeliveries), never kept.
    record = feed_item(ctx, subscriber, copy)
    try:
        async with ctx.store.transaction() as tx:
            cursor = await tx.feeds.add(record)
    except StoreUnavailable:
        return set_aside(ctx, copy)
    if cursor is None:
        log.info("feed.duplicate subscriber=%s copy=%s", subscriber, copy.message_id)
    return Settle(kind="done", attempts=copy.attempts, deferrals=copy.deferrals)


def feed_item(ctx: FeedContext, subscriber: str, copy: Delivered) -> FeedItemRecord:
    """The feed row for a copy: object, action and RefId read from the released body."""
    event = read_event(sniff(parse_trusted(copy.body)).body)
    agreement = copy.headers.get(naming.H_AGREEMENT, "")
    version = int(copy.headers.get(naming.H_AGREEMENT_VERSION, "0") or 0)
    released_at = ctx.clock()
    return FeedItemRecord(
        subscriber=subscriber,
        copy_msg_id=copy.message_id,
        object_name=event.object_name,
        refid=event.element.get("RefId"),
        action=Action(event.action),
        body=copy.body,
        released_at=released_at,
        purge_after=released_at + timedelta(days=ctx.retention_days(agreement, version)),
    )


async def run_feed(
    ctx: FeedContext,
    source: DeliverySource,
    subscriber: str,
    target: ApiDelivery,
    stop: asyncio.Event,
) -> None:
    """Keep one pulling subscriber's copies in its feed until `stop`."""

    async def handle(copy: Delivered) -> Settle:
        return await keep_copy(ctx, subscriber, copy)

    ctx.status[subscriber] = "running"
    try:
        await source.run(subscriber, handle, concurrency=target.concurrency, stop=stop)
    except Exception:
        log.exception("feed.crashed subscriber=%s", subscriber)
        raise
    finally:
        ctx.status[subscriber] = "stopped"
