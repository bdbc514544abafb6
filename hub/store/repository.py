"""Every query the hub makes, behind the pipeline's `Tx` interface (hub.core.ports).

SqlTx speaks SQLAlchemy Core on one AsyncConnection that is already inside a transaction;
it never commits (SqlStore.transaction owns that). Core rather than the ORM: the dispatcher
moves hundreds of rows per batch and needs no identity map.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    Table,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core.envelope import Action
from hub.core.records import (
    AgreementVersionRecord,
    ApprovalRecord,
    AuditRecord,
    DisclosureRecord,
    HeldRecord,
    LifecycleRecord,
    MessageRecord,
    OutboxRecord,
    PacketRecord,
    PupilAccessRecord,
    Registration,
    RejectionRecord,
    Stats,
    SuppressionRecord,
)
from hub.store.errors import AlreadyExists, DuplicateMessage, unavailable_as_store_error
from hub.store.models import (
    LAST_ERROR_MAX,
    agreement_approvals,
    agreement_lifecycle,
    agreement_versions,
    audit,
    cohort_members,
    held_copies,
    learners,
    messages,
    outbox,
    pupil_access,
    registrations,
    rejections,
    response_packets,
    suppressions,
)
from hub.store.models import (
    disclosures as disclosure_table,
)

# Rows and results of any width (SQLAlchemy 2.1 types them by column tuple).
AnyRow = Row[*tuple[Any, ...]]
AnyResult = CursorResult[*tuple[Any, ...]]
_REGISTRATION_KEY = ("agent_id", "zone")
_LIFECYCLE_KEY = ("agreement_id",)
_PUPIL_ACCESS_KEY = ("agreement_id", "laestab")
# Values per IN (...) list: well under SQLite's and asyncpg's 32,767 bind parameters.
IN_CHUNK = 500
HELD_DECISIONS = frozenset({"release", "discard"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def short_error(error: str) -> str:
    """First line only, capped: exception texts can quote payloads (personal data)."""
    first = error.strip().splitlines()[0] if error.strip() else "error"
    return first[:LAST_ERROR_MAX]


class SqlTx:
    """One open transaction; implements hub.core.ports.Tx."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"

    async def _execute(self, statement: Executable, params: Any = None) -> AnyResult:
        with unavailable_as_store_error():
            return await self._connection.execute(statement, params)

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """A dialect INSERT, which offers ON CONFLICT on both backends."""
        return postgresql.insert(table) if self._postgres else sqlite.insert(table)

    # -- messages ---------------------------------------------------------------------

    async def message_exists(self, agent_id: str, sif_msg_id: str) -> bool:
        query = select(messages.c.id).where(_message_key(agent_id, sif_msg_id)).limit(1)
        return (await self._execute(query)).first() is not None

    async def add_message(self, record: MessageRecord) -> None:
        # ON CONFLICT DO NOTHING rather than catching the violation: concurrent repeats
        # wait for the first to commit, and the transaction stays usable on PostgreSQL.
        statement = (
            self._insert(messages)
            .values(_message_values(record))
            .on_conflict_do_nothing(index_elements=["agent_id", "sif_msg_id"])
        )
        if (await self._execute(statement)).rowcount == 0:
            raise DuplicateMessage(f"{record.agent_id}/{record.sif_msg_id} already accepted")

    async def message_payload(self, message_id: str) -> bytes | None:
        query = select(messages.c.payload).where(messages.c.id == message_id)
        payload = (await self._execute(query)).scalar_one_or_none()
        return None if payload is None else bytes(payload)

    # -- outbox -----------------------------------------------------------------------

    async def add_outbox(self, items: Sequence[OutboxRecord]) -> None:
        if items:
            now = utcnow()
            await self._execute(outbox.insert(), [_outbox_values(item, now) for item in items])

    async def claim_outbox(
        self, limit: int, now: datetime, lease_seconds: float
    ) -> list[OutboxRecord]:
        lease_until = now + timedelta(seconds=lease_seconds)
        statement = (
            update(outbox)
            .where(outbox.c.seq_no.in_(self._claimable(limit, now)))
            .values(lease_until=lease_until)
            .returning(*outbox.c)
        )
        rows = (await self._execute(statement)).all()
        # RETURNING order is unspecified; FIFO is restored here.
        return [_outbox_record(row) for row in sorted(rows, key=lambda row: row.seq_no)]

    def _claimable(self, limit: int, now: datetime) -> Select[Any]:
        query = (
            select(outbox.c.seq_no)
            .where(_pending(), outbox.c.next_attempt_at <= now)
            .where(or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now))
            .order_by(outbox.c.seq_no)
            .limit(limit)
        )
        # Two dispatchers on PostgreSQL skip each other's rows instead of waiting;
        # SQLite serialises writers (BEGIN IMMEDIATE), so it needs no row locks.
        return query.with_for_update(skip_locked=True) if self._postgres else query

    async def complete_outbox(
        self,
        outbox_ids: Sequence[str],
        disclosures: Sequence[DisclosureRecord],
        held: Sequence[HeldRecord] = (),
    ) -> None:
        """Record what left and what is held back, and mark the rows done, all in this
        transaction: a crash can neither lose a held copy nor route its object twice."""
        if disclosures:
            rows = [_disclosure_values(record) for record in disclosures]
            await self._execute(disclosure_table.insert(), rows)
        if held:
            await self._execute(held_copies.insert(), [_held_values(record) for record in held])
        if outbox_ids:
            statement = (
                update(outbox)
                .where(outbox.c.id.in_(list(outbox_ids)))
                .values(done_at=utcnow(), lease_until=None)
            )
            await self._execute(statement)

    async def retry_outbox(self, outbox_id: str, next_attempt_at: datetime, error: str) -> None:
        statement = (
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(
                attempts=outbox.c.attempts + 1,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_error=short_error(error),
            )
        )
        await self._execute(statement)

    async def outbox_item(self, outbox_id: str) -> OutboxRecord | None:
        query = select(outbox).where(outbox.c.id == outbox_id)
        row = (await self._execute(query)).first()
        return None if row is None else _outbox_record(row)

    # -- audit and rejections ---------------------------------------------------------

    async def add_audit(self, entry: AuditRecord) -> None:
        values = {
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "detail": dict(entry.detail),
        }
        await self._execute(audit.insert().values(values))

    async def add_rejection(self, entry: RejectionRecord) -> None:
        values = {
            "at": entry.at,
            "agent_id": entry.agent_id,
            "zone": entry.zone,
            "category": int(entry.category),
            "code": int(entry.code),
            "object_name": entry.object_name,
        }
        await self._execute(rejections.insert().values(values))

    # -- registrations ----------------------------------------------------------------

    async def registration(self, agent_id: str, zone: str) -> Registration | None:
        query = select(registrations).where(
            registrations.c.agent_id == agent_id, registrations.c.zone == zone
        )
        row = (await self._execute(query)).first()
        return None if row is None else _registration(row)

    async def save_registration(self, reg: Registration) -> None:
        values = _registration_values(reg)
        statement = self._insert(registrations).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=list(_REGISTRATION_KEY),
            set_={key: statement.excluded[key] for key in values if key not in _REGISTRATION_KEY},
        )
        await self._execute(statement)

    async def delete_registration(self, agent_id: str, zone: str) -> None:
        statement = sql_delete(registrations).where(
            registrations.c.agent_id == agent_id, registrations.c.zone == zone
        )
        await self._execute(statement)

    # -- response packets -------------------------------------------------------------

    async def add_packet(self, packet: PacketRecord) -> None:
        # A resent packet replaces the earlier one: the latest copy is the one to route.
        statement = self._insert(response_packets).values(
            agent_id=packet.agent_id,
            request_msg_id=packet.request_msg_id,
            packet_number=packet.packet_number,
            more_packets=packet.more_packets,
            message_id=packet.message_id,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["agent_id", "request_msg_id", "packet_number"],
            set_={
                "more_packets": statement.excluded.more_packets,
                "message_id": statement.excluded.message_id,
            },
        )
        await self._execute(statement)

    async def packets(self, agent_id: str, request_msg_id: str) -> list[PacketRecord]:
        query = (
            select(response_packets)
            .where(
                response_packets.c.agent_id == agent_id,
                response_packets.c.request_msg_id == request_msg_id,
            )
            .order_by(response_packets.c.packet_number)
        )
        return [_packet(row) for row in (await self._execute(query)).all()]

    # -- learners ---------------------------------------------------------------------

    async def remember_learner(self, refid: str, school: str | None, upn: str | None) -> None:
        if school is None and upn is None:
            return  # nothing learnt
        statement = self._insert(learners).values(
            refid=refid, school=school, upn=upn, updated_at=utcnow()
        )
        # Keep what we knew when this object does not say: a partial Change event must
        # not forget a pupil's school.
        statement = statement.on_conflict_do_update(
            index_elements=["refid"],
            set_={
                "school": func.coalesce(statement.excluded.school, learners.c.school),
                "upn": func.coalesce(statement.excluded.upn, learners.c.upn),
                "updated_at": statement.excluded.updated_at,
            },
        )
        await self._execute(statement)

    async def learner_school(self, refid: str) -> str | None:
        query = select(learners.c.school).where(learners.c.refid == refid)
        school = (await self._execute(query)).scalar_one_or_none()
        return None if school is None else str(school)

    async def learner_upns(self, refids: Sequence[str]) -> dict[str, str]:
        """{refid: UPN} for the refids whose UPN is known; unknown refids are left out."""
        found: dict[str, str] = {}
        for chunk in _chunks(refids):
            query = select(learners.c.refid, learners.c.upn).where(
                learners.c.refid.in_(chunk), learners.c.upn.is_not(None)
            )
            found.update({row.refid: row.upn for row in (await self._execute(query)).all()})
        return found

    # -- agreements -------------------------------------------------------------------

    async def agreement_versions(
        self, agreement_id: str | None = None
    ) -> list[AgreementVersionRecord]:
        query = select(agreement_versions).order_by(
            agreement_versions.c.agreement_id, agreement_versions.c.version
        )
        if agreement_id is not None:
            query = query.where(agreement_versions.c.agreement_id == agreement_id)
        return [_agreement_version(row) for row in (await self._execute(query)).all()]

    async def add_agreement_version(self, record: AgreementVersionRecord) -> None:
        # As add_message: ON CONFLICT keeps the transaction usable after a refusal.
        statement = (
            self._insert(agreement_versions)
            .values(
                agreement_id=record.agreement_id,
                version=record.version,
                body=dict(record.body),
                created_at=record.created_at,
                created_by=record.created_by,
                widens=record.widens,
            )
            .on_conflict_do_nothing(index_elements=["agreement_id", "version"])
        )
        if (await self._execute(statement)).rowcount == 0:
            raise AlreadyExists(f"agreement {record.agreement_id} v{record.version} exists")

    async def lifecycles(self) -> list[LifecycleRecord]:
        query = select(agreement_lifecycle).order_by(agreement_lifecycle.c.agreement_id)
        return [_lifecycle(row) for row in (await self._execute(query)).all()]

    async def save_lifecycle(self, record: LifecycleRecord) -> None:
        values = {
            "agreement_id": record.agreement_id,
            "status": record.status,
            "reason": record.reason,
            "changed_at": record.changed_at,
            "changed_by": record.changed_by,
            "suspended_until": record.suspended_until,
            "notice_effective": record.notice_effective,
            "review_due": record.review_due,
        }
        await self._upsert(agreement_lifecycle, values, _LIFECYCLE_KEY)

    async def approvals(self, agreement_id: str | None = None) -> list[ApprovalRecord]:
        table = agreement_approvals
        query = select(table).order_by(
            table.c.approved_at, table.c.agreement_id, table.c.laestab, table.c.version
        )
        if agreement_id is not None:
            query = query.where(table.c.agreement_id == agreement_id)
        return [_approval(row) for row in (await self._execute(query)).all()]

    async def add_approval(self, record: ApprovalRecord) -> None:
        """Idempotent: a repeated approval of the same version keeps the first receipt."""
        statement = (
            self._insert(agreement_approvals)
            .values(
                agreement_id=record.agreement_id,
                laestab=record.laestab,
                version=record.version,
                approved_by=record.approved_by,
                approved_at=record.approved_at,
            )
            .on_conflict_do_nothing(index_elements=["agreement_id", "laestab", "version"])
        )
        await self._execute(statement)

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

    async def _upsert(self, table: Table, values: dict[str, Any], key: Sequence[str]) -> None:
        statement = self._insert(table).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=list(key),
            set_={name: statement.excluded[name] for name in values if name not in key},
        )
        await self._execute(statement)

    # -- cohorts and suppressions -----------------------------------------------------

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

    # -- held copies ------------------------------------------------------------------

    async def due_held(self, now: datetime, limit: int) -> list[HeldRecord]:
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

    async def decide_held(self, agreement_id: str, decision: str) -> int:
        """Decide the unsettled copies held for a suspension of `agreement_id`.

        "release": due_held hands them out from now on. "discard": they are settled at
        once (outcome "discarded") and never leave; due_held would otherwise never return
        them, and nothing else could settle them. Returns how many rows were decided.
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

    async def settle_held(self, held_ids: Sequence[str], outcome: str, at: datetime) -> None:
        """Record what became of these copies. Not guarded on settled_at: the caller
        reports what it actually did (a copy it published is "released" even if a discard
        decision settled the row meanwhile)."""
        for chunk in _chunks(held_ids):
            statement = (
                update(held_copies)
                .where(held_copies.c.id.in_(chunk))
                .values(settled_at=at, outcome=outcome)
            )
            await self._execute(statement)

    async def held_summary(self) -> dict[str, dict[str, int]]:
        """{agreement_id: {reason: unsettled copies}}."""
        keys = (held_copies.c.agreement_id, held_copies.c.reason)
        query = select(*keys, func.count()).where(_held_unsettled()).group_by(*keys)
        summary: dict[str, dict[str, int]] = {}
        for agreement_id, reason, count in (await self._execute(query)).all():
            summary.setdefault(str(agreement_id), {})[str(reason)] = int(count)
        return summary

    # -- disclosure log ---------------------------------------------------------------

    async def disclosures_for(
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

    async def acknowledge(self, copy_msg_ids: Sequence[str], at: datetime) -> int:
        """Record the recipient's acknowledgement; the first one is kept. Returns how many
        rows were newly acknowledged."""
        updated = 0
        for chunk in _chunks(copy_msg_ids):
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

    # -- stats ------------------------------------------------------------------------

    async def stats(self) -> Stats:
        received_key = func.coalesce(messages.c.object_name, messages.c.kind)
        return Stats(
            received=await self._counts(received_key, messages),
            rejected=await self._rejected_counts(),
            routed=await self._counts(outbox.c.object_name, outbox, outbox.c.done_at.is_not(None)),
            delivered=await self._counts(disclosure_table.c.subscriber, disclosure_table),
            pending=await self._pending_count(),
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

    async def _pending_count(self) -> int:
        query = select(func.count()).select_from(outbox).where(_pending())
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


def due_held_queries(now: datetime, limit: int) -> tuple[Select[Any], Select[Any]]:
    """due_held's two lookups, each served by its own partial index: copies whose window
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


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), IN_CHUNK):
        yield unique[start : start + IN_CHUNK]


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


# -- row <-> record mapping -----------------------------------------------------------


def _message_key(agent_id: str, sif_msg_id: str) -> ColumnElement[bool]:
    return (messages.c.agent_id == agent_id) & (messages.c.sif_msg_id == sif_msg_id)


def _pending() -> ColumnElement[bool]:
    # Matches the partial index ix_outbox_pending (WHERE done_at IS NULL).
    return outbox.c.done_at.is_(None)


def _message_values(record: MessageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "agent_id": record.agent_id,
        "zone": record.zone,
        "sif_msg_id": record.sif_msg_id,
        "kind": str(record.kind.value),
        "version": record.version,
        "object_name": record.object_name,
        "action": None if record.action is None else str(record.action.value),
        "school": record.school,
        "received_at": record.received_at,
        "payload": record.payload,
    }


def _outbox_values(item: OutboxRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": item.id,
        "message_id": item.message_id,
        "seq": item.seq,
        "zone": item.zone,
        "source_agent": item.source_agent,
        "object_name": item.object_name,
        "action": str(item.action.value),
        "school": item.school,
        "subject_refid": item.subject_refid,
        "object_xml": item.object_xml,
        "attempts": item.attempts,
        "next_attempt_at": now,  # due at once
        "lease_until": None,
        "last_error": None,
        "done_at": None,
        "created_at": now,
    }


R = TypeVar("R")


def _from_row(record: type[R], row: AnyRow, **converted: Any) -> R:
    """A record built from the row's columns of the same names (plus conversions)."""
    values = {f.name: getattr(row, f.name) for f in fields(record)}  # type: ignore[arg-type]
    return record(**{**values, **converted})


def _values(record: Any, **converted: Any) -> dict[str, Any]:
    """Column values for a record (plus conversions for JSON lists and enums)."""
    return {**asdict(record), **converted}


def _outbox_record(row: AnyRow) -> OutboxRecord:
    return _from_row(OutboxRecord, row, action=Action(row.action), object_xml=bytes(row.object_xml))


def _disclosure_values(record: DisclosureRecord) -> dict[str, Any]:
    return _values(record, action=record.action.value, paths=list(record.paths))


def _disclosure(row: AnyRow) -> DisclosureRecord:
    return _from_row(DisclosureRecord, row, action=Action(row.action), paths=tuple(row.paths))


def _registration_values(reg: Registration) -> dict[str, Any]:
    return _values(
        reg,
        versions=list(reg.versions),
        provides=list(reg.provides),
        subscribes=list(reg.subscribes),
    )


def _registration(row: AnyRow) -> Registration:
    return _from_row(
        Registration,
        row,
        versions=tuple(row.versions),
        provides=tuple(row.provides),
        subscribes=tuple(row.subscribes),
    )


def _packet(row: AnyRow) -> PacketRecord:
    return _from_row(PacketRecord, row, more_packets=bool(row.more_packets))


def _agreement_version(row: AnyRow) -> AgreementVersionRecord:
    return _from_row(AgreementVersionRecord, row, body=dict(row.body), widens=bool(row.widens))


def _lifecycle(row: AnyRow) -> LifecycleRecord:
    return _from_row(LifecycleRecord, row)


def _approval(row: AnyRow) -> ApprovalRecord:
    return _from_row(ApprovalRecord, row)


def _pupil_access(row: AnyRow) -> PupilAccessRecord:
    return _from_row(PupilAccessRecord, row, learners=tuple(row.learners))


def _suppression(row: AnyRow) -> SuppressionRecord:
    return _from_row(SuppressionRecord, row)


def _held_values(record: HeldRecord) -> dict[str, Any]:
    return _values(record)


def _held(row: AnyRow) -> HeldRecord:
    return _from_row(HeldRecord, row)
