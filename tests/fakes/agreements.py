"""In-memory hub.core.ports.Agreements."""

from __future__ import annotations

from hub.core.ports import AlreadyExists
from hub.core.records import AgreementVersionRecord, ApprovalRecord, LifecycleRecord
from tests.fakes.state import FakeRepo


class FakeAgreements(FakeRepo):
    async def versions(self, agreement_id: str | None = None) -> list[AgreementVersionRecord]:
        return [
            record
            for key, record in sorted(self._state.versions.items())
            if agreement_id is None or key[0] == agreement_id
        ]

    async def add_version(self, record: AgreementVersionRecord) -> None:
        key = (record.agreement_id, record.version)
        if key in self._state.versions:
            raise AlreadyExists(f"agreement {record.agreement_id} v{record.version} exists")
        self._state.versions[key] = record

    async def lifecycles(self) -> list[LifecycleRecord]:
        return [record for _, record in sorted(self._state.lifecycles.items())]

    async def save_lifecycle(self, record: LifecycleRecord) -> None:
        self._state.lifecycles[record.agreement_id] = record

    async def approvals(self, agreement_id: str | None = None) -> list[ApprovalRecord]:
        mine = [
            a
            for a in self._state.approvals.values()
            if agreement_id is None or a.agreement_id == agreement_id
        ]
        return sorted(mine, key=lambda a: (a.approved_at, a.agreement_id, a.laestab, a.version))

    async def add_approval(self, record: ApprovalRecord) -> None:
        # Idempotent: a repeated approval of the same version keeps the first receipt.
        key = (record.agreement_id, record.laestab, record.version)
        self._state.approvals.setdefault(key, record)
