"""Durable state in SQL (sqlmodel/SQLAlchemy async): SQLite by default, PostgreSQL by URL.

Public API: open_store(url, pool=PoolSettings(...)) -> SqlStore (implements
hub.core.ports.Store), create_engine, migrate. Everything else in this package is an
implementation detail.
"""

from hub.store.engine import PoolSettings, create_engine
from hub.store.migrate import migrate
from hub.store.store import SqlStore, open_store
from hub.store.tx import SqlTx

__all__ = ["PoolSettings", "SqlStore", "SqlTx", "create_engine", "migrate", "open_store"]
