"""Copies held for a delivery window or a suspension (implements hub.core.ports.Held).

The predicates are literal SQL matching the partial indexes ix_held_copies_*."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select, update

from hub.core.records import HeldRecord
from hub.store.models import held_copies, outbox
from hub.store.repos.base import AnyRow, SqlRepo, chunks, from_row, utcnow, values_of

HELD_DECISIONS = frozenset({"release", "discard"})


class SqlHeld(SqlRepo):
    async def add(self, records: Sequence[HeldRecord]) -> None:
        if records:
            await self._execute(held_copies.insert(), [values_of(record) for record in records])

    async def due(self, now: datetime, limit: int) -> list[HeldRecord]:
        """Unsettled copies to release now, oldest first: those whose delivery window has
        opened, and suspended ones a decision released. Copies held in the same instant
        keep their outbox (arrival) order."""
        if limit <= 0:
            return []
        rows = [
            row
            for query in due_held_queries(now, limit)
            for row in (await self._execute(query)).all()
        ]
        # A row is in at most one list (reason 'schedule' copies are never decided).
        unique = {row.id: row for row in rows}.values()
        return [_held(row) for row in sorted(unique, key=_held_order)[:limit]]

    async def decide(self, agreement_id: str, decision: str) -> int:
        """Decide the unsettled copies held for a suspension of `agreement_id`.

        "release": due() hands them out from now on. "discard": they are settled at once
        (outcome "discarded") and never leave; due() would otherwise never return them,
        and nothing else could settle them. Returns how many rows were decided.
        """
        if decision not in HELD_DECISIONS:
            raise ValueError(f"decision must be one of {sorted(HELD_DECISIONS)}: {decision!r}")
        values: dict[str, Any] = {"decision": decision}
        if decision == "discard":
            values.update(settled_at=utcnow(), outcome="discarded")
        statement = (
            update(held_copies)
            .where(
                _held_unsettled(),
                held_copies.c.agreement_id == agreement_id,
                held_copies.c.reason == "suspended",
            )
            .values(values)
        )
        return int((await self._execute(statement)).rowcount)

    async def settle(self, held_ids: Sequence[str], outcome: str, at: datetime) -> None:
        """Record what became of these copies. Not guarded on settled_at: the caller
        reports what it actually did (a copy it published is "released" even if a discard
        decision settled the row meanwhile)."""
        for chunk in chunks(held_ids):
            statement = (
                update(held_copies)
                .where(held_copies.c.id.in_(chunk))
                .values(settled_at=at, outcome=outcome)
            )
            await self._execute(statement)

    async def summary(self) -> dict[str, dict[str, int]]:
        """{agreement_id: {reason: unsettled copies}}."""
        keys = (held_copies.c.agreement_id, held_copies.c.reason)
        query = select(*keys, func.count()).where(_held_unsettled()).group_by(*keys)
        summary: dict[str, dict[str, int]] = {}
        for agreement_id, reason, count in (await self._execute(query)).all():
            summary.setdefault(str(agreement_id), {})[str(reason)] = int(count)
        return summary


def due_held_queries(now: datetime, limit: int) -> tuple[Select[Any], Select[Any]]:
    """due()'s two lookups, each served by its own partial index: copies whose window
    has opened (ix_held_copies_scheduled), and released suspended copies
    (ix_held_copies_released). Two plain queries rather than one OR across two partial
    indexes: each plan is then simple and the same on both backends."""
    scheduled = _held_query(_held_scheduled(), held_copies.c.release_after <= now)
    released = _held_query(_held_released())
    return scheduled.limit(limit), released.limit(limit)


def _held_query(*where: ColumnElement[bool]) -> Select[Any]:
    # Joined to outbox only for the tie-break on arrival order (copies held by one batch
    # share held_at); an outbox row gone to retention sorts first within its instant.
    outbox_seq = func.coalesce(outbox.c.seq_no, 0).label("outbox_seq")
    return (
        select(held_copies, outbox_seq)
        .select_from(held_copies.outerjoin(outbox, outbox.c.id == held_copies.c.outbox_id))
        .where(*where)
        .order_by(held_copies.c.held_at, outbox_seq, held_copies.c.id)
    )


# Literal SQL (not bound parameters) so that the planners can prove the partial indexes
# ix_held_copies_* apply: a prepared statement's parameter proves nothing about them.
def _held_unsettled() -> ColumnElement[bool]:
    return held_copies.c.settled_at.is_(None)


def _held_scheduled() -> ColumnElement[bool]:
    return _held_unsettled() & (held_copies.c.reason == literal_column("'schedule'"))


def _held_released() -> ColumnElement[bool]:
    return _held_unsettled() & (held_copies.c.decision == literal_column("'release'"))


def _held_order(row: AnyRow) -> tuple[datetime, int, str]:
    return (row.held_at, int(row.outbox_seq), str(row.id))


def _held(row: AnyRow) -> HeldRecord:
    return from_row(HeldRecord, row)
