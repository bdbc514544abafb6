"""Confirmed publishing of filtered copies straight into each subscriber's own queue.

Features: default exchange with routing key = queue name; persistent, mandatory, on a
confirm channel that raises on basic.return (an unroutable copy is an error, never a silent
drop); every publish bounded by `timeout`; all publishes of a batch issued before any
confirm is awaited (pipelined, never one by one); one result per message, None = confirmed.
Nothing is retried here: the DB outbox re-sends what did not confirm.

Copies sharing a message_id are never in flight together: aiormq matches a basic.return to
its publish by message_id, so two at once could report the dropped copy as confirmed. Such
batches go out in consecutive waves (one per fan-out level), keeping each queue's order.

URL form: amqp://user:password@host:port/vhost
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractChannel
from aio_pika.exceptions import PublishError

from hub.amqp.connection import AmqpConnection
from hub.amqp.topology import DEFAULT_DELIVERY_LIMIT, declare_subscriber
from hub.core import naming
from hub.core.ports import BrokerUnavailable, Outgoing

log = logging.getLogger("hub.amqp")

PUBLISH = "publish"
TOPOLOGY = "topology"
CONTENT_TYPE = "application/xml"


class AmqpPublisher:
    """The broker side of dispatch (implements hub.core.ports.Publisher)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        prefix: str = naming.PREFIX,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        reconnect_interval: float = 1.0,
    ) -> None:
        self._timeout = timeout
        self._prefix = prefix
        self._delivery_limit = delivery_limit
        self._declared: set[str] = set()  # queue names declared on the current connection
        self._lock = asyncio.Lock()  # one batch at a time keeps message_ids unique in flight
        self._amqp = AmqpConnection(
            url,
            timeout=timeout,
            reconnect_interval=reconnect_interval,
            name="sif-hub-publisher",
            on_reconnect=self._declared.clear,
        )

    @property
    def connected(self) -> bool:
        return self._amqp.connected

    async def start(self) -> None:
        """Connect and open the confirm channel; BrokerUnavailable if down, call again later."""
        await self._amqp.channel(PUBLISH, confirms=True)

    async def close(self) -> None:
        await self._amqp.close()

    async def ping(self) -> None:
        """Cheap readiness check: never connects, only confirms the channel is usable."""
        if not self._amqp.connected:
            raise BrokerUnavailable("publisher is not connected")
        await self._amqp.channel(PUBLISH, confirms=True)

    async def ensure_queues(self, subscriber_ids: Sequence[str]) -> None:
        """Declare each subscriber's topology once per connection (re-done after a reconnect).

        A queue that exists with other arguments raises BrokerUnavailable: an operator must
        resolve it, and the caller's back-off is the right reaction meanwhile.
        """
        todo = [s for s in dict.fromkeys(subscriber_ids) if self._queue(s) not in self._declared]
        if not todo:
            return
        channel = await self._amqp.channel(TOPOLOGY, confirms=False)
        for subscriber_id in todo:
            await self._amqp.bounded(self._declare(channel, subscriber_id), "declare")
            self._declared.add(self._queue(subscriber_id))
        log.info("amqp.queues_declared count=%d", len(todo))

    def _queue(self, subscriber_id: str) -> str:
        return naming.subscriber_queue(subscriber_id, self._prefix)

    async def _declare(self, channel: AbstractChannel, subscriber_id: str) -> None:
        await declare_subscriber(
            channel, subscriber_id, self._prefix, delivery_limit=self._delivery_limit
        )

    async def publish_batch(self, messages: Sequence[Outgoing]) -> list[Exception | None]:
        """Publish all, await every confirm together; one result per message, None = confirmed.

        Failures come back as the exception: PublishError (no such queue), DeliveryError
        (nack), TimeoutError, or BrokerUnavailable / a channel error while disconnected.
        """
        if not messages:
            return []
        async with self._lock:
            try:
                channel = await self._amqp.channel(PUBLISH, confirms=True)
            except BrokerUnavailable as exc:
                return [exc] * len(messages)
            results = await self._publish_waves(channel, messages)
            self._after_batch(messages, results)
        return results

    async def _publish_waves(
        self, channel: AbstractChannel, messages: Sequence[Outgoing]
    ) -> list[Exception | None]:
        stamp = datetime.now(UTC)
        results: list[Exception | None] = [None] * len(messages)
        for wave in waves(messages):
            if any(isinstance(r, TimeoutError) for r in results):  # broker stalled: stop
                for i in wave:
                    results[i] = TimeoutError("not sent: an earlier wave timed out")
                continue
            outcomes = await asyncio.gather(
                *(self._publish_one(channel, messages[i], stamp) for i in wave),
                return_exceptions=True,
            )
            for i, outcome in zip(wave, outcomes, strict=True):
                results[i] = _as_error(outcome)
        return results

    async def _publish_one(
        self, channel: AbstractChannel, message: Outgoing, stamp: datetime
    ) -> None:
        # The outer timeout also covers waiting for a robust channel that is reconnecting.
        async with asyncio.timeout(self._timeout):
            await channel.default_exchange.publish(
                amqp_message(message, stamp),
                routing_key=message.queue,
                mandatory=True,
                timeout=self._timeout,
            )

    def _after_batch(self, messages: Sequence[Outgoing], results: list[Exception | None]) -> None:
        """Log failures and forget state they make doubtful."""
        failed = [(m, r) for m, r in zip(messages, results, strict=True) if r is not None]
        if not failed:
            return
        for message, error in failed:
            if isinstance(error, PublishError):  # queue gone: declare again on next ensure
                self._declared.discard(message.queue)
        if any(isinstance(error, TimeoutError) for _, error in failed):
            self._amqp.drop_channel(PUBLISH)  # late confirms must not meet the next batch
        first_message, first_error = failed[0]
        log.warning(
            "amqp.publish_failed failed=%d total=%d first_queue=%s first_error=%r",
            len(failed),
            len(messages),
            first_message.queue,
            first_error,
        )


def waves(messages: Sequence[Outgoing]) -> list[list[int]]:
    """Indices grouped into waves sent one after another, greedily as few as possible.

    A message_id never occurs twice in a wave, and a queue's messages never go to an
    earlier wave than its previous one, so each queue still receives them in input order.
    """
    result: list[list[int]] = []
    queue_wave: dict[str, int] = {}
    id_waves: dict[str, set[int]] = {}
    for index, message in enumerate(messages):
        wave = queue_wave.get(message.queue, 0)
        taken = id_waves.setdefault(message.message_id, set()) if message.message_id else set()
        while wave in taken:
            wave += 1
        taken.add(wave)
        queue_wave[message.queue] = wave
        result.extend([] for _ in range(wave + 1 - len(result)))
        result[wave].append(index)
    return result


def amqp_message(message: Outgoing, stamp: datetime) -> aio_pika.Message:
    """Persistent, typed and identified: consumers de-duplicate on message_id."""
    return aio_pika.Message(
        message.body,
        headers=dict(message.headers),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
        timestamp=stamp,
    )


def _as_error(outcome: object) -> Exception | None:
    """gather() result -> None for a confirm, the exception otherwise."""
    if isinstance(outcome, Exception):
        return outcome
    if isinstance(outcome, BaseException):  # cancelled from outside while in flight
        return BrokerUnavailable(f"publish interrupted: {outcome!r}")
    return None
