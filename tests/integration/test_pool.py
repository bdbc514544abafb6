"""The PostgreSQL pool is sized by settings and keeps its connections: transactions at the
configured concurrency are served by the same backends round after round."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from hub.composition import pool_settings
from hub.settings import Settings
from hub.store import PoolSettings, open_store
from tests.db_fixtures import fresh_pg_database

pytestmark = pytest.mark.integration


def test_settings_reach_the_pool() -> None:
    settings = Settings(
        db_pool_size=7, db_max_overflow=3, db_pool_recycle_seconds=120, db_pool_pre_ping=False
    )
    assert pool_settings(settings) == PoolSettings(
        size=7, max_overflow=3, recycle_seconds=120, pre_ping=False
    )


async def test_concurrent_transactions_reuse_the_pools_backends() -> None:
    concurrency, rounds = 8, 5
    async with fresh_pg_database() as url:
        store = await open_store(url, pool=PoolSettings(size=concurrency, max_overflow=4))
        try:
            barrier = asyncio.Barrier(concurrency)  # all eight hold a connection at once

            async def backend() -> int:  # a checkout as store.transaction() makes one
                async with store.engine.connect() as connection:
                    pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
                    await barrier.wait()
                    assert isinstance(pid, int)
                    return pid

            seen: set[int] = set()
            for _ in range(rounds):
                seen.update(await asyncio.gather(*(backend() for _ in range(concurrency))))
            # SQLAlchemy's default pool (5 kept, overflow closed on return) would open
            # 5 + 3 x rounds backends here.
            assert len(seen) == concurrency
            assert store.engine.pool.size() == concurrency  # type: ignore[attr-defined]
        finally:
            await store.close()
