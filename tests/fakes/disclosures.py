"""In-memory hub.core.ports.Disclosures (the figures count the other fakes' tables)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from hub.core.records import DisclosureRecord, Stats
from tests.fakes.state import FakeRepo


class FakeDisclosures(FakeRepo):
    async def add(self, records: Sequence[DisclosureRecord]) -> None:
        self._state.disclosures.extend(records)

    async def for_subject(
        self, *, upn: str | None = None, refid: str | None = None, limit: int = 10_000
    ) -> list[DisclosureRecord]:
        if upn is None and refid is None:
            raise ValueError("give a upn or a refid")
        refids = {refid} if refid is not None else set()
        if upn is not None:  # and every RefId the learners table maps to that UPN
            refids.update(r for r, known in self._state.upns.items() if known == upn)
        rows = enumerate(self._state.disclosures)  # the index stands in for the row id
        found = [
            (d.published_at, i, d)
            for i, d in rows
            if (upn is not None and d.upn == upn) or d.subject_refid in refids
        ]
        return [d for _, _, d in sorted(found, key=lambda f: f[:2])][:limit]

    async def logged(self, copy_msg_ids: Sequence[str]) -> set[str]:
        return {d.copy_msg_id for d in self._state.disclosures} & set(copy_msg_ids)

    async def acknowledge(self, copy_msg_ids: Sequence[str], at: datetime) -> int:
        wanted, updated = set(copy_msg_ids), 0
        for i, d in enumerate(self._state.disclosures):
            if d.copy_msg_id in wanted and d.acknowledged_at is None:
                self._state.disclosures[i] = dataclasses.replace(d, acknowledged_at=at)
                updated += 1
        return updated

    async def recorded(self, copy_msg_ids: Sequence[str]) -> dict[str, bool]:
        wanted, found = set(copy_msg_ids), dict[str, bool]()
        for d in self._state.disclosures:
            if d.copy_msg_id in wanted:
                found[d.copy_msg_id] = found.get(d.copy_msg_id, False) or bool(d.acknowledged_at)
        return found

    async def stats(self) -> Stats:
        state = self._state
        rows = state.outbox.values()
        return Stats(
            received=dict(Counter(m.object_name or m.kind.value for m in state.messages.values())),
            rejected=dict(Counter(f"{r.category}/{r.code}" for r in state.rejections)),
            routed=dict(Counter(r.record.object_name for r in rows if r.done_at is not None)),
            delivered=dict(Counter(d.subscriber for d in state.disclosures)),
            pending=sum(1 for r in rows if r.done_at is None),
            parked=sum(1 for r in rows if r.done_at is None and r.parked_at is not None),
        )
