"""Copies held for a delivery window, a suspension or a learner's identity (implements
hub.core.ports.Held), claimed under a lease and settled at most once.

The predicates are literal SQL matching the partial indexes ix_held_copies_*."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)

from hub.core.records import HeldRecord
from hub.store.models import held_copies, learners, object_learners, outbox
from hub.store.repos.base import AnyRow, SqlRepo, chunks, from_row, values_of

HELD_DECISIONS = frozenset({"release", "discard"})


class SqlHeld(SqlRepo):
    async def add(self, records: Sequence[HeldRecord]) -> None:
        if records:
            await self._execute(held_copies.insert(), [values_of(record) for record in records])

    async def claim_due(self, now: datetime, limit: int, lease_seconds: float) -> list[HeldRecord]:
        """Copies held in the same instant keep their outbox (arrival) order. Each claimed
        row is leased: another hub sharing the database skips it until the lease runs out
        (SKIP LOCKED on PostgreSQL; SQLite serialises writers)."""
        if limit <= 0:
            return []
        rows: list[AnyRow] = []
        for query in due_held_queries(now, limit):
            query = query.where(_lease_free(now))
            if self._postgres:
                query = query.with_for_update(of=held_copies, skip_locked=True)
            rows += (await self._execute(query)).all()
        # A row is in at most one list (decided rows never have a release time).
        claimed = sorted({row.id: row for row in rows}.values(), key=_held_order)[:limit]
        for chunk in chunks([str(row.id) for row in claimed]):
            lease = now + timedelta(seconds=lease_seconds)
            await self._execute(
                update(held_copies).where(held_copies.c.id.in_(chunk)).values(lease_until=lease)
            )
        return [_held(row) for row in claimed]

    async def decide(self, agreement_id: str, decision: str, now: datetime) -> int:
        """Decide the unsettled copies held for a suspension of `agreement_id`.

        "release": claim_due() hands them out from now on. "discard": they are settled at
        once (outcome "discarded") and never leave, except a copy a releaser has claimed
        and may be publishing right now (it is released, and its disclosure recorded).
        Returns how many rows were decided.
        """
        if decision not in HELD_DECISIONS:
            raise ValueError(f"decision must be one of {sorted(HELD_DECISIONS)}: {decision!r}")
        values: dict[str, Any] = {"decision": decision}
        where = [
            _held_unsettled(),
            held_copies.c.agreement_id == agreement_id,
            held_copies.c.reason == "suspended",
        ]
        if decision == "discard":
            values.update(settled_at=now, outcome="discarded")
            where.append(_lease_free(now))
        statement = update(held_copies).where(*where).values(values)
        return int((await self._execute(statement)).rowcount)

    async def settle(self, held_ids: Sequence[str], outcome: str, at: datetime) -> list[str]:
        """Guarded on settled_at: of two claimers (one whose lease ran out) only the first
        settles a row, and only it records the row's disclosure."""
        settled: list[str] = []
        for chunk in chunks(held_ids):
            statement = (
                update(held_copies)
                .where(held_copies.c.id.in_(chunk), _held_unsettled())
                .values(settled_at=at, outcome=outcome, lease_until=None)
                .returning(held_copies.c.id)
            )
            settled += [str(i) for i in (await self._execute(statement)).scalars().all()]
        return settled

    async def requeue(self, held_id: str, reason: str, release_after: datetime | None) -> None:
        statement = (
            update(held_copies)
            .where(held_copies.c.id == held_id, _held_unsettled())
            .values(reason=reason, release_after=release_after, decision=None, lease_until=None)
        )
        await self._execute(statement)

    async def wake_identity(
        self, now: datetime, *, learner: str | None = None, object_refid: str | None = None
    ) -> int:
        about: list[ColumnElement[bool]] = []
        if learner is not None:
            mapped = select(object_learners.c.object_refid).where(
                object_learners.c.learner_refid == learner
            )
            about += [outbox.c.subject_refid == learner, outbox.c.object_refid.in_(mapped)]
        if object_refid is not None:
            about.append(outbox.c.object_refid == object_refid)
        return await self._wake(now, or_(*about) if about else None)

    async def wake_identities(
        self, now: datetime, *, learners: Sequence[str], object_refids: Sequence[str]
    ) -> int:
        """wake_identity for many learners and objects at once (the group commit's)."""
        woken = 0
        for chunk in chunks(learners):
            mapped = select(object_learners.c.object_refid).where(
                object_learners.c.learner_refid.in_(chunk)
            )
            about = or_(outbox.c.subject_refid.in_(chunk), outbox.c.object_refid.in_(mapped))
            woken += await self._wake(now, about)
        for chunk in chunks(object_refids):
            woken += await self._wake(now, outbox.c.object_refid.in_(chunk))
        return woken

    async def wake_resolved(self, now: datetime) -> int:
        mapped = (
            select(object_learners.c.learner_refid)
            .where(object_learners.c.object_refid == outbox.c.object_refid)
            .scalar_subquery()
        )
        known = select(learners.c.refid).where(learners.c.upn.is_not(None))
        return await self._wake(now, func.coalesce(outbox.c.subject_refid, mapped).in_(known))

    async def _wake(self, now: datetime, about: ColumnElement[bool] | None) -> int:
        # Driven from the (few) copies awaiting identity, through their partial index.
        where = [_held_identity(), held_copies.c.release_after.is_(None)]
        if about is not None:
            where.append(exists().where(outbox.c.id == held_copies.c.outbox_id, about))
        statement = update(held_copies).where(*where).values(release_after=now)
        return int((await self._execute(statement)).rowcount)

    async def expired_identity(self, held_before: datetime, limit: int) -> list[HeldRecord]:
        query = (
            select(held_copies)
            .where(_held_identity(), held_copies.c.held_at < held_before)
            .order_by(held_copies.c.held_at)
            .limit(limit)
        )
        return [_held(row) for row in (await self._execute(query)).all()]

    async def unsettled(
        self,
        *,
        reason: str | None = None,
        subscriber: str | None = None,
        agreement_id: str | None = None,
        limit: int = 1000,
    ) -> list[HeldRecord]:
        query = select(held_copies).where(_held_unsettled())
        for column, value in (
            (held_copies.c.reason, reason),
            (held_copies.c.subscriber, subscriber),
            (held_copies.c.agreement_id, agreement_id),
        ):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(held_copies.c.held_at, held_copies.c.id).limit(limit)
        return [_held(row) for row in (await self._execute(query)).all()]

    async def summary(self) -> dict[str, dict[str, int]]:
        """{agreement_id: {reason: unsettled copies}}."""
        keys = (held_copies.c.agreement_id, held_copies.c.reason)
        query = select(*keys, func.count()).where(_held_unsettled()).group_by(*keys)
        summary: dict[str, dict[str, int]] = {}
        for agreement_id, reason, count in (await self._execute(query)).all():
            summary.setdefault(str(agreement_id), {})[str(reason)] = int(count)
        return summary


def due_held_queries(now: datetime, limit: int) -> tuple[Select[Any], Select[Any]]:
    """claim_due()'s two lookups, each served by its own partial index: copies whose time
    has come (ix_held_copies_due), and released suspended copies (ix_held_copies_released).
    Two plain queries rather than one OR across two partial indexes: each plan is then
    simple and the same on both backends."""
    due = _held_query(_held_due(), held_copies.c.release_after <= now)
    released = _held_query(_held_released())
    return due.limit(limit), released.limit(limit)


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


def _held_due() -> ColumnElement[bool]:
    return _held_unsettled() & held_copies.c.release_after.is_not(None)


def _held_identity() -> ColumnElement[bool]:
    return _held_unsettled() & (held_copies.c.reason == literal_column("'identity'"))


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(held_copies.c.lease_until.is_(None), held_copies.c.lease_until < now)


def _held_released() -> ColumnElement[bool]:
    return _held_unsettled() & (held_copies.c.decision == literal_column("'release'"))


def _held_order(row: AnyRow) -> tuple[datetime, int, str]:
    return (row.held_at, int(row.outbox_seq), str(row.id))


def _held(row: AnyRow) -> HeldRecord:
    return from_row(HeldRecord, row)
