"""Re-driving a subscriber's dead letters: copies its dead-letter queue holds are put back in
its queue, through the hub's own confirmed publisher (persistent, mandatory, same
message_id and hub headers, so recipients still de-duplicate).

Features: taken with basic.get (unacknowledged) on a short-lived connection, published as
one confirmed batch, and only then acked from the DLQ; a copy the broker did not confirm is
nacked back into the DLQ. A crash in between leaves the copy in the DLQ (unacked messages
return there) or, at worst, in both queues: at-least-once, like every delivery. The
broker's own `x-` headers (x-death, delivery counts) are dropped, so the copy starts afresh.
These copies already have their disclosure rows (written when they were first released).

URL form: amqp://user:password@host:port/vhost (the hub's own broker user, which may read
dead-letter queues).
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from hub.core.ports import BrokerUnavailable, Outgoing, Publisher

GET_TIMEOUT_SECONDS = 5.0


async def redrive(amqp_url: str, publisher: Publisher, dlq: str, queue: str, *, limit: int) -> int:
    """Move up to `limit` dead letters from `dlq` back to `queue`; returns how many moved."""
    try:
        connection = await aio_pika.connect(amqp_url, timeout=GET_TIMEOUT_SECONDS)
    except (OSError, aio_pika.exceptions.AMQPError) as exc:
        raise BrokerUnavailable(f"dead letters: {exc!r}") from exc
    async with connection:
        channel = await connection.channel()
        source = await channel.get_queue(dlq, ensure=False)
        taken: list[AbstractIncomingMessage] = []
        while len(taken) < limit:
            message = await source.get(no_ack=False, fail=False, timeout=GET_TIMEOUT_SECONDS)
            if message is None:
                break
            taken.append(message)
        results = await publisher.publish_batch([_outgoing(m, queue) for m in taken])
        moved = 0
        for message, error in zip(taken, results, strict=True):
            if error is None:
                await message.ack()
                moved += 1
            else:
                await message.nack(requeue=True)
    return moved


def _outgoing(message: AbstractIncomingMessage, queue: str) -> Outgoing:
    headers = {
        str(k): v.decode() if isinstance(v, bytes) else str(v)
        for k, v in (message.headers or {}).items()
        if not str(k).startswith("x-") and isinstance(v, str | bytes | int)
    }
    return Outgoing(
        queue=queue,
        body=message.body,
        message_id=message.message_id or "",
        headers=headers,
        type=message.type or "SIF_Event",
    )
