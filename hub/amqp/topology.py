"""Every exchange and queue the hub declares, with its arguments, in one place.

Per subscriber: a durable quorum queue that dead-letters (at-least-once) into its own
quorum DLQ through one direct dead-letter exchange per prefix. Declarations go through the
underlying AMQP channel on purpose: aio-pika's robust channels would otherwise remember the
queue objects and re-declare them inside every reconnect, where one mismatching queue would
stop the whole connection from recovering. The publisher re-declares on demand instead.
"""

from __future__ import annotations

from typing import Any

from aio_pika.abc import AbstractChannel

from hub.core import naming

# RabbitMQ 3.10 has no default delivery limit: without one a poison message loops forever.
DEFAULT_DELIVERY_LIMIT = 10


def subscriber_queue_arguments(
    subscriber_id: str,
    prefix: str = naming.PREFIX,
    *,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
) -> dict[str, Any]:
    """Arguments of a subscriber queue; at-least-once dead-lettering needs reject-publish."""
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": naming.dead_letter_exchange(prefix),
        "x-dead-letter-routing-key": naming.dead_letter_queue(subscriber_id, prefix),
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def retry_queue_arguments(
    subscriber_id: str, delay_ms: int, prefix: str = naming.PREFIX
) -> dict[str, Any]:
    """A fixed-delay retry queue: every message waits `delay_ms`, then dead-letters back to
    the subscriber's queue through the default exchange. One delay per queue, because
    RabbitMQ expires only the head of a queue."""
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": naming.subscriber_queue(subscriber_id, prefix),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def dead_letter_queue_arguments() -> dict[str, Any]:
    """Dead letters are kept replicated too; they are the last copy of a failed delivery."""
    return {"x-queue-type": "quorum"}


async def declare_dead_letter_exchange(
    channel: AbstractChannel, prefix: str = naming.PREFIX
) -> None:
    """Durable direct exchange; each DLQ is bound under its own name."""
    underlay = await channel.get_underlay_channel()
    await underlay.exchange_declare(
        naming.dead_letter_exchange(prefix), exchange_type="direct", durable=True
    )


async def declare_subscriber(
    channel: AbstractChannel,
    subscriber_id: str,
    prefix: str = naming.PREFIX,
    *,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
) -> None:
    """Declare the DLX, the subscriber's DLQ (bound) and its queue; idempotent.

    Raises aio-pika's ChannelPreconditionFailed (and the channel closes) when a queue of
    that name already exists with other arguments.
    """
    underlay = await channel.get_underlay_channel()
    dlx = naming.dead_letter_exchange(prefix)
    dlq = naming.dead_letter_queue(subscriber_id, prefix)
    await declare_dead_letter_exchange(channel, prefix)
    await underlay.queue_declare(dlq, durable=True, arguments=dead_letter_queue_arguments())
    await underlay.queue_bind(dlq, dlx, routing_key=dlq)
    await underlay.queue_declare(
        naming.subscriber_queue(subscriber_id, prefix),
        durable=True,
        arguments=subscriber_queue_arguments(subscriber_id, prefix, delivery_limit=delivery_limit),
    )


async def declare_retry_queues(
    channel: AbstractChannel,
    subscriber_id: str,
    delays_ms: tuple[int, ...],
    prefix: str = naming.PREFIX,
) -> None:
    """Declare a pushed subscriber's retry queues, one per delay; idempotent."""
    underlay = await channel.get_underlay_channel()
    for delay in dict.fromkeys(delays_ms):
        await underlay.queue_declare(
            naming.retry_queue(subscriber_id, delay, prefix),
            durable=True,
            arguments=retry_queue_arguments(subscriber_id, delay, prefix),
        )
