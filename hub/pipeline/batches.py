"""Batched copies: a subscriber that opts in (`delivery: {type: amqp, batch: N}`) takes the
copies one dispatch pass releases to it as SIF_CopyBatch messages of up to N copies, which
is the only way past the broker's per-message cost for bulk loads (a SIF_Response of 100
objects becomes one message per subscriber, not 100).

Each copy keeps its own message id and its own disclosure row; a batch is confirmed or not
as a whole, and that outcome is every member's. A retried row resends only its copies that
were not confirmed, so a retry's batch has other members and another id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from hub.core import naming
from hub.core.ports import Outgoing, Publisher
from hub.sif.build import copy_batch

# A batch stops growing at this many body bytes, whatever N allows.
MAX_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Bundled:
    """What is published, and for each message the indexes of the copies it carries."""

    outgoing: list[Outgoing]
    members: list[list[int]]

    def per_copy(self, results: Sequence[Exception | None], copies: int) -> list[Exception | None]:
        """Each copy's outcome: its message's."""
        out: list[Exception | None] = [None] * copies
        for result, indexes in zip(results, self.members, strict=True):
            for i in indexes:
                out[i] = result
        return out


async def publish_copies(
    publisher: Publisher, copies: Sequence[Outgoing], batches: dict[str, int]
) -> list[Exception | None]:
    """Publish copies, batched for the subscribers that take batches; one outcome per copy
    (None = confirmed). Dispatch and the release of held copies both leave through here."""
    if not copies:
        return []
    bundled = bundle(copies, batches)
    return bundled.per_copy(await publisher.publish_batch(bundled.outgoing), len(copies))


def bundle(copies: Sequence[Outgoing], batches: dict[str, int]) -> Bundled:
    """Group each batching subscriber's copies, in order, into batches of up to its N;
    every other copy is published alone."""
    outgoing: list[Outgoing] = []
    members: list[list[int]] = []
    open_batch: dict[str, list[int]] = {}

    def close(subscriber: str) -> None:
        indexes = open_batch.pop(subscriber)
        outgoing.append(_batch(subscriber, [copies[i] for i in indexes]))
        members.append(indexes)

    for i, copy in enumerate(copies):
        subscriber = copy.headers.get(naming.H_SUBSCRIBER, "")
        size = batches.get(subscriber, 1)
        if size <= 1:
            outgoing.append(copy)
            members.append([i])
            continue
        current = open_batch.setdefault(subscriber, [])
        if current and _bytes(copies, current) + len(copy.body) > MAX_BATCH_BYTES:
            close(subscriber)
            current = open_batch.setdefault(subscriber, [])
        current.append(i)
        if len(current) >= size:
            close(subscriber)
    for subscriber in list(open_batch):
        close(subscriber)
    return Bundled(outgoing, members)


def _bytes(copies: Sequence[Outgoing], indexes: list[int]) -> int:
    return sum(len(copies[i].body) for i in indexes)


def _batch(subscriber: str, copies: list[Outgoing]) -> Outgoing:
    """Always a SIF_CopyBatch, even of one copy: a batching subscriber reads one format."""
    ids = [c.message_id for c in copies]
    # Deterministic: a crash between confirm and commit re-sends the same batch id.
    msg_id = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32].upper()
    headers = {
        naming.H_SUBSCRIBER: subscriber,
        naming.H_BATCH_COUNT: str(len(copies)),
    }
    return Outgoing(
        copies[0].queue,
        copy_batch(msg_id, [(c.headers, c.body) for c in copies]),
        msg_id,
        headers,
        type=naming.COPY_BATCH_TYPE,
    )
