"""One robust AMQP connection with bounded waits, shared by the publisher and the puller.

Features: connect with a timeout (raises BrokerUnavailable and can simply be called again),
channels cached by key and handed out only when open, a channel that robust recovery did
not bring back is replaced, every wait bounded by `timeout`, close that never hangs.
aio-pika's robust connection reconnects in the background every `reconnect_interval`
seconds; while it is down, callers fail at once instead of queueing behind the reconnect.

URL form: amqp://user:password@host:port/vhost (aio-pika query options such as
?heartbeat=30 pass through).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection, TimeoutType
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from hub.core.ports import BrokerUnavailable

log = logging.getLogger("hub.amqp")

T = TypeVar("T")

# Everything a broken or refusing broker raises while we wait on it.
BROKER_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_EXCEPTIONS)


class _ClosedOnFailure(aio_pika.RobustConnection):
    """A connection that closes itself when its first connect fails. Left open, aio-pika
    closes it from its finaliser, which outside a running loop leaves an unawaited
    coroutine behind (a warning per failed attempt while the broker is away)."""

    async def connect(self, timeout: TimeoutType = None) -> None:  # noqa: ASYNC109 - aio-pika's signature
        try:
            await super().connect(timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.close()
            raise


class AmqpConnection:
    """A lazily (re)opened robust connection and its channels, one per key."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        reconnect_interval: float = 1.0,
        name: str = "sif-hub",
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._reconnect_interval = reconnect_interval
        self._name = name
        self._on_reconnect = on_reconnect
        self._conn: AbstractRobustConnection | None = None
        self._channels: dict[str, AbstractRobustChannel] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._open_lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """True while the transport is up (False while robust reconnect is in progress)."""
        conn = self._conn
        return conn is not None and not conn.is_closed and conn.connected.is_set()

    async def open(self) -> None:
        """Connect unless a live (or reconnecting) connection exists; BrokerUnavailable if not."""
        async with self._open_lock:
            if self._conn is not None and not self._conn.is_closed:
                return
            self._channels.clear()
            self._conn = await self.bounded(self._connect(), "connect")
            self._conn.reconnect_callbacks.add(self._reconnected)
            log.info("amqp.connected name=%s broker=%s", self._name, self._conn)
            self._notify_reconnect()

    async def _connect(self) -> AbstractRobustConnection:
        return await aio_pika.connect_robust(
            self._url,
            timeout=self._timeout,
            reconnect_interval=self._reconnect_interval,
            client_properties={"connection_name": self._name},
            connection_class=_ClosedOnFailure,
        )

    def _reconnected(self, *_: object) -> None:
        log.info("amqp.reconnected name=%s", self._name)
        self._notify_reconnect()

    def _notify_reconnect(self) -> None:
        if self._on_reconnect is not None:
            self._on_reconnect()

    async def channel(self, key: str, *, confirms: bool) -> AbstractRobustChannel:
        """An open channel for `key`; fails fast with BrokerUnavailable while disconnected.

        Confirm channels raise on basic.return: without on_return_raises an unroutable
        mandatory message would count as delivered.
        """
        await self.open()
        if not self.connected:
            raise BrokerUnavailable("broker connection is down; reconnecting in background")
        cached = self._channels.get(key)
        if cached is not None and (not cached.is_closed or await self._recovers(cached)):
            return cached
        return await self._new_channel(key, confirms)

    async def _recovers(self, channel: AbstractRobustChannel) -> bool:
        """Give robust recovery one timeout to reopen a channel the broker closed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await channel.ready()
        return not channel.is_closed

    async def _new_channel(self, key: str, confirms: bool) -> AbstractRobustChannel:
        self.drop_channel(key)
        assert self._conn is not None
        opening = self._conn.channel(publisher_confirms=confirms, on_return_raises=confirms)
        channel = await self.bounded(opening, f"open channel {key}")
        self._channels[key] = channel  # the connection only keeps a weak reference
        return channel

    def drop_channel(self, key: str) -> None:
        """Forget a channel whose state is unknown (after a timeout) and close it aside.

        Closing a channel returns its unacknowledged deliveries to their queues.
        """
        channel = self._channels.pop(key, None)
        if channel is None:
            return
        task = asyncio.create_task(self._close_quietly(channel), name=f"amqp-close-{key}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, channel: AbstractRobustChannel) -> None:
        with contextlib.suppress(*BROKER_ERRORS):
            async with asyncio.timeout(self._timeout):
                await channel.close()

    async def bounded(self, awaitable: Awaitable[T], what: str) -> T:
        """Await with the timeout; any broker-side failure becomes BrokerUnavailable."""
        try:
            async with asyncio.timeout(self._timeout):
                return await awaitable
        except BROKER_ERRORS as exc:
            log.warning("amqp.unavailable name=%s op=%s error=%r", self._name, what, exc)
            raise BrokerUnavailable(f"{what}: {exc!r}") from exc

    async def close(self) -> None:
        """Close the connection (and so every channel); safe to call twice or when never open."""
        conn, self._conn = self._conn, None
        self._channels.clear()
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)
        if conn is not None:
            with contextlib.suppress(*BROKER_ERRORS):
                async with asyncio.timeout(self._timeout):
                    await conn.close()
            log.info("amqp.closed name=%s", self._name)
