"""The interfaces the pipeline needs from the store and the broker, and the failures
they report (implemented in hub.store and hub.amqp, wired in hub.composition)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

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


class StoreUnavailable(Exception):
    """The database could not be reached or refused the write."""


class DuplicateMessage(Exception):
    """The (agent, SIF_MsgId) pair was already accepted: the repeat must not be routed."""


class AlreadyExists(Exception):
    """A row with that identity exists (e.g. an agreement version number already used)."""


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached or did not confirm in time."""


class Tx(Protocol):
    """One database transaction; committed when its context exits without error."""

    async def message_exists(self, agent_id: str, sif_msg_id: str) -> bool: ...
    async def add_message(self, record: MessageRecord) -> None:
        """Raises DuplicateMessage when (agent_id, sif_msg_id) is already stored."""
        ...

    async def add_outbox(self, items: Sequence[OutboxRecord]) -> None: ...
    async def add_audit(self, entry: AuditRecord) -> None: ...
    async def add_rejection(self, entry: RejectionRecord) -> None: ...
    async def registration(self, agent_id: str, zone: str) -> Registration | None: ...
    async def save_registration(self, reg: Registration) -> None: ...
    async def delete_registration(self, agent_id: str, zone: str) -> None: ...
    async def add_packet(self, packet: PacketRecord) -> None: ...
    async def packets(self, agent_id: str, request_msg_id: str) -> list[PacketRecord]: ...
    async def message_payload(self, message_id: str) -> bytes | None: ...
    async def remember_learner(self, refid: str, school: str | None, upn: str | None) -> None: ...
    async def learner_school(self, refid: str) -> str | None: ...
    async def claim_outbox(
        self, limit: int, now: datetime, lease_seconds: float
    ) -> list[OutboxRecord]: ...
    async def complete_outbox(
        self,
        outbox_ids: Sequence[str],
        disclosures: Sequence[DisclosureRecord],
        held: Sequence[HeldRecord] = (),
    ) -> None: ...
    async def retry_outbox(self, outbox_id: str, next_attempt_at: datetime, error: str) -> None: ...
    async def stats(self) -> Stats: ...
    async def outbox_item(self, outbox_id: str) -> OutboxRecord | None: ...
    async def learner_upns(self, refids: Sequence[str]) -> dict[str, str]: ...

    # agreements: versions are immutable; lifecycle and pupil access are replaced
    async def agreement_versions(
        self, agreement_id: str | None = None
    ) -> list[AgreementVersionRecord]: ...
    async def add_agreement_version(self, record: AgreementVersionRecord) -> None:
        """Raises AlreadyExists when (agreement_id, version) is taken."""
        ...

    async def lifecycles(self) -> list[LifecycleRecord]: ...
    async def save_lifecycle(self, record: LifecycleRecord) -> None: ...
    async def approvals(self, agreement_id: str | None = None) -> list[ApprovalRecord]: ...
    async def add_approval(self, record: ApprovalRecord) -> None: ...
    async def pupil_access(self, agreement_id: str | None = None) -> list[PupilAccessRecord]: ...
    async def save_pupil_access(self, record: PupilAccessRecord) -> None: ...

    # cohorts supplied by recipient services; suppressed learners
    async def cohorts(self) -> dict[tuple[str, str], frozenset[str]]: ...
    async def replace_cohort(
        self, subscriber: str, cohort: str, members: Sequence[str]
    ) -> None: ...
    async def suppressions(self, active_only: bool = True) -> list[SuppressionRecord]: ...
    async def add_suppression(self, record: SuppressionRecord) -> None: ...
    async def lift_suppression(
        self, suppression_id: str, at: datetime, by: str, reason: str
    ) -> bool: ...

    # copies held for a delivery window or a suspension
    async def due_held(self, now: datetime, limit: int) -> list[HeldRecord]: ...
    async def decide_held(self, agreement_id: str, decision: str) -> int: ...
    async def settle_held(self, held_ids: Sequence[str], outcome: str, at: datetime) -> None: ...
    async def held_summary(self) -> dict[str, dict[str, int]]: ...

    # disclosure log and subject access
    async def disclosures_for(
        self, *, upn: str | None = None, refid: str | None = None, limit: int = 10_000
    ) -> list[DisclosureRecord]: ...
    async def acknowledge(self, copy_msg_ids: Sequence[str], at: datetime) -> int: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...
    async def ping(self) -> None: ...


@dataclass(frozen=True)
class Outgoing:
    """One filtered copy for one subscriber queue."""

    queue: str
    body: bytes
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    type: str = "SIF_Event"


@dataclass(frozen=True)
class Pulled:
    """A message handed to a pull-mode agent, held unacknowledged until it acks."""

    message_id: str
    body: bytes


class Publisher(Protocol):
    async def ensure_queues(self, subscriber_ids: Sequence[str]) -> None: ...

    async def publish_batch(self, messages: Sequence[Outgoing]) -> list[Exception | None]:
        """Publish all, await every confirm together; one result per message, None = confirmed."""
        ...

    async def ping(self) -> None: ...


class PullSource(Protocol):
    async def next_message(self, queue: str) -> Pulled | None: ...
    async def ack(self, queue: str, message_id: str) -> bool: ...
