"""In-memory hub.core.ports.Journeys (the ops console's read-only views)."""

from __future__ import annotations

from datetime import datetime

from hub.core.records import (
    Activity,
    Journey,
    JourneyObject,
    JourneyQuery,
    MessageRecord,
    MessageSummary,
    RejectionRecord,
)
from tests.fakes.state import FakeRepo, OutboxRow


class FakeJourneys(FakeRepo):
    async def search(self, query: JourneyQuery) -> list[MessageSummary]:
        found = [_summary(m) for m in self._state.messages.values() if self._matches(m, query)]
        found.sort(key=lambda m: (m.received_at, m.id), reverse=True)
        if query.before is not None:
            found = [m for m in found if (m.received_at, m.id) < query.before]
        return found[: query.limit]

    async def rejections(self, query: JourneyQuery) -> list[RejectionRecord]:
        rows = [
            r
            for r in self._state.rejections
            if query.agent in (None, r.agent_id)
            and query.object_name in (None, r.object_name)
            and (query.since is None or r.at >= query.since)
            and (query.until is None or r.at < query.until)
        ]
        return sorted(rows, key=lambda r: r.at, reverse=True)[: query.limit]

    async def journey(self, message_id: str) -> Journey | None:
        message = self._state.messages.get(message_id)
        if message is None:
            return None
        rows = sorted(self._rows(message_id), key=lambda r: r.record.seq)
        ids = {r.record.id for r in rows}
        return Journey(
            message=_summary(message),
            objects=tuple(_object(r) for r in rows),
            held=tuple(h for h in self._state.held.values() if h.outbox_id in ids),
            disclosures=tuple(d for d in self._state.disclosures if d.message_id == message_id),
        )

    async def activity(self, since: datetime) -> Activity:
        by_object: dict[str, dict[str, int]] = {}
        by_subscriber: dict[str, dict[str, int]] = {}
        for m in self._state.messages.values():
            if m.received_at >= since:
                _count(by_object, m.object_name or m.kind.value, "received")
                for r in self._rows(m.id):
                    if r.done_at is not None:
                        _count(by_object, r.record.object_name, "routed")
        for d in self._state.disclosures:
            if d.published_at >= since:
                for figure in ["delivered"] + (["acknowledged"] if d.acknowledged_at else []):
                    _count(by_object, d.object_name, figure)
                    _count(by_subscriber, d.subscriber, figure)
        return Activity(by_object=by_object, by_subscriber=by_subscriber)

    def _rows(self, message_id: str) -> list[OutboxRow]:
        return [r for r in self._state.outbox.values() if r.record.message_id == message_id]

    def _matches(self, m: MessageRecord, q: JourneyQuery) -> bool:
        plain = ((m.school, q.school), (m.agent_id, q.agent), (m.object_name, q.object_name))
        refids = {r.record.subject_refid for r in self._rows(m.id)}
        upns = {self._state.upns.get(x or "") for x in refids}
        upns |= {upn for refid, upn in self._state.upn_history if refid in refids}
        return (
            all(want is None or have == want for have, want in plain)
            and (q.agreement_id is None or q.agreement_id in self._agreements(m.id))
            and (q.status is None or q.status in self._statuses(m.id))
            and (q.since is None or m.received_at >= q.since)
            and (q.until is None or m.received_at < q.until)
            and (q.learner_refid is None or q.learner_refid in refids)
            and (q.upn is None or q.upn in upns)
        )

    def _agreements(self, message_id: str) -> set[str]:
        ids = {r.record.id for r in self._rows(message_id)}
        held = {h.agreement_id for h in self._state.held.values() if h.outbox_id in ids}
        released = {d.agreement_id for d in self._state.disclosures if d.message_id == message_id}
        return held | released

    def _statuses(self, message_id: str) -> set[str]:
        rows = self._rows(message_id)
        ids = {r.record.id for r in rows}
        found = {"routed" if r.done_at else "parked" if r.parked_at else "pending" for r in rows}
        held = any(h.outbox_id in ids and h.settled_at is None for h in self._state.held.values())
        return found | ({"held"} if held else set())


def _count(into: dict[str, dict[str, int]], key: str, figure: str) -> None:
    into.setdefault(key, {})[figure] = into.get(key, {}).get(figure, 0) + 1


def _summary(m: MessageRecord) -> MessageSummary:
    return MessageSummary(
        id=m.id,
        agent_id=m.agent_id,
        zone=m.zone,
        sif_msg_id=m.sif_msg_id,
        kind=m.kind.value,
        object_name=m.object_name,
        action=None if m.action is None else m.action.value,
        school=m.school,
        received_at=m.received_at,
    )


def _object(row: OutboxRow) -> JourneyObject:
    r = row.record
    return JourneyObject(
        id=r.id,
        seq=r.seq,
        object_name=r.object_name,
        action=r.action.value,
        school=r.school,
        subject_refid=r.subject_refid,
        attempts=r.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        done_at=row.done_at,
        parked_at=row.parked_at,
    )
