"""Alembic environment for the hub schema.

hub.store.migrate.migrate() runs migrations programmatically and hands over an open
connection in `config.attributes["connection"]`. For development from the command line
(`alembic -c hub/store/alembic.ini revision --autogenerate -m ...`) the database comes from
`-x url=...` or HUB_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from hub.store.engine import create_engine, normalise_url
from hub.store.models import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "HUB_DATABASE_URL"
    )
    if not url:
        raise RuntimeError("pass -x url=... or set HUB_DATABASE_URL")
    return url


async def _run_with_own_engine() -> None:
    engine = create_engine(_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_configure)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(url=normalise_url(_url()), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        _run_offline()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_with_own_engine())


_main()
