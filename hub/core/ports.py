"""The interfaces the pipeline needs from the store and the broker, and the failures
they report (implemented in hub.store and hub.amqp, wired in hub.composition)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from hub.core.errors import SifError
from hub.core.records import (
    Activity,
    AdminUserRecord,
    AgreementVersionRecord,
    AlertDeliveryRecord,
    AlertEventRecord,
    AlertStateRecord,
    ApprovalRecord,
    AuditRecord,
    BacklogFigures,
    CsvRowError,
    CsvTransactionRecord,
    DisclosureRecord,
    ExportFileRecord,
    FeedItemRecord,
    FeedKeyRecord,
    HeldRecord,
    Journey,
    JourneyQuery,
    Learnt,
    LifecycleRecord,
    MessageRecord,
    MessageSummary,
    OutboxRecord,
    PacketRecord,
    ParkedRecord,
    PupilAccessRecord,
    PurgeCounts,
    QueueLevel,
    Registration,
    RejectionRecord,
    Staged,
    StagedRowRecord,
    Stats,
    SuppressionRecord,
    WebhookAttemptRecord,
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

    async def complete(self, done: Sequence[tuple[str, datetime]]) -> list[str]:
        """Mark rows done, each with when its payload may be purged: never claimed again.
        Returns the ids this call settled (a row another claimer finished is left out), so
        that only one claimer records its disclosures."""
        ...

    async def retry(
        self, outbox_id: str, next_attempt_at: datetime, error: str, *, park: bool = False
    ) -> None:
        """Count a failed attempt; `park` sets the row aside: not claimed until re-driven."""
        ...

    async def get(self, outbox_id: str) -> OutboxRecord | None: ...
    async def parked(self, limit: int) -> list[ParkedRecord]: ...
    async def backlog(self) -> BacklogFigures:
        """Rows waiting to be routed (parked ones aside), when the oldest arrived, and the
        parked rows."""
        ...

    async def redrive(self, outbox_ids: Sequence[str] | None, now: datetime) -> list[str]:
        """Put parked rows (these, or all) back in the queue, due now, attempts reset."""
        ...


class Registrations(Protocol):
    """Agents registered in a zone, and the SIF_Response packets they are sending."""

    async def get(self, agent_id: str, zone: str) -> Registration | None: ...
    async def save(self, reg: Registration) -> None: ...
    async def delete(self, agent_id: str, zone: str) -> None: ...
    async def add_packet(self, packet: PacketRecord) -> None: ...
    async def packets(self, agent_id: str, request_msg_id: str) -> list[PacketRecord]: ...


class Learners(Protocol):
    """What the hub learnt about each learner RefId: the schools objects showed it at, its
    UPN, and which learner each learner-scoped object (by its own RefId) is about."""

    async def remember(self, refid: str, schools: Sequence[str], upn: str | None) -> bool:
        """Adds schools (never forgets one); a None UPN keeps the one known. True when the
        UPN is new or changed."""
        ...

    async def schools(self, refid: str) -> frozenset[str]: ...
    async def schools_of(self, refids: Sequence[str]) -> dict[str, frozenset[str]]:
        """{refid: its schools} for the refids known at one or more."""
        ...

    async def upns(self, refids: Sequence[str]) -> dict[str, str]: ...
    async def former_upns(self, refids: Sequence[str]) -> dict[str, frozenset[str]]:
        """{refid: the UPNs it was shown with before its current one}; refids without any
        are left out."""
        ...

    async def remember_object(self, object_refid: str, object_name: str, learner: str) -> bool:
        """True when the object's learner is new or changed."""
        ...

    async def learners_of(self, object_refids: Sequence[str]) -> dict[str, str]:
        """{object RefId: learner RefId} for the objects whose learner is known."""
        ...

    async def remember_many(self, learnt: Sequence[Learnt]) -> tuple[list[str], list[str]]:
        """`remember` and `remember_object` for many at once, in their order (the last UPN
        or learner given for one RefId wins): the learners whose UPN and the objects whose
        learner became known or changed."""
        ...


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
    """Copies held for a delivery window, a suspension, or a learner's identity."""

    async def add(self, records: Sequence[HeldRecord]) -> None: ...
    async def claim_due(self, now: datetime, limit: int, lease_seconds: float) -> list[HeldRecord]:
        """Unsettled copies to release now, oldest first, leased to this claimer: those
        whose time has come (window opened, identity arrived) and suspended ones a decision
        released. Rows another claimer holds a live lease on are skipped."""
        ...

    async def decide(self, agreement_id: str, decision: str, now: datetime) -> int: ...
    async def settle(self, held_ids: Sequence[str], outcome: str, at: datetime) -> list[str]:
        """Settle unsettled rows; returns the ids this call settled."""
        ...

    async def requeue(self, held_id: str, reason: str, release_after: datetime | None) -> None:
        """Keep holding a copy, for a (possibly new) reason; keeps when it was first held."""
        ...

    async def wake_identity(
        self, now: datetime, *, learner: str | None = None, object_refid: str | None = None
    ) -> int:
        """Make due the copies awaiting identity about this learner (named by the object, or
        remembered for its RefId) or this object; with neither, all of them (after a policy
        change)."""
        ...

    async def wake_identities(
        self, now: datetime, *, learners: Sequence[str], object_refids: Sequence[str]
    ) -> int:
        """`wake_identity` for many learners and objects at once."""
        ...

    async def wake_resolved(self, now: datetime) -> int:
        """Make due the copies awaiting identity whose learner and UPN are now known (a
        sweep: an identity learnt while its copy was being held is not missed)."""
        ...

    async def expired_identity(self, held_before: datetime, limit: int) -> list[HeldRecord]: ...
    async def summary(self) -> dict[str, dict[str, int]]: ...
    async def unsettled(
        self,
        *,
        reason: str | None = None,
        subscriber: str | None = None,
        agreement_id: str | None = None,
        limit: int = 1000,
    ) -> list[HeldRecord]: ...


class Retention(Protocol):
    """Storage limitation: what purging removes, in batches, safe with several hubs."""

    async def exclusive(self) -> bool:
        """Take the hub-wide purge lock for this transaction; False if another holds it."""
        ...

    async def purge_routed(self, now: datetime, limit: int, dry_run: bool) -> PurgeCounts:
        """Routed objects whose retention has passed (none of their copies still held),
        their held-copy rows, and the messages left with no object."""
        ...

    async def purge_unrouted(self, received_before: datetime, limit: int, dry_run: bool) -> int:
        """Messages that no agreement covered (nothing to route, or a response never
        completed), received before the cut-off."""
        ...

    async def purge_records(
        self,
        *,
        rejections_before: datetime,
        accountability_before: datetime,
        limit: int,
        dry_run: bool,
    ) -> PurgeCounts:
        """Rejection rows, and disclosure and audit rows, older than their cut-offs."""
        ...


class Disclosures(Protocol):
    """The disclosure log: one row per copy released; subject access; the hub's figures."""

    async def add(self, records: Sequence[DisclosureRecord]) -> None: ...
    async def for_subject(
        self, *, upn: str | None = None, refid: str | None = None, limit: int = 10_000
    ) -> list[DisclosureRecord]: ...
    async def acknowledge(self, copy_msg_ids: Sequence[str], at: datetime) -> int: ...
    async def logged(self, copy_msg_ids: Sequence[str]) -> set[str]: ...

    async def recorded(self, copy_msg_ids: Sequence[str]) -> dict[str, bool]:
        """{copy id: acknowledged yet?} for the copies whose disclosure row is written."""
        ...

    async def stats(self) -> Stats: ...


class Webhooks(Protocol):
    """Each webhook subscriber's signing secret (sealed: the store never sees it in clear)
    and one row per attempt to push a copy."""

    async def secret(self, subscriber: str) -> bytes | None: ...
    async def save_secret(self, subscriber: str, sealed: bytes, at: datetime) -> None: ...
    async def add_attempt(self, record: WebhookAttemptRecord) -> None: ...
    async def attempts(
        self, *, subscriber: str | None = None, copy_msg_id: str | None = None, limit: int = 100
    ) -> list[WebhookAttemptRecord]:
        """Newest first."""
        ...


class Exports(Protocol):
    """File subscribers' staged rows (one per copy) and the files cut from them."""

    async def stage(self, records: Sequence[StagedRowRecord]) -> None:
        """Stage copies' rows; a copy staged already keeps its row (a re-sent copy)."""
        ...

    async def waiting(self, subscriber: str) -> tuple[int, datetime | None]:
        """Rows not yet in a file, and when the newest of them was staged."""
        ...

    async def pending(self, subscriber: str, limit: int) -> list[StagedRowRecord]:
        """Rows not yet in a file, oldest first."""
        ...

    async def last_seq(self, subscriber: str) -> int: ...
    async def add_file(self, record: ExportFileRecord, copy_msg_ids: Sequence[str]) -> int:
        """Record the file and put these rows in it; returns how many were still waiting
        (fewer: another hub cut some of them, and this transaction must not commit)."""
        ...

    async def files(self, subscriber: str, limit: int = 100) -> list[ExportFileRecord]:
        """Newest first."""
        ...

    async def file(self, export_id: str) -> ExportFileRecord | None: ...
    async def expired(self, now: datetime, limit: int) -> list[ExportFileRecord]: ...
    async def delete_files(self, export_ids: Sequence[str]) -> int:
        """Delete the files' rows and their staged rows; returns the staged rows deleted."""
        ...

    async def purge_waiting(self, staged_before: datetime, limit: int, dry_run: bool) -> int:
        """Staged rows no file took before the cut-off (their subscriber no longer takes
        files): deleted, or counted in a dry run."""
        ...


class Feeds(Protocol):
    """Released copies kept for subscribers that pull, each under a per-subscriber cursor
    that only grows (cursors are handed out in commit order), and their API keys."""

    async def add(self, record: FeedItemRecord) -> int | None:
        """Keep the copy under the subscriber's next cursor, returned; None when this copy
        is already kept (a redelivery): nothing changes."""
        ...

    async def page(self, subscriber: str, since: int, limit: int) -> list[FeedItemRecord]:
        """The subscriber's items after cursor `since`, in cursor order, at most `limit`."""
        ...

    async def purge(self, now: datetime, limit: int, dry_run: bool) -> int:
        """Items whose retention has passed (their agreement's retention_days)."""
        ...

    async def key(self, key_id: str) -> FeedKeyRecord | None: ...
    async def save_key(self, record: FeedKeyRecord) -> None:
        """The subscriber's key; replaces its earlier one."""


class CsvTransactions(Protocol):
    """CSV uploads: one row per file (agent, kind, SHA-256), its counts and refused rows."""

    async def add(self, record: CsvTransactionRecord) -> None:
        """Raises AlreadyExists when the agent already sent a file of this kind and hash."""
        ...

    async def get(self, transaction_id: str) -> CsvTransactionRecord | None: ...
    async def find(self, agent_id: str, kind: str, sha256: str) -> CsvTransactionRecord | None: ...
    async def add_chunk(
        self,
        transaction_id: str,
        *,
        rows: int,
        accepted: int,
        rejected: int,
        errors: Sequence[CsvRowError],
        not_listed: int,
        at: datetime,
    ) -> None:
        """Count a chunk's rows, list its problems (`not_listed`: those beyond the cap)."""
        ...

    async def set_status(self, transaction_id: str, status: str, at: datetime) -> None: ...
    async def errors(self, transaction_id: str, limit: int) -> list[CsvRowError]:
        """Refused rows, by line."""
        ...


class Audit(Protocol):
    async def add(self, entry: AuditRecord) -> None: ...
    async def add_rejection(self, entry: RejectionRecord) -> None: ...
    async def rejections_since(self, at: datetime) -> int:
        """Refused agent messages recorded at or after `at` (every hub's)."""
        ...


class Alerts(Protocol):
    """Alert states (one row per rule and subject whose condition holds), the notifications
    they made, and one delivery row per notification and target."""

    async def exclusive(self) -> bool:
        """Take the hub-wide alert lock for this transaction; False if another hub holds it
        (one hub evaluates at a time, so a condition notifies once however many hubs run)."""
        ...

    async def states(self) -> list[AlertStateRecord]: ...
    async def save_state(self, rule: str, subject: str, state: AlertStateRecord | None) -> None:
        """Replace the rule and subject's state; None deletes it (inactive)."""
        ...

    async def add_event(
        self, event: AlertEventRecord, targets: Sequence[str], due: datetime
    ) -> int:
        """Store a notification and a delivery row per target, due at `due`; its id."""
        ...

    async def events(self, limit: int) -> list[AlertEventRecord]:
        """Newest first."""
        ...

    async def claim_deliveries(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[AlertDeliveryRecord]:
        """Due deliveries, oldest first, leased to this claimer (another claimer skips them
        until the lease ends)."""
        ...

    async def delivered(self, delivery_id: int, at: datetime) -> None: ...
    async def failed(self, delivery_id: int, error: str, next_attempt_at: datetime | None) -> None:
        """Count a failed attempt; retry at `next_attempt_at`, or give up (None)."""
        ...

    async def deliveries(self, event_ids: Sequence[int]) -> list[AlertDeliveryRecord]: ...


class AdminUsers(Protocol):
    """Named admin users and their argon2-hashed API tokens, found by key id."""

    async def add(self, record: AdminUserRecord) -> None:
        """Raises AlreadyExists when the name is taken (revoked users keep theirs)."""
        ...

    async def by_key(self, key_id: str) -> AdminUserRecord | None: ...
    async def get(self, name: str) -> AdminUserRecord | None: ...
    async def all(self) -> list[AdminUserRecord]:
        """Every user, revoked ones too, by name."""
        ...

    async def rotate(self, name: str, key_id: str, secret_hash: str, at: datetime) -> bool:
        """Give an active user a new token (the old key id stops matching); False when the
        user is unknown or revoked."""
        ...

    async def revoke(self, name: str, at: datetime) -> bool:
        """False when the user is unknown or already revoked."""
        ...


class Journeys(Protocol):
    """Read-only views for the ops console: message search, one message's journey, and
    activity counts. Never a payload (Messages.payload gives that, to roles allowed)."""

    async def search(self, query: JourneyQuery) -> list[MessageSummary]: ...
    async def rejections(self, query: JourneyQuery) -> list[RejectionRecord]:
        """Refused messages (agent, object, time range of the query), newest first."""
        ...

    async def journey(self, message_id: str) -> Journey | None: ...
    async def activity(self, since: datetime) -> Activity: ...


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
    @property
    def retention(self) -> Retention: ...
    @property
    def admin_users(self) -> AdminUsers: ...
    @property
    def webhooks(self) -> Webhooks: ...
    @property
    def journeys(self) -> Journeys: ...
    @property
    def exports(self) -> Exports: ...
    @property
    def feeds(self) -> Feeds: ...
    @property
    def alerts(self) -> Alerts: ...
    @property
    def csv_transactions(self) -> CsvTransactions: ...


# Reads what a message needs (in a transaction shared with other requests) and returns the
# rows to add, or None when the message was already accepted. It must not write.
Stage = Callable[[Tx], Awaitable[Staged | None]]


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...
    async def accept(self, stage: Stage, *, agent_id: str, sif_msg_id: str) -> bool:
        """Group commit: run `stage` with other concurrent requests' stages in one
        transaction, write every staged row with multi-row inserts and commit once. True
        once the commit holding this message's rows is done; False when (agent_id,
        sif_msg_id) was already accepted (nothing written). Raises what `stage` raises
        (nothing written), or StoreUnavailable (nothing acked; the agent sends again)."""
        ...

    async def ping(self) -> None: ...
    async def reclaim_space(self, full: bool = False) -> None:
        """Give freed pages back to the file system (SQLite), or leave it to autovacuum."""
        ...


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


class QueueLevels(Protocol):
    """Messages and consumers per queue (RabbitMQ's management API)."""

    async def levels(self) -> dict[str, QueueLevel]:
        """Every queue on the hub's vhost by name; BrokerUnavailable when unreadable."""
        ...


class NotifyFailed(Exception):
    """A notification was not accepted by its target (the reason: no secret in it)."""


class Notifier(Protocol):
    """Delivers one alert notification to one target (a webhook, an e-mail relay)."""

    async def send(self, event: AlertEventRecord) -> None:
        """Raises NotifyFailed when the target did not take it."""
        ...


class PullSource(Protocol):
    async def next_message(self, queue: str) -> Pulled | None: ...
    async def ack(self, queue: str, message_id: str) -> bool: ...


class Metrics(Protocol):
    """What the pipeline counts and times (hub.metrics exports it to Prometheus). An
    implementation keeps label values bounded (message kinds, catalogue objects, actions,
    SIF codes, configured subscribers): never an identifier taken from a message."""

    def ingested(
        self,
        *,
        kind: str | None,
        object_name: str | None,
        action: str | None,
        error: SifError | None,
        seconds: float,
    ) -> None:
        """One agent message answered after `seconds`: acked (no error) or refused."""
        ...

    def routed(
        self, record: OutboxRecord, *, published: Sequence[str], held: Sequence[str]
    ) -> None:
        """An outbox row routed: the subscribers whose copy was published, or held."""
        ...

    def route_failed(self, record: OutboxRecord) -> None:
        """A routing attempt failed; the row is retried later (or parked)."""
        ...

    def released(self, object_name: str, subscriber: str, outcome: str) -> None:
        """A copy settled outside a routed row: a held copy the releaser "released"
        (published) or "dropped", or a copy the broker confirmed from a row that failed as
        a whole ("published"; the row's retry sends only the rest)."""
        ...


class NoMetrics:
    """Counts nothing: for pipelines built without an exporter (tools, unit tests)."""

    def ingested(
        self,
        *,
        kind: str | None,
        object_name: str | None,
        action: str | None,
        error: SifError | None,
        seconds: float,
    ) -> None:
        return None

    def routed(
        self, record: OutboxRecord, *, published: Sequence[str], held: Sequence[str]
    ) -> None:
        return None

    def route_failed(self, record: OutboxRecord) -> None:
        return None

    def released(self, object_name: str, subscriber: str, outcome: str) -> None:
        return None


NO_METRICS = NoMetrics()


@dataclass(frozen=True, kw_only=True)
class Delivered:
    """A copy taken from a subscriber's queue by a delivery adapter. `attempts`: tries
    already made; `deferrals`: times it was set aside without a try (see hub.pipeline.deliver)."""

    message_id: str
    body: bytes
    headers: dict[str, str]
    attempts: int = 0
    deferrals: int = 0


@dataclass(frozen=True, kw_only=True)
class Settle:
    """What becomes of a delivered copy: done (acked), retry (waits `delay_ms` in a retry
    queue, carrying its counts), or dead (to the subscriber's dead-letter queue)."""

    kind: Literal["done", "retry", "dead"]
    delay_ms: int = 0
    attempts: int = 0
    deferrals: int = 0


Handler = Callable[[Delivered], Awaitable[Settle]]


class DeliverySource(Protocol):
    """A subscriber's queue, consumed by a delivery adapter until `stop` is set."""

    async def run(
        self, subscriber: str, handle: Handler, *, concurrency: int, stop: asyncio.Event
    ) -> None: ...


@dataclass(frozen=True, kw_only=True)
class PushResult:
    """How an endpoint answered one push: its HTTP status, or why there was none."""

    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, kw_only=True)
class WrittenFile:
    """A CSV file and its manifest, in place under their final names."""

    manifest_name: str
    sha256: str
    size_bytes: int


class ExportFiles(Protocol):
    """The file format and the directory (adapters/file_export.py). Blocking: called in a
    worker thread."""

    def cells(self, body: bytes, columns: Mapping[str, str]) -> dict[str, str] | None:
        """{column: value} read from a released copy only; None if it holds no object."""
        ...

    def write(
        self,
        directory: str,
        file_name: str,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        manifest: Mapping[str, Any],
    ) -> WrittenFile:
        """Write the CSV, then its manifest, each atomically; raises FileExistsError
        rather than replace a file of that name."""
        ...

    def remove(self, directory: str, names: Sequence[str]) -> None:
        """Delete these files if present."""
        ...


class Pusher(Protocol):
    """Sends one copy to a subscriber's endpoint, signed with its sealed secret."""

    async def push(
        self, url: str, sealed_secret: bytes, copy: Delivered, *, timeout_seconds: float
    ) -> PushResult: ...
