"""SqlStore: the pipeline's `Store` over an async SQLAlchemy engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.core.records import Staged
from hub.store import accept
from hub.store.engine import PoolSettings, create_engine
from hub.store.errors import StoreUnavailable, unavailable_as_store_error
from hub.store.group import GroupCommit
from hub.store.migrate import migrate_engine
from hub.store.tx import SqlTx

if TYPE_CHECKING:
    from hub.core.ports import Stage, Store, Tx

log = logging.getLogger(__name__)

PURGED_TABLES = ("outbox", "messages", "held_copies", "response_packets", "disclosures", "audit")
# A health check must answer quickly even when the database hangs rather than refuses.
PING_TIMEOUT_SECONDS = 5.0
# Readiness may be polled often (every load balancer, every few seconds): at most one real
# write probe per this many seconds; callers in between get the last outcome.
PROBE_CACHE_SECONDS = 1.0
# The write probe: a real committed write that changes nothing, on the one row every hub
# database has (a table of its own would need a migration). SQLite appends the page to the
# WAL and fsyncs it; PostgreSQL writes a row version and flushes the commit record. A
# rolled-back write would prove nothing: SQLite need not touch the disk for it.
WRITE_PROBE = "UPDATE alembic_version SET version_num = version_num"

Health = Literal["ok", "unavailable", "unwritable"]


class SqlStore:
    """Implements hub.core.ports.Store. Owns the engine; close() disposes of it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # SQLite has one writer; every transaction here begins IMMEDIATE. Queueing them on
        # an asyncio lock is fair and cheap, where contending inside SQLite spins until
        # busy_timeout and then refuses (measured: 11/1 refusals at 16 concurrent posters).
        self._serial = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._probe_lock = asyncio.Lock()
        self._probed: tuple[float, Health] | None = None
        # One writer for ingest: concurrent requests share a transaction and a commit.
        self._group: GroupCommit[SqlTx, Staged] = GroupCommit(
            self.transaction, accept.prepare, accept.write
        )

    @property
    def group_commits(self) -> int:
        """Groups committed so far (figures, tests)."""
        return self._group.groups

    async def accept(self, stage: Stage, *, agent_id: str, sif_msg_id: str) -> bool:
        """hub.core.ports.Store.accept: see hub.store.group."""
        return await self._group.submit(stage, (agent_id, sif_msg_id))

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def directory(self) -> Path | None:
        """The directory holding the SQLite database file (None: PostgreSQL, in memory)."""
        database = self._engine.url.database or ""
        if self._engine.dialect.name != "sqlite" or database in ("", ":memory:"):
            return None
        path = database.removeprefix("file:").split("?", 1)[0]
        return Path(path).expanduser().resolve().parent

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTx]:
        """Commit when the block exits cleanly, roll back when it raises.

        Outages while connecting or committing surface as StoreUnavailable; so do those
        inside SqlTx's statements. Exceptions of the caller's own pass through unchanged.
        """
        try:
            async with self._serial or contextlib.nullcontext():
                connection = await self._begin()
                try:
                    try:
                        yield SqlTx.on(connection)
                    except BaseException:
                        await _rollback_quietly(connection)
                        raise
                    with unavailable_as_store_error():
                        await connection.commit()
                finally:
                    await _close_quietly(connection)
        except StoreUnavailable:
            self._probed = None  # readiness must not answer "ok" from before the outage
            raise

    async def _begin(self) -> AsyncConnection:
        with unavailable_as_store_error():
            connection = await self._engine.connect()
        try:
            with unavailable_as_store_error():
                await connection.begin()
        except BaseException:
            await _close_quietly(connection)
            raise
        return connection

    async def ping(self) -> None:
        with unavailable_as_store_error():
            async with asyncio.timeout(PING_TIMEOUT_SECONDS), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

    async def health(self) -> Health:
        """unavailable: not even a read works; unwritable: reads work, a committed write
        does not (read-only or full disk, a standby after failover). Probed at most once
        per PROBE_CACHE_SECONDS, one probe at a time."""
        async with self._probe_lock:
            now = asyncio.get_running_loop().time()
            if self._probed is None or now - self._probed[0] >= PROBE_CACHE_SECONDS:
                self._probed = (now, await self._probe())
            return self._probed[1]

    async def _probe(self) -> Health:
        try:
            await self.ping()
        except StoreUnavailable:
            return "unavailable"
        try:
            with unavailable_as_store_error():
                async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                    await self._write_probe()
        except StoreUnavailable:
            return "unwritable"
        return "ok"

    async def _write_probe(self) -> None:
        async with self._serial or contextlib.nullcontext():
            connection = await self._begin()
            try:
                with unavailable_as_store_error():
                    await connection.execute(text(WRITE_PROBE))
                    await connection.commit()
            except BaseException:
                await _rollback_quietly(connection)
                raise
            finally:
                await _close_quietly(connection)

    async def reclaim_space(self, full: bool = False) -> None:
        """After a purge. SQLite: hand free pages back to the file system (incremental
        vacuum; `full` rewrites the file with VACUUM, which also converts a file created
        before incremental auto-vacuum). PostgreSQL: autovacuum makes deleted rows' space
        reusable; `full` runs VACUUM ANALYZE on the purged tables now (never VACUUM FULL,
        which locks them)."""
        async with self._serial or contextlib.nullcontext():
            with unavailable_as_store_error():
                async with self._engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    driver = raw.driver_connection
                    assert driver is not None
                    if self._engine.dialect.name == "sqlite":
                        # executescript steps the statement to the end: a plain execute of
                        # incremental_vacuum frees one page only.
                        await driver.executescript(
                            "VACUUM;" if full else "PRAGMA incremental_vacuum;"
                        )
                    elif full:
                        await driver.execute(f"VACUUM ANALYZE {', '.join(PURGED_TABLES)}")

    async def close(self) -> None:
        """SQLite: first fold the WAL back into the database file and truncate it, so a
        clean stop leaves one self-contained file (nothing else writes by now: the hub
        stops its background tasks and the HTTP server first)."""
        await self._group.close()
        if self._engine.dialect.name == "sqlite":
            try:
                await self._checkpoint()
            except Exception as exc:  # the data is safe in the WAL all the same
                log.warning("store.checkpoint_failed error=%s", type(exc).__name__)
        await self._engine.dispose()

    async def _checkpoint(self) -> None:
        async with self._serial or contextlib.nullcontext(), self._engine.connect() as conn:
            # On the driver's connection: SQLAlchemy would wrap it in BEGIN IMMEDIATE, and
            # a checkpoint cannot finish inside a transaction of its own.
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            async with driver.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
                busy, _, _ = await cursor.fetchone()
            if busy:  # another process still reads the file
                log.warning("store.checkpoint_incomplete")


async def open_store(
    url: str, *, migrate: bool = True, pool: PoolSettings | None = None
) -> SqlStore:
    """Build the engine for `url` (`pool`: PostgreSQL's connection pool), upgrade the
    schema to head unless told not to."""
    engine = create_engine(url, pool)
    if migrate:
        try:
            await migrate_engine(engine)
        except BaseException:
            await engine.dispose()
            raise
    return SqlStore(engine)


async def _rollback_quietly(connection: AsyncConnection) -> None:
    # The original error is the one worth reporting; a dead connection cannot roll back
    # anyway (the server discards the transaction when the session ends).
    try:
        await connection.rollback()
    except Exception:
        log.debug("rollback failed", exc_info=True)


async def _close_quietly(connection: AsyncConnection) -> None:
    # After a successful commit the data is safe; failing to return the connection to
    # the pool must not turn an accepted message into an error.
    try:
        await connection.close()
    except Exception:
        log.warning("closing a database connection failed", exc_info=True)


if TYPE_CHECKING:

    def _conforms(store: SqlStore, tx: SqlTx) -> tuple[Store, Tx]:
        """Checked by mypy only: SqlStore and SqlTx satisfy the pipeline's protocols."""
        return store, tx
