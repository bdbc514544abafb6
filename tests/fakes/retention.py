"""In-memory hub.core.ports.Retention."""

from __future__ import annotations

from datetime import datetime

from hub.core.records import PurgeCounts
from tests.fakes.state import FakeRepo


class FakeRetention(FakeRepo):
    async def exclusive(self) -> bool:
        return True

    async def purge_routed(self, now: datetime, limit: int, dry_run: bool) -> PurgeCounts:
        held_back = {h.outbox_id for h in self._state.held.values() if h.settled_at is None}
        rows = sorted(
            (
                r
                for r in self._state.outbox.values()
                if r.done_at is not None
                and r.purge_after is not None
                and r.purge_after <= now
                and r.record.id not in held_back
            ),
            key=lambda r: r.purge_after or now,
        )[:limit]
        ids = {r.record.id for r in rows}
        left = {r.record.message_id for r in self._state.outbox.values() if r.record.id not in ids}
        orphaned = {r.record.message_id for r in rows} - left
        held = [h.id for h in self._state.held.values() if h.outbox_id in ids]
        if not dry_run:
            for i in ids:
                del self._state.outbox[i]
            for h in held:
                del self._state.held[h]
            for m in orphaned:
                self._drop_message(m)
        return PurgeCounts(outbox=len(ids), held=len(held), messages=len(orphaned))

    async def purge_unrouted(self, received_before: datetime, limit: int, dry_run: bool) -> int:
        routed = {r.record.message_id for r in self._state.outbox.values()}
        old = sorted(
            (
                m
                for m in self._state.messages.values()
                if m.received_at < received_before and m.id not in routed
            ),
            key=lambda m: m.received_at,
        )[:limit]
        if not dry_run:
            for m in old:
                self._drop_message(m.id)
        return len(old)

    async def purge_records(
        self,
        *,
        rejections_before: datetime,
        accountability_before: datetime,
        limit: int,
        dry_run: bool,
    ) -> PurgeCounts:
        state = self._state
        rejections = [r for r in state.rejections if r.at < rejections_before][:limit]
        disclosures = [d for d in state.disclosures if d.published_at < accountability_before][
            :limit
        ]
        audit = [a for a in state.audit if a.at < accountability_before][:limit]
        attempts = [a for a in state.webhook_attempts if a.attempted_at < accountability_before]
        attempts = attempts[:limit]
        if not dry_run:
            state.webhook_attempts = [a for a in state.webhook_attempts if a not in attempts]
            state.rejections = [r for r in state.rejections if r not in rejections]
            state.disclosures = [d for d in state.disclosures if d not in disclosures]
            state.audit = [a for a in state.audit if a not in audit]
        return PurgeCounts(
            rejections=len(rejections),
            disclosures=len(disclosures),
            audit=len(audit),
            webhook_attempts=len(attempts),
        )

    def _drop_message(self, message_id: str) -> None:
        self._state.messages.pop(message_id, None)
        for key, packet in list(self._state.packets.items()):
            if packet.message_id == message_id:
                del self._state.packets[key]
