"""Agreement versions (immutable), lifecycles (one row per agreement, replaced) and schools'
approvals (implements hub.core.ports.Agreements)."""

from __future__ import annotations

from sqlalchemy import select

from hub.core.records import AgreementVersionRecord, ApprovalRecord, LifecycleRecord
from hub.store.errors import AlreadyExists
from hub.store.models import agreement_approvals, agreement_lifecycle, agreement_versions
from hub.store.repos.base import AnyRow, SqlRepo, from_row

_LIFECYCLE_KEY = ("agreement_id",)


class SqlAgreements(SqlRepo):
    async def versions(self, agreement_id: str | None = None) -> list[AgreementVersionRecord]:
        query = select(agreement_versions).order_by(
            agreement_versions.c.agreement_id, agreement_versions.c.version
        )
        if agreement_id is not None:
            query = query.where(agreement_versions.c.agreement_id == agreement_id)
        return [_agreement_version(row) for row in (await self._execute(query)).all()]

    async def add_version(self, record: AgreementVersionRecord) -> None:
        # As messages.add: ON CONFLICT keeps the transaction usable after a refusal.
        statement = (
            self._insert(agreement_versions)
            .values(
                agreement_id=record.agreement_id,
                version=record.version,
                body=dict(record.body),
                created_at=record.created_at,
                created_by=record.created_by,
                widens=record.widens,
                widened_for=None if record.widened_for is None else sorted(record.widened_for),
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


def _agreement_version(row: AnyRow) -> AgreementVersionRecord:
    return from_row(
        AgreementVersionRecord,
        row,
        body=dict(row.body),
        widens=bool(row.widens),
        widened_for=None if row.widened_for is None else frozenset(row.widened_for),
    )


def _lifecycle(row: AnyRow) -> LifecycleRecord:
    return from_row(LifecycleRecord, row)


def _approval(row: AnyRow) -> ApprovalRecord:
    return from_row(ApprovalRecord, row)
