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


class Messages(Protocol):
    """Accepted SIF messages, kept verbatim."""

    async def exists(self, agent_id: str, sif_msg_id: str) -> bool: ...
    async def add(self, record: MessageRecord) -> None:
        """Raises DuplicateMessage when (agent_id, sif_msg_id) is already stored."""
        ...

    async def payload(self, message_id: str) -> bytes | None: ...


class Outbox(Protocol):
    """Objects waiting to be routed, claimed in arrival order under a lease."""

    async def add(self, items: Sequence[OutboxRecord]) -> None: ...
    async def claim(self, limit: int, now: datetime, lease_seconds: float) -> list[OutboxRecord]:
        """Due rows, oldest first, none another claimer holds a live lease on."""
        ...

    async def complete(self, outbox_ids: Sequence[str]) -> None:
        """Mark the rows done: never claimed again."""
        ...

    async def retry(self, outbox_id: str, next_attempt_at: datetime, error: str) -> None: ...
    async def get(self, outbox_id: str) -> OutboxRecord | None: ...


class Registrations(Protocol):
    """Agents registered in a zone, and the SIF_Response packets they are sending."""

    async def get(self, agent_id: str, zone: str) -> Registration | None: ...
    async def save(self, reg: Registration) -> None: ...
    async def delete(self, agent_id: str, zone: str) -> None: ...
    async def add_packet(self, packet: PacketRecord) -> None: ...
    async def packets(self, agent_id: str, request_msg_id: str) -> list[PacketRecord]: ...


class Learners(Protocol):
    """What the hub learnt about each learner RefId: school and UPN."""

    async def remember(self, refid: str, school: str | None, upn: str | None) -> None:
        """A None keeps what was known: a partial Change must not forget a school."""
        ...

    async def school(self, refid: str) -> str | None: ...
    async def upns(self, refids: Sequence[str]) -> dict[str, str]: ...


class Agreements(Protocol):
    """Agreement versions (immutable), lifecycles (replaced) and schools' approvals."""

    async def versions(self, agreement_id: str | None = None) -> list[AgreementVersionRecord]: ...
    async def add_version(self, record: AgreementVersionRecord) -> None:
        """Raises AlreadyExists when (agreement_id, version) is taken."""
        ...

    async def lifecycles(self) -> list[LifecycleRecord]: ...
    async def save_lifecycle(self, record: LifecycleRecord) -> None: ...
    async def approvals(self, agreement_id: str | None = None) -> list[ApprovalRecord]: ...
    async def add_approval(self, record: ApprovalRecord) -> None: ...


class Privacy(Protocol):
    """Whose data may flow: schools' pupil lists, recipients' cohorts, suppressed learners."""

    async def pupil_access(self, agreement_id: str | None = None) -> list[PupilAccessRecord]: ...
    async def save_pupil_access(self, record: PupilAccessRecord) -> None: ...
    async def cohorts(self) -> dict[tuple[str, str], frozenset[str]]: ...
    async def replace_cohort(
        self, subscriber: str, cohort: str, members: Sequence[str]
    ) -> None: ...
    async def suppressions(self, active_only: bool = True) -> list[SuppressionRecord]: ...
    async def add_suppression(self, record: SuppressionRecord) -> None: ...
    async def lift_suppression(
        self, suppression_id: str, at: datetime, by: str, reason: str
    ) -> bool: ...


class Held(Protocol):
    """Copies held for a delivery window or a suspension."""

    async def add(self, records: Sequence[HeldRecord]) -> None: ...
    async def due(self, now: datetime, limit: int) -> list[HeldRecord]: ...
    async def decide(self, agreement_id: str, decision: str) -> int: ...
    async def settle(self, held_ids: Sequence[str], outcome: str, at: datetime) -> None: ...
    async def summary(self) -> dict[str, dict[str, int]]: ...


class Disclosures(Protocol):
    """The disclosure log: one row per copy released; subject access; the hub's figures."""

    async def add(self, records: Sequence[DisclosureRecord]) -> None: ...
    async def for_subject(
        self, *, upn: str | None = None, refid: str | None = None, limit: int = 10_000
    ) -> list[DisclosureRecord]: ...
    async def acknowledge(self, copy_msg_ids: Sequence[str], at: datetime) -> int: ...
    async def stats(self) -> Stats: ...


class Audit(Protocol):
    async def add(self, entry: AuditRecord) -> None: ...
    async def add_rejection(self, entry: RejectionRecord) -> None: ...


class Tx(Protocol):
    """One database transaction, one repository per aggregate; committed when its context
    exits without error, and nothing of it is kept when it raises."""

    @property
    def messages(self) -> Messages: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def registrations(self) -> Registrations: ...
    @property
    def learners(self) -> Learners: ...
    @property
    def agreements(self) -> Agreements: ...
    @property
    def privacy(self) -> Privacy: ...
    @property
    def held(self) -> Held: ...
    @property
    def disclosures(self) -> Disclosures: ...
    @property
    def audit(self) -> Audit: ...


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
