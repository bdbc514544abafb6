"""Pull-mode delivery for SIF agents that ask with SIF_GetMessage instead of being pushed to.

Features: basic.get without auto-ack, one message held per queue and handed out again until
the agent acks it (SIF: ack before the next); one channel per queue, so trouble on one
agent's queue never returns another agent's held message; a held message whose channel
died is forgotten, because the broker has already put it back (at-least-once).
RabbitMQ's consumer_timeout (30 min by default) also closes a channel holding a message
too long; the message then simply comes again.

URL form: amqp://user:password@host:port/vhost
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiormq.abc
from aio_pika.exceptions import ChannelNotFoundEntity
from aiormq import spec

from hub.amqp.connection import AmqpConnection
from hub.core.ports import BrokerUnavailable, Pulled

log = logging.getLogger("hub.amqp")


@dataclass(frozen=True)
class _Held:
    """A delivery handed to an agent; its tag is only valid on the channel that got it."""

    pulled: Pulled
    delivery_tag: int
    channel: aiormq.abc.AbstractChannel


class AmqpPuller:
    """The broker side of SIF pull mode (implements hub.core.ports.PullSource)."""

    def __init__(self, url: str, *, timeout: float = 10.0, reconnect_interval: float = 1.0) -> None:
        self._timeout = timeout
        self._amqp = AmqpConnection(
            url, timeout=timeout, reconnect_interval=reconnect_interval, name="sif-hub-puller"
        )
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def connected(self) -> bool:
        return self._amqp.connected

    async def start(self) -> None:
        """Connect; BrokerUnavailable if down (call again later, or let the first pull do it)."""
        await self._amqp.open()

    async def close(self) -> None:
        """Close; held messages go back to their queues."""
        self._held.clear()
        await self._amqp.close()

    async def next_message(self, queue: str) -> Pulled | None:
        """The held message again if not acked yet, else the next one; None when empty."""
        async with self._lock(queue):
            held = self._live(queue)
            if held is not None:
                return held.pulled
            return await self._get(queue)

    async def ack(self, queue: str, message_id: str) -> bool:
        """Ack the held message if it is `message_id`; False when nothing matching is held."""
        async with self._lock(queue):
            held = self._live(queue)
            if held is None or held.pulled.message_id != message_id:
                return False
            del self._held[queue]
            return await self._ack(queue, held)

    def _lock(self, queue: str) -> asyncio.Lock:
        # Two concurrent requests from one agent must not fetch two messages.
        return self._locks.setdefault(queue, asyncio.Lock())

    def _live(self, queue: str) -> _Held | None:
        held = self._held.get(queue)
        if held is not None and held.channel.is_closed:
            del self._held[queue]
            log.info("amqp.pull_held_lost queue=%s message_id=%s", queue, held.pulled.message_id)
            return None
        return held

    async def _get(self, queue: str) -> Pulled | None:
        channel = await self._amqp.channel(_key(queue), confirms=False)
        underlay = await self._amqp.bounded(channel.get_underlay_channel(), "pull channel")
        try:
            delivered = await self._amqp.bounded(self._basic_get(underlay, queue), "basic.get")
        except BrokerUnavailable:
            self._amqp.drop_channel(_key(queue))  # a late delivery must go back to the queue
            raise
        if delivered is None or delivered.delivery_tag is None:
            return None
        held = _Held(
            Pulled(_message_id(delivered), delivered.body), delivered.delivery_tag, underlay
        )
        self._held[queue] = held
        return held.pulled

    async def _basic_get(
        self, underlay: aiormq.abc.AbstractChannel, queue: str
    ) -> aiormq.abc.DeliveredMessage | None:
        try:
            delivered = await underlay.basic_get(queue, no_ack=False, timeout=self._timeout)
        except ChannelNotFoundEntity:
            log.info("amqp.pull_no_queue queue=%s", queue)  # not declared yet: nothing to pull
            return None
        if isinstance(delivered.delivery, spec.Basic.GetEmpty):
            return None
        return delivered

    async def _ack(self, queue: str, held: _Held) -> bool:
        try:
            await self._amqp.bounded(held.channel.basic_ack(held.delivery_tag), "basic.ack")
        except BrokerUnavailable:
            self._amqp.drop_channel(_key(queue))  # the message will be delivered again
            return False
        return True


def _key(queue: str) -> str:
    return f"pull:{queue}"


def _message_id(delivered: aiormq.abc.DeliveredMessage) -> str:
    """The hub sets message_id on every copy; the tag fallback only serves foreign messages."""
    return delivered.header.properties.message_id or f"delivery-{delivered.delivery_tag}"
