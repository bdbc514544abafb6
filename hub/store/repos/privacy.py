"""Whose data may flow: schools' pupil lists per agreement, the cohorts recipient services
supply, and suppressed learners (implements hub.core.ports.Privacy)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update

from hub.core.records import PupilAccessRecord, SuppressionRecord
from hub.store.errors import AlreadyExists
from hub.store.models import cohort_members, pupil_access, suppressions
from hub.store.repos.base import AnyRow, SqlRepo, from_row

_PUPIL_ACCESS_KEY = ("agreement_id", "laestab")


class SqlPrivacy(SqlRepo):
    async def pupil_access(self, agreement_id: str | None = None) -> list[PupilAccessRecord]:
        query = select(pupil_access).order_by(pupil_access.c.agreement_id, pupil_access.c.laestab)
        if agreement_id is not None:
            query = query.where(pupil_access.c.agreement_id == agreement_id)
        return [_pupil_access(row) for row in (await self._execute(query)).all()]

    async def save_pupil_access(self, record: PupilAccessRecord) -> None:
        values = {
            "agreement_id": record.agreement_id,
            "laestab": record.laestab,
            "mode": record.mode,
            "learners": list(record.learners),
            "changed_at": record.changed_at,
            "changed_by": record.changed_by,
        }
        await self._upsert(pupil_access, values, _PUPIL_ACCESS_KEY)

    async def cohorts(self) -> dict[tuple[str, str], frozenset[str]]:
        """Every cohort with at least one member (an emptied cohort has no rows left)."""
        table = cohort_members
        query = select(table.c.subscriber, table.c.cohort, table.c.member)
        members: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        for row in (await self._execute(query)).all():
            members[(row.subscriber, row.cohort)].add(row.member)
        return {key: frozenset(value) for key, value in members.items()}

    async def replace_cohort(self, subscriber: str, cohort: str, members: Sequence[str]) -> None:
        table = cohort_members
        statement = sql_delete(table).where(
            table.c.subscriber == subscriber, table.c.cohort == cohort
        )
        await self._execute(statement)
        rows = [
            {"subscriber": subscriber, "cohort": cohort, "member": member}
            for member in dict.fromkeys(members)  # repeats would break the key
        ]
        if rows:
            await self._execute(table.insert(), rows)

    async def suppressions(self, active_only: bool = True) -> list[SuppressionRecord]:
        query = select(suppressions).order_by(suppressions.c.created_at, suppressions.c.id)
        if active_only:
            query = query.where(suppressions.c.lifted_at.is_(None))
        return [_suppression(row) for row in (await self._execute(query)).all()]

    async def add_suppression(self, record: SuppressionRecord) -> None:
        """Raises AlreadyExists when the id is taken (the transaction stays usable)."""
        statement = (
            self._insert(suppressions)
            .values(
                id=record.id,
                learner=record.learner,
                reason=record.reason,
                created_at=record.created_at,
                created_by=record.created_by,
                lifted_at=record.lifted_at,
                lifted_by=record.lifted_by,
                lift_reason=record.lift_reason,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        if (await self._execute(statement)).rowcount == 0:
            raise AlreadyExists(f"suppression {record.id} exists")

    async def lift_suppression(
        self, suppression_id: str, at: datetime, by: str, reason: str
    ) -> bool:
        """False when no such suppression is active (unknown id, or lifted already)."""
        statement = (
            update(suppressions)
            .where(suppressions.c.id == suppression_id, suppressions.c.lifted_at.is_(None))
            .values(lifted_at=at, lifted_by=by, lift_reason=reason)
        )
        return (await self._execute(statement)).rowcount == 1


def _pupil_access(row: AnyRow) -> PupilAccessRecord:
    return from_row(PupilAccessRecord, row, learners=tuple(row.learners))


def _suppression(row: AnyRow) -> SuppressionRecord:
    return from_row(SuppressionRecord, row)
