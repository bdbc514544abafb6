"""In-memory hub.core.ports.Privacy."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from hub.core.ports import AlreadyExists
from hub.core.records import PupilAccessRecord, SuppressionRecord
from tests.fakes.state import FakeRepo


class FakePrivacy(FakeRepo):
    async def pupil_access(self, agreement_id: str | None = None) -> list[PupilAccessRecord]:
        return [
            record
            for key, record in sorted(self._state.pupil_access.items())
            if agreement_id is None or key[0] == agreement_id
        ]

    async def save_pupil_access(self, record: PupilAccessRecord) -> None:
        self._state.pupil_access[(record.agreement_id, record.laestab)] = record

    async def cohorts(self) -> dict[tuple[str, str], frozenset[str]]:
        return dict(self._state.cohorts)

    async def replace_cohort(self, subscriber: str, cohort: str, members: Sequence[str]) -> None:
        # An emptied cohort has no rows left in SQL, so it is not listed at all.
        self._state.cohorts.pop((subscriber, cohort), None)
        if members:
            self._state.cohorts[(subscriber, cohort)] = frozenset(members)

    async def suppressions(self, active_only: bool = True) -> list[SuppressionRecord]:
        listed = sorted(self._state.suppressions.values(), key=lambda s: (s.created_at, s.id))
        return [s for s in listed if not active_only or s.lifted_at is None]

    async def add_suppression(self, record: SuppressionRecord) -> None:
        if record.id in self._state.suppressions:
            raise AlreadyExists(f"suppression {record.id} exists")
        self._state.suppressions[record.id] = record

    async def lift_suppression(
        self, suppression_id: str, at: datetime, by: str, reason: str
    ) -> bool:
        record = self._state.suppressions.get(suppression_id)
        if record is None or record.lifted_at is not None:
            return False
        lifted = dataclasses.replace(record, lifted_at=at, lifted_by=by, lift_reason=reason)
        self._state.suppressions[suppression_id] = lifted
        return True
