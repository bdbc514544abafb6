"""Bring a database to the newest schema (alembic `upgrade head`), from code.

The alembic scripts ship inside the package (hub/store/migrations), so an installed hub
migrates without an alembic.ini or a working directory. The whole upgrade runs in one
transaction; on PostgreSQL an advisory lock makes processes that start together (API and
dispatcher) take turns instead of racing to create the same tables. On SQLite the
transaction's BEGIN IMMEDIATE does the same.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.store.engine import create_engine
from hub.store.errors import unavailable_as_store_error

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# Any fixed 64-bit number; identifies "hub schema migration" among advisory locks.
PG_MIGRATION_LOCK = 0x5F1F_4B0B


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def migrate(url: str) -> None:
    """Upgrade the database at `url` to head; safe to call on every start."""
    engine = create_engine(url)
    try:
        await migrate_engine(engine)
    finally:
        await engine.dispose()


async def migrate_engine(engine: AsyncEngine) -> None:
    with unavailable_as_store_error():
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
    command.upgrade(alembic_config(connection), "head")
