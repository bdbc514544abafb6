"""The disclosure log: one row per copy released, subject access, acknowledgements, and
the hub's figures (implements hub.core.ports.Disclosures)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, or_, select, update

from hub.core.envelope import Action
from hub.core.records import DisclosureRecord, Stats
from hub.store.models import disclosures as disclosure_table
from hub.store.models import learners, messages, outbox, rejections
from hub.store.repos.base import AnyRow, SqlRepo, chunks, from_row, values_of
from hub.store.repos.outbox import pending


class SqlDisclosures(SqlRepo):
    async def add(self, records: Sequence[DisclosureRecord]) -> None:
        if records:
            rows = [_disclosure_values(record) for record in records]
            await self._execute(disclosure_table.insert(), rows)

    async def for_subject(
        self, *, upn: str | None = None, refid: str | None = None, limit: int = 10_000
    ) -> list[DisclosureRecord]:
        """Subject access: every copy released about a learner, oldest first.

        By UPN: rows recorded with that UPN, and rows recorded under any RefId the learners
        table maps to it (copies that left before the UPN was known). By RefId: rows of
        that subject_refid. Both given: either matches.
        """
        if upn is None and refid is None:
            raise ValueError("give a upn or a refid")
        refids = {refid} if refid is not None else set()
        if upn is not None:
            # Resolved first, so the main query is a plain OR of two indexed lookups (an
            # IN (subquery) inside an OR defeats PostgreSQL's index use).
            query = select(learners.c.refid).where(learners.c.upn == upn)
            refids.update((await self._execute(query)).scalars())
        statement = subject_access_query(upn=upn, refids=sorted(refids), limit=limit)
        return [_disclosure(row) for row in (await self._execute(statement)).all()]

    async def logged(self, copy_msg_ids: Sequence[str]) -> set[str]:
        """Those of these copies that already have their disclosure row."""
        found: set[str] = set()
        for chunk in chunks(copy_msg_ids):
            query = select(disclosure_table.c.copy_msg_id).where(
                disclosure_table.c.copy_msg_id.in_(chunk)
            )
            found.update((await self._execute(query)).scalars())
        return found

    async def acknowledge(self, copy_msg_ids: Sequence[str], at: datetime) -> int:
        """Record the recipient's acknowledgement; the first one is kept. Returns how many
        rows were newly acknowledged."""
        updated = 0
        for chunk in chunks(copy_msg_ids):
            statement = (
                update(disclosure_table)
                .where(
                    disclosure_table.c.copy_msg_id.in_(chunk),
                    disclosure_table.c.acknowledged_at.is_(None),
                )
                .values(acknowledged_at=at)
            )
            updated += int((await self._execute(statement)).rowcount)
        return updated

    async def recorded(self, copy_msg_ids: Sequence[str]) -> dict[str, bool]:
        table = disclosure_table
        found: dict[str, bool] = {}
        for chunk in chunks(copy_msg_ids):
            query = select(table.c.copy_msg_id, table.c.acknowledged_at).where(
                table.c.copy_msg_id.in_(chunk)
            )
            for row in (await self._execute(query)).all():
                found[row[0]] = found.get(row[0], False) or row[1] is not None
        return found

    async def stats(self) -> Stats:
        received_key = func.coalesce(messages.c.object_name, messages.c.kind)
        return Stats(
            received=await self._counts(received_key, messages),
            rejected=await self._rejected_counts(),
            routed=await self._counts(outbox.c.object_name, outbox, outbox.c.done_at.is_not(None)),
            delivered=await self._counts(disclosure_table.c.subscriber, disclosure_table),
            pending=await self._pending_count(),
            parked=await self._pending_count(outbox.c.parked_at.is_not(None)),
        )

    async def _counts(
        self, key: ColumnElement[Any], table: Table, *where: ColumnElement[bool]
    ) -> dict[str, int]:
        query = select(key, func.count()).select_from(table).where(*where).group_by(key)
        return {str(row[0]): int(row[1]) for row in (await self._execute(query)).all()}

    async def _rejected_counts(self) -> dict[str, int]:
        keys = (rejections.c.category, rejections.c.code)
        query = select(*keys, func.count()).group_by(*keys)
        rows = (await self._execute(query)).all()
        return {f"{row[0]}/{row[1]}": int(row[2]) for row in rows}

    async def _pending_count(self, *where: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(outbox).where(pending(), *where)
        return int((await self._execute(query)).scalar_one())


def subject_access_query(*, upn: str | None, refids: Sequence[str], limit: int) -> Select[Any]:
    """The disclosures about one learner: by UPN and/or by any of `refids` (an OR of the
    two indexed lookups ix_disclosures_upn and ix_disclosures_subject_refid)."""
    table = disclosure_table
    matches: list[ColumnElement[bool]] = []
    if upn is not None:
        matches.append(table.c.upn == upn)
    if refids:
        matches.append(table.c.subject_refid.in_(list(refids)))
    if not matches:
        raise ValueError("give a upn or at least one refid")
    return (
        select(table).where(or_(*matches)).order_by(table.c.published_at, table.c.id).limit(limit)
    )


def _disclosure_values(record: DisclosureRecord) -> dict[str, Any]:
    return values_of(record, action=record.action.value, paths=list(record.paths))


def _disclosure(row: AnyRow) -> DisclosureRecord:
    return from_row(DisclosureRecord, row, action=Action(row.action), paths=tuple(row.paths))
