"""Wake-ups across hub processes: PostgreSQL LISTEN/NOTIFY on one channel per database.

An HTTP process that committed new outbox rows (or changed an agreement) sends a NOTIFY;
every worker process LISTENs and wakes its dispatcher (or reloads its agreements) at once,
instead of waiting for its next poll. A wake-up is only a hint: workers still poll
(HUB_DISPATCH_IDLE_*), so a NOTIFY lost to a dropped connection delays work, never loses it.
SQLite has no cross-process signal: `NoWakeups` does nothing and workers poll.

Payloads: "outbox" (new rows to route), "policy" (agreements or privacy state changed).
Sending is coalesced: at most one NOTIFY is in flight per process, and calls made meanwhile
are folded into one more, so a burst of ingest commits costs a few round trips, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from hub.core.retry import compute_backoff

log = logging.getLogger("hub.wakeups")
CHANNEL = "sifhub_wake"
OUTBOX, POLICY = "outbox", "policy"
CONNECT_TIMEOUT_SECONDS = 5.0
KEEPALIVE_SECONDS = 30.0
# asyncpg raises these when the server or the socket goes away.
_LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Wakeups(Protocol):
    def notify(self, payload: str) -> None: ...

    async def listen(self, on_wake: Callable[[str], None], stop: asyncio.Event) -> None: ...

    async def close(self) -> None: ...


class NoWakeups:
    """SQLite (one machine, no server to signal through): workers poll."""

    def notify(self, payload: str) -> None:
        return None

    async def listen(self, on_wake: Callable[[str], None], stop: asyncio.Event) -> None:
        await stop.wait()

    async def close(self) -> None:
        return None


class PgWakeups:
    """NOTIFY from a connection of its own (not the pool: a wake-up never waits for one),
    LISTEN on another, both reopened after a loss."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._sender: asyncpg.Connection | None = None
        self._pending: set[str] = set()
        self._sending: asyncio.Task[None] | None = None

    def notify(self, payload: str) -> None:
        self._pending.add(payload)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._pending:
            payloads, self._pending = self._pending, set()
            try:
                if self._sender is None or self._sender.is_closed():
                    self._sender = await _connect(self._dsn)
                for payload in sorted(payloads):
                    await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except _LOST as exc:  # workers poll: the work is found a little later
                log.warning("wakeups.notify_failed error=%s", type(exc).__name__)
                await self._drop_sender()
                return

    async def listen(self, on_wake: Callable[[str], None], stop: asyncio.Event) -> None:
        """Until `stop`: call on_wake(payload) for every NOTIFY on the channel."""
        attempt = 0
        while not stop.is_set():
            try:
                conn = await _connect(self._dsn)
            except _LOST as exc:
                attempt += 1
                log.warning(
                    "wakeups.listen_failed error=%s attempt=%d", type(exc).__name__, attempt
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), compute_backoff(attempt))
                continue
            attempt = 0
            try:
                await _listen_on(conn, on_wake, stop)
            except _LOST as exc:
                log.warning("wakeups.listen_lost error=%s", type(exc).__name__)
            finally:
                with contextlib.suppress(*_LOST):
                    await asyncio.wait_for(conn.close(), CONNECT_TIMEOUT_SECONDS)

    async def close(self) -> None:
        if self._sending is not None:
            self._sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sending
        await self._drop_sender()

    async def _drop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            with contextlib.suppress(*_LOST):
                await asyncio.wait_for(sender.close(), CONNECT_TIMEOUT_SECONDS)


def open_wakeups(database_url: str) -> Wakeups:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return NoWakeups()
    return PgWakeups(url.set(drivername="postgresql").render_as_string(hide_password=False))


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)


async def _listen_on(
    conn: asyncpg.Connection, on_wake: Callable[[str], None], stop: asyncio.Event
) -> None:
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _: lost.set())
    await conn.add_listener(CHANNEL, lambda _c, _p, _ch, payload: on_wake(payload))
    on_wake(OUTBOX)  # anything committed while nobody listened
    await _keep_alive(conn, stop, lost)


async def _keep_alive(conn: asyncpg.Connection, stop: asyncio.Event, lost: asyncio.Event) -> None:
    """Until stop or loss; a query now and then notices a connection that died silently."""
    while not (stop.is_set() or lost.is_set()):
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
        try:
            await asyncio.wait(waits, timeout=KEEPALIVE_SECONDS, return_when="FIRST_COMPLETED")
        finally:
            for task in waits:
                task.cancel()
        if not (stop.is_set() or lost.is_set()):
            await asyncio.wait_for(conn.execute("SELECT 1"), CONNECT_TIMEOUT_SECONDS)
