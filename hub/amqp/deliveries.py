"""Consuming a subscriber's queue for a delivery adapter (webhook push), and settling each
copy as the adapter decides: ack it, park it in a fixed-delay retry queue, or dead-letter it.

Features: one channel per subscriber with prefetch = the adapter's concurrency, each copy
handled in its own task; topology (queue, DLQ, retry queues) declared before consuming; a
retry is a confirmed publish of the same copy (same message_id, counts in headers) into
the retry queue, and only then an ack, so a crash in between re-sends rather than loses
(at-least-once); dead-lettering is a reject without requeue, which the quorum queue turns
into an at-least-once move to the subscriber's DLQ. A dropped connection ends the consume
and it starts again on a fresh channel (unsettled copies come back from the broker).
Consumption goes through the underlying AMQP channel: aio-pika's robust channels would
re-declare and re-consume on their own inside every reconnect.

URL form: amqp://user:password@host:port/vhost
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiormq.abc
from aio_pika.abc import AbstractChannel
from aio_pika.exceptions import PublishError
from aiormq import spec

from hub.amqp.connection import BROKER_ERRORS, AmqpConnection
from hub.amqp.topology import DEFAULT_DELIVERY_LIMIT, declare_retry_queues, declare_subscriber
from hub.core import naming
from hub.core.ports import BrokerUnavailable, Delivered, Handler, Settle
from hub.core.retry import compute_backoff

log = logging.getLogger("hub.amqp")
# Failures that end a consume or a settle: the copy comes back, nothing is lost.
RECOVERABLE: tuple[type[BaseException], ...] = (BrokerUnavailable, PublishError, *BROKER_ERRORS)


class AmqpDeliveries:
    """The broker side of delivery adapters (implements hub.core.ports.DeliverySource)."""

    def __init__(
        self,
        url: str,
        *,
        delays_ms: tuple[int, ...],
        timeout: float = 10.0,
        prefix: str = naming.PREFIX,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    ) -> None:
        self._delays_ms = delays_ms
        self._timeout = timeout
        self._prefix = prefix
        self._delivery_limit = delivery_limit
        self._amqp = AmqpConnection(url, timeout=timeout, name=f"sif-hub-deliveries:{prefix}")

    async def close(self) -> None:
        """Close the connection; copies being handled go back to their queues."""
        await self._amqp.close()

    async def run(
        self, subscriber: str, handle: Handler, *, concurrency: int, stop: asyncio.Event
    ) -> None:
        """Consume until `stop` is set, starting again (with back-off) whenever the broker
        connection or the channel is lost."""
        failures = 0
        while not stop.is_set():
            try:
                closed = await self._consume(subscriber, handle, concurrency)
                failures = 0
                await _wait_either(closed, stop)
            except RECOVERABLE as exc:
                failures += 1
                log.warning(
                    "deliver.consume_failed subscriber=%s attempt=%d error=%r",
                    subscriber,
                    failures,
                    exc,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), compute_backoff(failures))
        self._amqp.drop_channel(_key(subscriber))

    async def _consume(
        self, subscriber: str, handle: Handler, concurrency: int
    ) -> asyncio.Future[Any]:
        """Declare, then start consuming; returns the channel's closing future."""
        channel = await self._amqp.channel(_key(subscriber), confirms=True)
        await self._amqp.bounded(self._declare(channel, subscriber), "declare")
        underlay = await self._amqp.bounded(channel.get_underlay_channel(), "channel")
        await self._amqp.bounded(underlay.basic_qos(prefetch_count=concurrency), "basic.qos")

        async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
            await self._handle(underlay, subscriber, handle, message)

        queue = naming.subscriber_queue(subscriber, self._prefix)
        await self._amqp.bounded(underlay.basic_consume(queue, on_message), "basic.consume")
        log.info("deliver.consuming subscriber=%s concurrency=%d", subscriber, concurrency)
        return underlay.closing

    async def _declare(self, channel: AbstractChannel, subscriber: str) -> None:
        await declare_subscriber(
            channel, subscriber, self._prefix, delivery_limit=self._delivery_limit
        )
        await declare_retry_queues(channel, subscriber, self._delays_ms, self._prefix)

    async def _handle(
        self,
        channel: aiormq.abc.AbstractChannel,
        subscriber: str,
        handle: Handler,
        message: aiormq.abc.DeliveredMessage,
    ) -> None:
        tag = message.delivery_tag
        assert tag is not None
        try:
            settle = await handle(delivered(message))
        except Exception:
            # A bug of ours, not the copy's: back to the queue (the quorum queue's delivery
            # limit dead-letters it if it keeps failing).
            log.exception("deliver.handler_failed subscriber=%s", subscriber)
            await _requeue(channel, tag)
            return
        try:
            await self._settle(channel, subscriber, message, settle)
        except RECOVERABLE as exc:
            log.warning("deliver.settle_failed subscriber=%s error=%r", subscriber, exc)
            await _requeue(channel, tag)

    async def _settle(
        self,
        channel: aiormq.abc.AbstractChannel,
        subscriber: str,
        message: aiormq.abc.DeliveredMessage,
        settle: Settle,
    ) -> None:
        tag = message.delivery_tag
        assert tag is not None
        if settle.kind == "retry":
            await self._park(channel, subscriber, message, settle)
        if settle.kind == "dead":
            await channel.basic_reject(tag, requeue=False)
        else:
            await channel.basic_ack(tag)

    async def _park(
        self,
        channel: aiormq.abc.AbstractChannel,
        subscriber: str,
        message: aiormq.abc.DeliveredMessage,
        settle: Settle,
    ) -> None:
        """Publish the copy into the retry queue of its delay, confirmed, before the ack."""
        properties = message.header.properties
        headers = {
            **(properties.headers or {}),
            naming.H_ATTEMPTS: settle.attempts,
            naming.H_DEFERRALS: settle.deferrals,
        }
        headers.pop("x-death", None)  # the broker's history of earlier waits, not ours
        async with asyncio.timeout(self._timeout):
            confirmed = await channel.basic_publish(
                message.body,
                exchange="",
                routing_key=naming.retry_queue(subscriber, settle.delay_ms, self._prefix),
                properties=spec.Basic.Properties(
                    content_type=properties.content_type,
                    delivery_mode=2,
                    message_id=properties.message_id,
                    message_type=properties.message_type,
                    timestamp=properties.timestamp,
                    headers=headers,
                ),
                mandatory=True,
            )
        if not isinstance(confirmed, spec.Basic.Ack):
            raise BrokerUnavailable(f"retry publish not confirmed: {confirmed!r}")


def delivered(message: aiormq.abc.DeliveredMessage) -> Delivered:
    properties = message.header.properties
    headers = dict(properties.headers or {})
    return Delivered(
        message_id=properties.message_id or "",
        body=message.body,
        headers={k: _text(v) for k, v in headers.items() if _forwarded(k)},
        attempts=_count(headers.get(naming.H_ATTEMPTS)),
        deferrals=_count(headers.get(naming.H_DEFERRALS)),
    )


COUNTS = (naming.H_ATTEMPTS, naming.H_DEFERRALS)  # ours, not the recipient's


def _forwarded(header: str) -> bool:
    return header.startswith("hub-") and header not in COUNTS


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


async def _requeue(channel: aiormq.abc.AbstractChannel, tag: int) -> None:
    """Give the copy back; if the channel is gone the broker has done so already."""
    with contextlib.suppress(*BROKER_ERRORS):
        await channel.basic_nack(tag, requeue=True)


def _key(subscriber: str) -> str:
    return f"deliver:{subscriber}"


async def _wait_either(closed: asyncio.Future[Any], stop: asyncio.Event) -> None:
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([closed, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
