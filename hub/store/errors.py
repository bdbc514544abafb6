"""Which database failures mean "the store is unavailable" (retry later) rather than a bug.

The line matters: StoreUnavailable makes ingest answer a transient error (the agent resends)
and the dispatcher back off, so it must cover outages, locks and full disks, but never a
programming error such as bad SQL, which would otherwise be retried forever.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

# The pipeline owns these exceptions (hub.core.ports); the store raises them.
from hub.core.ports import AlreadyExists, DuplicateMessage, StoreUnavailable

__all__ = [
    "AlreadyExists",
    "DuplicateMessage",
    "StoreUnavailable",
    "is_unavailable",
    "unavailable_as_store_error",
]

# SQLite primary result codes: busy, locked, nomem, readonly, ioerr, corrupt, full,
# cantopen, protocol, notadb.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 11, 13, 14, 15, 26})

# PostgreSQL SQLSTATE classes/codes: connection exception, insufficient resources (disk
# full, too many connections), operator intervention (shutdown, starting up), system
# error (I/O), read-only transaction (a standby after failover), lock not available,
# serialization failure and deadlock (transient by definition).
_PG_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_PG_UNAVAILABLE_CODES = frozenset({"25006", "55P03", "40001", "40P01"})


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OSError | sa_exc.TimeoutError):
        return True  # refused/reset sockets, timeouts (TimeoutError is an OSError), pool
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or _dbapi_unavailable(exc.orig)
    return False


def _dbapi_unavailable(orig: BaseException | None) -> bool:
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is None:  # raised by the driver itself, e.g. "no active connection"
            return isinstance(orig, sqlite3.OperationalError)
        return (code & 0xFF) in _SQLITE_UNAVAILABLE
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _PG_UNAVAILABLE_CLASSES or sqlstate in _PG_UNAVAILABLE_CODES
    cause = orig.__cause__ if orig is not None else None
    return cause is not None and is_unavailable(cause)


@contextmanager
def unavailable_as_store_error() -> Iterator[None]:
    """Re-raise outage-type failures as StoreUnavailable; let everything else through."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            raise StoreUnavailable(_describe(exc)) from exc
        raise


def _describe(exc: BaseException) -> str:
    # Statements and parameters may hold personal data: keep only the type and first line.
    orig = getattr(exc, "orig", None) or exc
    first_line = str(orig).splitlines()[0] if str(orig) else ""
    return f"{type(orig).__name__}: {first_line}"[:300]
