"""Database fixtures (pytest plugin: `pytest_plugins = ["tests.db_fixtures"]`).

- `database_url`: a fresh, empty database, once on SQLite (a file in tmp_path) and once on
  PostgreSQL (a uniquely named database, dropped afterwards). The PostgreSQL server is
  HUB_TEST_PG_URL, default postgresql://postgres@127.0.0.1:5432.
- `store`: a migrated SqlStore on that database, closed afterwards.

Creating a PostgreSQL database costs about 60 ms, so these stay function-scoped: every
test starts from nothing and no test can see another's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from hub.store import SqlStore, open_store

PG_URL_ENV = "HUB_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432"
BACKENDS = ["sqlite", "postgresql"]


def pg_server_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


def _pg_url(database: str, driver: str) -> str:
    url = make_url(pg_server_url()).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """Create an empty database; yield its asyncpg SQLAlchemy URL; drop it afterwards."""
    name = f"hub_test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(_pg_url("postgres", "postgresql"), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _pg_url(name, "postgresql+asyncpg")
        finally:
            await _drop_database(admin, name)
    finally:
        await admin.close()


async def _drop_database(admin: asyncpg.Connection, name: str) -> None:
    # A test that failed mid-way may leave connections open; they must not block the drop.
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        name,
    )
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'hub.db'}"


@asynccontextmanager
async def fresh_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """An empty database on `backend` ("sqlite" or "postgresql"), gone afterwards."""
    if backend == "sqlite":
        yield sqlite_url(directory)
        return
    async with fresh_pg_database() as url:
        yield url


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[SqlStore]:
    opened = await open_store(url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    async with migrated_store(database_url) as opened:
        yield opened
