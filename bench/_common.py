"""Shared pieces of the benchmarks: databases, queue consumers, clean-up, statistics and
machine facts. Measures only; nothing here asserts a figure."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg  # type: ignore[import-untyped]
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.engine import make_url

import hub
from hub.core import naming

# The hub under test is whichever `hub` package Python imports (the editable install, or a
# snapshot put first on PYTHONPATH); its own example configuration is used.
HUB_ROOT = Path(hub.__file__).resolve().parents[1]
COUNTY = HUB_ROOT / "deploy/examples/county.yaml"
DEFAULT_AMQP_URL = os.environ.get("HUB_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DEFAULT_PG_URL = os.environ.get(
    "HUB_BENCH_PG_URL", os.environ.get("HUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
)

_REFID = re.compile(rb"<(?:\w+:)?LearnerAttendance\s[^>]*?(?<=\s)RefId=\"([0-9A-Fa-f]+)\"")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def attendance_refid(body: bytes) -> str | None:
    """The LearnerAttendance RefId inside a copy (the key that maps a copy to its POST)."""
    found = _REFID.search(body)
    return found.group(1).decode().upper() if found else None


# -- databases --------------------------------------------------------------------------


def _pg_url(server: str, database: str, driver: str) -> str:
    url = make_url(server).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(kind: str, tmp: Path, pg_server: str) -> AsyncIterator[str]:
    """Yield the SQLAlchemy URL of an empty database: a SQLite file in `tmp`, or a uniquely
    named PostgreSQL database that is dropped (connections terminated) afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'hub.db'}"
        return
    name = f"hub_bench_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(_pg_url(pg_server, "postgres", "postgresql"), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _pg_url(pg_server, name, "postgresql+asyncpg")
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def postgres_version(pg_server: str) -> str:
    try:
        conn = await asyncpg.connect(_pg_url(pg_server, "postgres", "postgresql"), timeout=5)
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


# -- RabbitMQ ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    queue: str
    at: float  # time.perf_counter() when the consumer callback started
    message_id: str
    headers: dict[str, Any]
    body: bytes


@dataclass
class Sink:
    """One consumer per queue (own connection, own channel, prefetch N, ack per message),
    recording the first arrival of every copy (de-duplicated on queue and message_id, as
    a subscriber must) until `expected` distinct copies have arrived."""

    amqp_url: str
    queues: Sequence[str]
    expected: int
    prefetch: int = 200
    deliveries: list[Delivery] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    lost: list[str] = field(default_factory=list)  # connections the broker closed mid-run
    duplicates: int = 0  # deliveries of a copy already received
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _connections: list[aio_pika.abc.AbstractConnection] = field(default_factory=list)
    _closing: bool = False

    async def start(self) -> None:
        for queue_name in self.queues:
            connection = await aio_pika.connect(self.amqp_url, timeout=10)
            connection.close_callbacks.add(self._on_close(queue_name))
            self._connections.append(connection)
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            queue = await channel.get_queue(queue_name, ensure=True)
            await queue.consume(self._callback(queue_name))

    def _on_close(self, queue_name: str) -> Any:
        def closed(_sender: object, exc: BaseException | None = None) -> None:
            if not self._closing:  # e.g. the broker was stopped: the figures are void
                self.lost.append(f"{queue_name}: {exc!r}")
                self.done.set()

        return closed

    def _callback(self, queue_name: str) -> Any:
        async def on_message(message: AbstractIncomingMessage) -> None:
            at = time.perf_counter()
            key = (queue_name, message.message_id or "")
            if key in self._seen:  # at-least-once: a re-sent copy is counted, not used
                self.duplicates += 1
            else:
                self._seen.add(key)
                self.deliveries.append(
                    Delivery(queue_name, at, key[1], dict(message.headers or {}), message.body)
                )
            await message.ack()
            if len(self.deliveries) >= self.expected:
                self.done.set()

        return on_message

    async def wait(self, seconds: float) -> bool:
        """True when every expected copy arrived within `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), max(seconds, 0.1))
        return self.done.is_set() and not self.lost

    async def close(self) -> None:
        self._closing = True
        for connection in self._connections:
            with contextlib.suppress(Exception):
                await connection.close()
        self._connections.clear()


async def rabbitmq_version(amqp_url: str) -> str:
    try:
        connection = await aio_pika.connect(amqp_url, timeout=5)
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    async with connection:
        props = getattr(getattr(connection.transport, "connection", None), "server_properties", {})
        version = (props or {}).get("version", "?")
        return version.decode() if isinstance(version, bytes) else str(version)


async def delete_topology(
    amqp_url: str, prefix: str, subscriber_ids: Sequence[str], *, retry_seconds: float = 20.0
) -> None:
    """Remove every queue (and the dead-letter exchange) declared under `prefix`; keeps
    trying for `retry_seconds` while the broker is unreachable (e.g. being restarted), then
    prints what was left behind instead of raising."""
    names = [
        name
        for subscriber_id in subscriber_ids
        for name in (
            naming.subscriber_queue(subscriber_id, prefix),
            naming.dead_letter_queue(subscriber_id, prefix),
        )
    ]
    deadline = time.perf_counter() + retry_seconds
    while True:
        try:
            connection = await aio_pika.connect(amqp_url, timeout=5)
            async with connection:
                channel = await connection.channel()
                for name in names:
                    await channel.queue_delete(name)
                await channel.exchange_delete(naming.dead_letter_exchange(prefix))
            return
        except Exception as exc:
            if time.perf_counter() > deadline:
                print(
                    f"  ! could not delete {prefix}.* ({exc!r}); left behind: "
                    f"{', '.join([*names, naming.dead_letter_exchange(prefix)])}",
                    file=sys.stderr,
                )
                return
            await asyncio.sleep(1)


# -- statistics and machine facts -------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        if not seconds:
            return cls(0, math.nan, math.nan, math.nan)
        ordered = sorted(seconds)
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 99), ordered[-1])


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat; (0, 0) elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0, 0
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


@dataclass
class CpuMeter:
    """CPU used by this process and by the whole machine between start() and stop()."""

    process_seconds: float = 0.0
    wall_seconds: float = 0.0
    machine_busy: float = math.nan  # share of all cores busy, 0..1
    _start: tuple[float, float, int, int] = (0.0, 0.0, 0, 0)

    def start(self) -> None:
        self._start = (time.process_time(), time.perf_counter(), *_cpu_jiffies())

    def stop(self) -> None:
        cpu0, wall0, busy0, total0 = self._start
        busy1, total1 = _cpu_jiffies()
        self.process_seconds = time.process_time() - cpu0
        self.wall_seconds = time.perf_counter() - wall0
        if total1 > total0:
            self.machine_busy = (busy1 - busy0) / (total1 - total0)

    def describe(self, events: int) -> str:
        share = self.process_seconds / self.wall_seconds if self.wall_seconds else math.nan
        per_event = self.process_seconds / events * 1000 if events else math.nan
        return (
            f"bench process {share:.0%} of one core ({per_event:.1f} ms CPU per event, all "
            f"threads), machine {self.machine_busy:.0%} of {os.cpu_count()} cores busy"
        )


def hub_code() -> str:
    """Where the hub under test comes from, with its git commit when it is a clone."""
    try:
        head = subprocess.run(
            ["git", "-C", str(HUB_ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = "not a git checkout"
    return f"{HUB_ROOT} ({head})"


def machine_facts() -> dict[str, str]:
    try:
        affinity = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        affinity = "?"
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "?"
    return {
        "nproc": f"{affinity} (cpu_count {os.cpu_count()})",
        "cpu": model,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "sqlite": sqlite3.sqlite_version,
        "loadavg before": load,
    }
