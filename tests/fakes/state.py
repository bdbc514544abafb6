"""The in-memory tables the fake repositories share: one FakeStore's committed state, or a
transaction's working copy of it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

from hub.core.records import (
    AdminUserRecord,
    AgreementVersionRecord,
    AlertDeliveryRecord,
    AlertEventRecord,
    AlertStateRecord,
    ApprovalRecord,
    AuditRecord,
    CsvRowError,
    CsvTransactionRecord,
    DisclosureRecord,
    ExportFileRecord,
    FeedItemRecord,
    FeedKeyRecord,
    HeldRecord,
    LifecycleRecord,
    MessageRecord,
    OutboxRecord,
    PacketRecord,
    PupilAccessRecord,
    Registration,
    RejectionRecord,
    StagedRowRecord,
    SuppressionRecord,
    WebhookAttemptRecord,
)


def utcnow() -> datetime:
    """Wall-clock time, where the SQL store uses it (due at once, done at, discarded at)."""
    return datetime.now(UTC)


@dataclass
class OutboxRow:
    """An outbox row's record plus the columns the port does not hand out."""

    record: OutboxRecord
    seq_no: int
    next_attempt_at: datetime
    lease_until: datetime | None = None
    last_error: str | None = None
    done_at: datetime | None = None
    purge_after: datetime | None = None
    parked_at: datetime | None = None
    created_at: datetime | None = None


@dataclass
class State:
    messages: dict[str, MessageRecord] = field(default_factory=dict)
    outbox: dict[str, OutboxRow] = field(default_factory=dict)
    last_seq_no: int = 0
    registrations: dict[tuple[str, str], Registration] = field(default_factory=dict)
    packets: dict[tuple[str, str, int], PacketRecord] = field(default_factory=dict)
    upns: dict[str, str] = field(default_factory=dict)  # learner RefId -> UPN
    upn_history: set[tuple[str, str]] = field(default_factory=set)  # (RefId, UPN), ever
    learner_schools: dict[str, set[str]] = field(default_factory=dict)
    object_learners: dict[str, str] = field(default_factory=dict)  # object RefId -> learner
    versions: dict[tuple[str, int], AgreementVersionRecord] = field(default_factory=dict)
    lifecycles: dict[str, LifecycleRecord] = field(default_factory=dict)
    approvals: dict[tuple[str, str, int], ApprovalRecord] = field(default_factory=dict)
    pupil_access: dict[tuple[str, str], PupilAccessRecord] = field(default_factory=dict)
    cohorts: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    suppressions: dict[str, SuppressionRecord] = field(default_factory=dict)
    held: dict[str, HeldRecord] = field(default_factory=dict)
    held_leases: dict[str, datetime] = field(default_factory=dict)
    disclosures: list[DisclosureRecord] = field(default_factory=list)  # in insertion order
    audit: list[AuditRecord] = field(default_factory=list)
    rejections: list[RejectionRecord] = field(default_factory=list)
    admin_users: dict[str, AdminUserRecord] = field(default_factory=dict)
    webhook_secrets: dict[str, bytes] = field(default_factory=dict)
    webhook_attempts: list[WebhookAttemptRecord] = field(default_factory=list)
    export_rows: dict[str, StagedRowRecord] = field(default_factory=dict)
    export_files: dict[str, ExportFileRecord] = field(default_factory=dict)
    feed_items: list[FeedItemRecord] = field(default_factory=list)  # in insertion order
    feed_heads: dict[str, int] = field(default_factory=dict)  # subscriber -> last cursor
    feed_keys: dict[str, FeedKeyRecord] = field(default_factory=dict)
    alert_states: dict[tuple[str, str], AlertStateRecord] = field(default_factory=dict)
    alert_events: list[AlertEventRecord] = field(default_factory=list)
    alert_deliveries: dict[int, AlertDeliveryRecord] = field(default_factory=dict)
    csv_transactions: dict[str, CsvTransactionRecord] = field(default_factory=dict)
    csv_row_errors: list[tuple[str, CsvRowError]] = field(default_factory=list)

    def working_copy(self) -> State:
        """A transaction's private copy, isolated like a deep copy but far cheaper: records
        are frozen, so only the containers, the outbox rows (updated in place) and the sets
        of learner_schools (grown in place) are copied."""
        out = copy.copy(self)
        for name in _CONTAINERS:
            setattr(out, name, copy.copy(getattr(self, name)))
        out.outbox = {k: copy.copy(row) for k, row in self.outbox.items()}
        out.learner_schools = {k: set(v) for k, v in self.learner_schools.items()}
        return out


class FakeRepo:
    def __init__(self, state: State) -> None:
        self._state = state


_CONTAINERS = tuple(f.name for f in fields(State) if f.name != "last_seq_no")
