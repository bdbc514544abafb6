"""Build the async engine for a database URL.

URL forms:
- `sqlite+aiosqlite:///path/to/hub.db` (the parent directory is created)
- `postgresql+asyncpg://user@host:port/db`; `postgresql://...` is rewritten to asyncpg.

SQLite is tuned for durability first: an acknowledged message must survive kill -9, so WAL
with synchronous=FULL. Every transaction starts with BEGIN IMMEDIATE: a transaction that
reads then writes (check duplicate, then insert) would otherwise fail with SQLITE_BUSY
without waiting when another writer committed in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# A down PostgreSQL must fail fast, never hang a request or the dispatcher.
PG_CONNECT_TIMEOUT_SECONDS = 2.0
PG_COMMAND_TIMEOUT_SECONDS = 30.0
POOL_TIMEOUT_SECONDS = 10.0
SQLITE_BUSY_TIMEOUT_MS = 5000

SQLITE_PRAGMAS = (
    # Takes effect when the file is created (or at the next VACUUM): freed pages can then be
    # handed back to the file system after a retention purge (SqlStore.reclaim_space).
    "PRAGMA auto_vacuum=INCREMENTAL",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
)


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    """The PostgreSQL connection pool. Every HTTP request in flight and each background task
    (dispatch, release, backlog, policy refresh, purge) holds a connection for one
    transaction: `size` connections stay open for that concurrency and `max_overflow` more
    are opened for bursts. Overflow connections are closed as they come back, so a pool
    smaller than the steady concurrency opens and closes a backend per transaction."""

    size: int = 20
    max_overflow: int = 10
    # Replace a connection after this long (an idle-connection reaper or PgBouncer
    # rotation between hub and server must not hand the hub a dead socket).
    recycle_seconds: float = 1800.0
    # A round trip per checkout, so a connection the server dropped (restart, failover)
    # is replaced instead of failing the transaction that drew it.
    pre_ping: bool = True


def normalise_url(url: str) -> URL:
    """Parse `url`, choosing the async driver for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def create_engine(url: str, pool: PoolSettings | None = None) -> AsyncEngine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(parsed, pool or PoolSettings())
    raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")


def _sqlite_engine(url: URL) -> AsyncEngine:
    _make_parent_dir(url)
    engine = create_async_engine(url, pool_timeout=POOL_TIMEOUT_SECONDS)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def _make_parent_dir(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return  # in-memory or a URI filename: nothing to create
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the driver (see module docstring); PRAGMAs run outside a tx.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _postgres_engine(url: URL, pool: PoolSettings) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_recycle=pool.recycle_seconds,
        pool_pre_ping=pool.pre_ping,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "timeout": PG_CONNECT_TIMEOUT_SECONDS,
            "command_timeout": PG_COMMAND_TIMEOUT_SECONDS,
        },
    )
