"""SqlStore: the pipeline's `Store` over an async SQLAlchemy engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.store.engine import PoolSettings, create_engine
from hub.store.errors import unavailable_as_store_error
from hub.store.migrate import migrate_engine
from hub.store.tx import SqlTx

if TYPE_CHECKING:
    from hub.core.ports import Store, Tx

log = logging.getLogger(__name__)

PURGED_TABLES = ("outbox", "messages", "held_copies", "response_packets", "disclosures", "audit")
# A health check must answer quickly even when the database hangs rather than refuses.
PING_TIMEOUT_SECONDS = 5.0


class SqlStore:
    """Implements hub.core.ports.Store. Owns the engine; close() disposes of it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # SQLite has one writer; every transaction here begins IMMEDIATE. Queueing them on
        # an asyncio lock is fair and cheap, where contending inside SQLite spins until
        # busy_timeout and then refuses (measured: 11/1 refusals at 16 concurrent posters).
        self._serial = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTx]:
        """Commit when the block exits cleanly, roll back when it raises.

        Outages while connecting or committing surface as StoreUnavailable; so do those
        inside SqlTx's statements. Exceptions of the caller's own pass through unchanged.
        """
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
        await self._engine.dispose()


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
