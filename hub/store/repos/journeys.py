"""Read-only views for the ops console (implements hub.core.ports.Journeys): message search
by learner, school, agent, object, agreement, status and time; one message's journey; and
activity counts for the dashboard. Never reads a payload.

Search is keyset-paginated, newest first, on (received_at, id): every criterion narrows the
message rows through an index (ix_messages_received_at, ix_messages_school_received_at,
ix_messages_object_name_received_at, ix_messages_agent_id_received_at); a learner or a
rare status (pending, parked, held) is first resolved to its few message ids
(ix_outbox_subject_refid, ix_disclosures_upn, the outbox's partial indexes); an agreement
or "routed", which match most messages, are probed row by row newest first until a page is
full.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, union

from hub.core.records import (
    Activity,
    HeldRecord,
    Journey,
    JourneyObject,
    JourneyQuery,
    MessageSummary,
    RejectionRecord,
)
from hub.store.models import (
    disclosures,
    held_copies,
    learner_upns,
    learners,
    messages,
    outbox,
    rejections,
)
from hub.store.repos.base import AnyRow, SqlRepo, from_row
from hub.store.repos.disclosures import _disclosure

_ROUTED = outbox.c.done_at.is_not(None)
_SUMMARY = (
    messages.c.id,
    messages.c.agent_id,
    messages.c.zone,
    messages.c.sif_msg_id,
    messages.c.kind,
    messages.c.object_name,
    messages.c.action,
    messages.c.school,
    messages.c.received_at,
)


class SqlJourneys(SqlRepo):
    async def search(self, query: JourneyQuery) -> list[MessageSummary]:
        where = await self._criteria(query)
        statement = (
            select(*_SUMMARY)
            .where(*where)
            .order_by(messages.c.received_at.desc(), messages.c.id.desc())
            .limit(query.limit)
        )
        return [from_row(MessageSummary, row) for row in (await self._execute(statement)).all()]

    async def rejections(self, query: JourneyQuery) -> list[RejectionRecord]:
        table = rejections
        where: list[ColumnElement[bool]] = []
        if query.agent is not None:
            where.append(table.c.agent_id == query.agent)
        if query.object_name is not None:
            where.append(table.c.object_name == query.object_name)
        if query.since is not None:
            where.append(table.c.at >= query.since)
        if query.until is not None:
            where.append(table.c.at < query.until)
        if query.before is not None:
            where.append(table.c.at < query.before[0])
        statement = select(table).where(*where).order_by(table.c.at.desc()).limit(query.limit)
        rows = (await self._execute(statement)).all()
        return [from_row(RejectionRecord, row) for row in rows]

    async def journey(self, message_id: str) -> Journey | None:
        found = (await self._execute(select(*_SUMMARY).where(messages.c.id == message_id))).first()
        if found is None:
            return None
        query = select(outbox).where(outbox.c.message_id == message_id).order_by(outbox.c.seq)
        objects = [_object(row) for row in (await self._execute(query)).all()]
        held = await self._held([o.id for o in objects])
        query = (
            select(disclosures)
            .where(disclosures.c.message_id == message_id)
            .order_by(disclosures.c.id)
        )
        released = [_disclosure(row) for row in (await self._execute(query)).all()]
        return Journey(
            message=from_row(MessageSummary, found),
            objects=tuple(objects),
            held=tuple(held),
            disclosures=tuple(released),
        )

    async def activity(self, since: datetime) -> Activity:
        by_object: dict[str, dict[str, int]] = {}
        by_subscriber: dict[str, dict[str, int]] = {}
        for figure, rows in (
            ("received", await self._grouped(_received(since))),
            ("rejected", await self._grouped(_rejected(since))),
            ("routed", await self._grouped(_routed(since))),
        ):
            _merge(by_object, figure, rows)
        for figure in ("held", "delivered", "acknowledged"):
            pairs = await self._pairs(_copies(figure, since))
            _merge(by_object, figure, _sum_by(pairs, 0))
            _merge(by_subscriber, figure, _sum_by(pairs, 1))
        return Activity(by_object=by_object, by_subscriber=by_subscriber)

    async def _criteria(self, query: JourneyQuery) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        plain = (
            (messages.c.school, query.school),
            (messages.c.agent_id, query.agent),
            (messages.c.object_name, query.object_name),
        )
        where += [column == value for column, value in plain if value is not None]
        if query.since is not None:
            where.append(messages.c.received_at >= query.since)
        if query.until is not None:
            where.append(messages.c.received_at < query.until)
        if query.before is not None:
            at, last_id = query.before
            where.append(
                or_(
                    messages.c.received_at < at,
                    and_(messages.c.received_at == at, messages.c.id < last_id),
                )
            )
        where += await self._related(query)
        return where

    async def _related(self, query: JourneyQuery) -> list[ColumnElement[bool]]:
        """Criteria that go through other tables: resolved to message ids by subqueries."""
        where: list[ColumnElement[bool]] = []
        if query.upn is not None:
            # Resolved first (as subject access does): a plain IN over indexed lookups. Every
            # UPN the learner was shown with finds them (learner_upns: a former UPN too).
            current = select(learners.c.refid).where(learners.c.upn == query.upn)
            former = select(learner_upns.c.refid).where(learner_upns.c.upn == query.upn)
            found = list((await self._execute(union(current, former))).scalars())
            where.append(messages.c.id.in_(_about(query.upn, found)))
        if query.learner_refid is not None:
            where.append(messages.c.id.in_(_about(None, [query.learner_refid])))
        if query.agreement_id is not None:
            where.append(_under(query.agreement_id))
        if query.status == "routed":
            # Most messages are routed: walk them newest first and stop at a page.
            where.append(exists().where(outbox.c.message_id == messages.c.id, _ROUTED))
        elif query.status is not None:
            # The other statuses are rare: collect their few message ids first.
            where.append(messages.c.id.in_(_in_status(query.status)))
        return where

    async def _held(self, outbox_ids: Sequence[str]) -> list[HeldRecord]:
        if not outbox_ids:
            return []
        query = (
            select(held_copies)
            .where(held_copies.c.outbox_id.in_(list(outbox_ids)))
            .order_by(held_copies.c.held_at)
        )
        return [from_row(HeldRecord, row) for row in (await self._execute(query)).all()]

    async def _grouped(self, query: Select[Any, int]) -> dict[str, int]:
        return {str(row[0]): int(row[1]) for row in (await self._execute(query)).all()}

    async def _pairs(self, query: Select[Any]) -> list[AnyRow]:
        return list((await self._execute(query)).all())


def _about(upn: str | None, refids: Sequence[str]) -> Any:
    """Ids of the messages about a learner: objects naming one of its RefIds, and copies
    released under its UPN (ix_outbox_subject_refid, ix_disclosures_upn)."""
    parts: list[Select[Any]] = []
    if refids:
        parts.append(select(outbox.c.message_id).where(outbox.c.subject_refid.in_(list(refids))))
    if upn is not None:
        parts.append(select(disclosures.c.message_id).where(disclosures.c.upn == upn))
    if not parts:
        return select(messages.c.id).where(messages.c.id.is_(None))
    return union(*parts) if len(parts) > 1 else parts[0]


def _under(agreement_id: str) -> ColumnElement[bool]:
    """Messages with a copy released or held under an agreement. An agreement usually
    covers a large share of all messages, so this is a correlated EXISTS probed newest
    first through ix_disclosures_message_id and ix_held_copies_outbox_id (an IN over all
    its message ids would read them all before the first page)."""
    released = exists().where(
        disclosures.c.message_id == messages.c.id, disclosures.c.agreement_id == agreement_id
    )
    held = exists().where(
        outbox.c.message_id == messages.c.id,
        held_copies.c.outbox_id == outbox.c.id,
        held_copies.c.agreement_id == agreement_id,
    )
    return or_(released, held)


def _in_status(status: str) -> Any:
    if status == "held":
        return (
            select(outbox.c.message_id)
            .join(held_copies, held_copies.c.outbox_id == outbox.c.id)
            .where(held_copies.c.settled_at.is_(None))
        )
    conditions = {
        "pending": and_(outbox.c.done_at.is_(None), outbox.c.parked_at.is_(None)),
        "parked": and_(outbox.c.done_at.is_(None), outbox.c.parked_at.is_not(None)),
    }
    if status not in conditions:
        raise ValueError(f"unknown status {status!r}")
    return select(outbox.c.message_id).where(conditions[status])


def _received(since: datetime) -> Select[Any, int]:
    key = func.coalesce(messages.c.object_name, messages.c.kind)
    return select(key, func.count()).where(messages.c.received_at >= since).group_by(key)


def _rejected(since: datetime) -> Select[Any, int]:
    key = func.coalesce(rejections.c.object_name, "(unread)")
    return select(key, func.count()).where(rejections.c.at >= since).group_by(key)


def _routed(since: datetime) -> Select[Any, int]:
    return (
        select(outbox.c.object_name, func.count())
        .join(messages, messages.c.id == outbox.c.message_id)
        .where(messages.c.received_at >= since, outbox.c.done_at.is_not(None))
        .group_by(outbox.c.object_name)
    )


def _copies(figure: str, since: datetime) -> Select[Any]:
    """(object, subscriber, count) of copies held, released, or released and acknowledged."""
    if figure == "held":
        return (
            select(outbox.c.object_name, held_copies.c.subscriber, func.count())
            .join(outbox, outbox.c.id == held_copies.c.outbox_id)
            .where(held_copies.c.held_at >= since)
            .group_by(outbox.c.object_name, held_copies.c.subscriber)
        )
    where = [disclosures.c.published_at >= since]
    if figure == "acknowledged":
        where.append(disclosures.c.acknowledged_at.is_not(None))
    return (
        select(disclosures.c.object_name, disclosures.c.subscriber, func.count())
        .where(*where)
        .group_by(disclosures.c.object_name, disclosures.c.subscriber)
    )


def _sum_by(rows: Sequence[AnyRow], index: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        totals[str(row[index])] = totals.get(str(row[index]), 0) + int(row[2])
    return totals


def _merge(into: dict[str, dict[str, int]], figure: str, counts: dict[str, int]) -> None:
    for key, count in counts.items():
        into.setdefault(key, {})[figure] = count


def _object(row: AnyRow) -> JourneyObject:
    return from_row(JourneyObject, row)
