"""What every repository shares: statement execution that reports outages as
StoreUnavailable, the dialect INSERT (ON CONFLICT on both backends), IN-list chunking and
the field-driven row <-> record mappers.

Repositories speak SQLAlchemy Core on one AsyncConnection that is already inside a
transaction; they never commit (SqlStore.transaction owns that). Core rather than the ORM:
the dispatcher moves hundreds of rows per batch and needs no identity map.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Executable, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store.errors import unavailable_as_store_error

# Rows and results of any width (SQLAlchemy 2.1 types them by column tuple).
AnyRow = Row[*tuple[Any, ...]]
AnyResult = CursorResult[*tuple[Any, ...]]
# Values per IN (...) list: well under SQLite's and asyncpg's 32,767 bind parameters.
IN_CHUNK = 500
R = TypeVar("R")


class SqlRepo:
    """A repository over one open transaction's connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"

    async def _execute(self, statement: Executable, params: Any = None) -> AnyResult:
        with unavailable_as_store_error():
            return await self._connection.execute(statement, params)

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """A dialect INSERT, which offers ON CONFLICT on both backends."""
        return postgresql.insert(table) if self._postgres else sqlite.insert(table)

    async def _upsert(self, table: Table, values: dict[str, Any], key: Sequence[str]) -> None:
        statement = self._insert(table).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=list(key),
            set_={name: statement.excluded[name] for name in values if name not in key},
        )
        await self._execute(statement)


def utcnow() -> datetime:
    return datetime.now(UTC)


def chunks(values: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), IN_CHUNK):
        yield unique[start : start + IN_CHUNK]


def from_row(record: type[R], row: AnyRow, **converted: Any) -> R:
    """A record built from the row's columns of the same names (plus conversions)."""
    values = {f.name: getattr(row, f.name) for f in fields(record)}  # type: ignore[arg-type]
    return record(**{**values, **converted})


def values_of(record: Any, **converted: Any) -> dict[str, Any]:
    """Column values for a record (plus conversions for JSON lists and enums). Shallow:
    records hold no nested records, and asdict's deep copy of every value was a hot spot."""
    return {**{f.name: getattr(record, f.name) for f in fields(record)}, **converted}
