"""Shared pieces of the benchmarks: databases, queue consumers, clean-up, statistics and
machine facts. Measures only; nothing here asserts a figure."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

import hub

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


async def rabbitmq_version(amqp_url: str) -> str:
    try:
        connection = await aio_pika.connect(amqp_url, timeout=5)
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    async with connection:
        props = getattr(getattr(connection.transport, "connection", None), "server_properties", {})
        version = (props or {}).get("version", "?")
        return version.decode() if isinstance(version, bytes) else str(version)


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
