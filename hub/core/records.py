"""Rows the pipeline hands to the store and gets back: plain immutable values, no ORM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.core.envelope import Action, MessageKind


@dataclass(frozen=True)
class MessageRecord:
    """A SIF message the hub accepted, kept verbatim."""

    id: str
    agent_id: str
    zone: str
    sif_msg_id: str
    kind: MessageKind
    version: str
    received_at: datetime
    payload: bytes
    object_name: str | None = None
    action: Action | None = None
    school: str | None = None


@dataclass(frozen=True)
class OutboxRecord:
    """One object waiting to be routed: an event's object, or one object of a response."""

    id: str
    message_id: str
    seq: int
    zone: str
    source_agent: str
    object_name: str
    action: Action
    school: str | None
    subject_refid: str | None
    object_xml: bytes
    attempts: int = 0
    object_refid: str | None = None  # the object's own RefId: its learner, when a partial
    # event leaves the learner out, is found through it
    schools: tuple[str, ...] = ()  # every school the object names (`school` is the first)
    # When the store took the row (wall time, stamped by the store: not part of its value);
    # POST-to-publish latency is measured from it.
    created_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DisclosureRecord:
    """One filtered copy released to one recipient (written only after its publish confirm)."""

    outbox_id: str
    message_id: str
    copy_msg_id: str
    subscriber: str
    agreement_id: str
    agreement_version: int
    object_name: str
    action: Action
    school: str | None
    subject_refid: str | None
    published_at: datetime
    upn: str | None = None
    lawful_basis: str = ""
    purpose: str = ""
    paths: tuple[str, ...] = ()
    acknowledged_at: datetime | None = None


@dataclass(frozen=True)
class Actor:
    """Who made a change: an authenticated name (an admin user, "bootstrap", "config",
    "cli"), never a self-declared one, and the free-text note they may add to the audit."""

    name: str
    note: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] = field(default_factory=dict)
    note: str | None = None  # free text the actor added (X-Hub-Note); never an identity


def audited(
    actor: Actor, at: datetime, action: str, subject: str, detail: dict[str, Any] | None = None
) -> AuditRecord:
    """The audit row for a change an actor made: their name, and their note if any."""
    return AuditRecord(at, actor.name, action, subject, dict(detail or {}), actor.note)


@dataclass(frozen=True)
class RejectionRecord:
    """A refused message: no payload is kept (it may hold personal data), only why."""

    at: datetime
    agent_id: str | None
    zone: str
    category: int
    code: int
    object_name: str | None = None


@dataclass(frozen=True)
class Registration:
    agent_id: str
    zone: str
    mode: str  # "Push" | "Pull"
    versions: tuple[str, ...]
    max_buffer_size: int
    registered_at: datetime
    provides: tuple[str, ...] = ()
    subscribes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PacketRecord:
    """One SIF_Response packet, kept until the whole response has arrived."""

    agent_id: str
    request_msg_id: str
    packet_number: int
    more_packets: bool
    message_id: str


@dataclass(frozen=True, kw_only=True)
class Learnt:
    """What one object showed about its learner: the schools it names, the UPN it carries,
    and (`object_refid`) that this object is about that learner."""

    learner: str
    schools: tuple[str, ...] = ()
    upn: str | None = None
    object_refid: str | None = None
    object_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class Staged:
    """Every row one accepted message adds, written together by the group commit."""

    message: MessageRecord
    outbox: tuple[OutboxRecord, ...] = ()
    audit: tuple[AuditRecord, ...] = ()
    learnt: tuple[Learnt, ...] = ()
    at: datetime  # when it was accepted: copies awaiting this identity are due from then


@dataclass(frozen=True, kw_only=True)
class ParkedRecord:
    """An outbox row that kept failing and waits for ops to re-drive it (no payload)."""

    id: str
    message_id: str
    object_name: str
    action: Action
    school: str | None
    attempts: int
    last_error: str | None
    parked_at: datetime


@dataclass(frozen=True, kw_only=True)
class BacklogFigures:
    """The outbox's routing backlog: rows waiting (parked ones aside), when the oldest of
    them arrived, and the parked rows waiting for ops."""

    waiting: int
    oldest: datetime | None
    parked: int


@dataclass(frozen=True, kw_only=True)
class PurgeCounts:
    """What one retention purge removed (or, in a dry run, would remove)."""

    outbox: int = 0
    messages: int = 0
    held: int = 0
    rejections: int = 0
    disclosures: int = 0
    audit: int = 0
    webhook_attempts: int = 0
    export_files: int = 0
    export_rows: int = 0
    feed_items: int = 0

    def __add__(self, other: PurgeCounts) -> PurgeCounts:
        return PurgeCounts(
            **{f: getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__}
        )

    @property
    def total(self) -> int:
        return sum(getattr(self, f) for f in self.__dataclass_fields__)


@dataclass(frozen=True)
class Stats:
    received: dict[str, int]
    rejected: dict[str, int]
    routed: dict[str, int]
    delivered: dict[str, int]
    pending: int
    parked: int = 0


# --- agreements (issue: agreements engine) ----------------------------------------------


@dataclass(frozen=True)
class AgreementVersionRecord:
    """One immutable version of an agreement; `body` is the validated spec as JSON data."""

    agreement_id: str
    version: int
    body: dict[str, Any]
    created_at: datetime
    created_by: str
    widens: bool
    widened_for: frozenset[str] | None = None  # None: recorded before per-recipient scopes


@dataclass(frozen=True)
class LifecycleRecord:
    """Where an agreement stands (one row per agreement, replaced on every transition)."""

    agreement_id: str
    status: str  # draft | live | suspended | terminating | terminated
    reason: str
    changed_at: datetime
    changed_by: str
    suspended_until: datetime | None = None
    notice_effective: datetime | None = None
    review_due: datetime | None = None


@dataclass(frozen=True)
class ApprovalRecord:
    """A school's timestamped receipt: who approved which version of an agreement."""

    agreement_id: str
    laestab: str
    version: int
    approved_by: str
    approved_at: datetime


@dataclass(frozen=True)
class PupilAccessRecord:
    agreement_id: str
    laestab: str
    mode: str  # all | all_except | only
    learners: tuple[str, ...]
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True)
class SuppressionRecord:
    """A learner whose records must never leave (deceased, adopted, confidential placement)."""

    id: str
    learner: str  # LearnerPersonal RefId or UPN
    reason: str
    created_at: datetime
    created_by: str
    lifted_at: datetime | None = None
    lifted_by: str | None = None
    lift_reason: str | None = None


@dataclass(frozen=True)
class HeldRecord:
    """A copy decided but not yet released: waiting for a delivery window, held while its
    agreement is suspended (released or discarded by an explicit decision), or awaiting the
    learner's identity (due again when it arrives; expires if it never does)."""

    id: str
    outbox_id: str
    subscriber: str
    agreement_id: str
    reason: str  # schedule | suspended | identity
    held_at: datetime
    release_after: datetime | None = None  # due from then (schedule; identity once woken)
    decision: str | None = None  # release | discard, for suspended holds
    settled_at: datetime | None = None
    outcome: str | None = None  # released | discarded | dropped | expired


@dataclass(frozen=True, kw_only=True)
class AdminUserRecord:
    """A named admin user. Its API token is "<key_id>.<secret>": the key id finds the row
    (indexed), the secret is checked against its argon2 hash; neither is stored in clear."""

    name: str
    role: str  # hub.core.admins.Role
    key_id: str
    secret_hash: str
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class WebhookAttemptRecord:
    """One try at pushing one released copy to a subscriber's endpoint."""

    copy_msg_id: str
    subscriber: str
    attempt: int  # 1-based
    attempted_at: datetime
    outcome: str  # delivered | retry | dead_lettered
    status_code: int | None = None  # None: no HTTP answer (timeout, connection refused)
    error: str | None = None  # e.g. timeout, connect_error, http_500; never a body
    retry_in_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class StagedRowRecord:
    """One released copy staged as a CSV row for a file subscriber, until a file is cut.
    `cells` come only from the copy: {column: value}, "" where the agreement filtered the
    path out. `export_id` is the file it went into (None while waiting)."""

    copy_msg_id: str
    subscriber: str
    object_name: str
    action: str
    agreement_id: str
    agreement_version: int
    cells: dict[str, str]
    staged_at: datetime
    export_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExportFileRecord:
    """One CSV file written for a file subscriber, and its manifest beside it."""

    id: str  # the admin API's handle: never a name or anything personal
    subscriber: str
    seq: int  # the subscriber's file number, 1, 2, ...
    directory: str
    file_name: str
    manifest_name: str
    rows: int
    counts: dict[str, int]  # rows per object
    agreements: list[str]  # "<agreement id>@<version>" of every row, sorted
    sha256: str
    size_bytes: int
    created_at: datetime
    purge_after: datetime  # the longest retention of its agreements


@dataclass(frozen=True, kw_only=True)
class FeedItemRecord:
    """One released copy kept for a subscriber that pulls (hub.pipeline.feed): the body
    exactly as released, under the subscriber's next cursor (0 until the store gives it)."""

    subscriber: str
    copy_msg_id: str
    object_name: str
    refid: str | None
    action: Action
    body: bytes
    released_at: datetime
    purge_after: datetime
    cursor: int = 0


@dataclass(frozen=True, kw_only=True)
class FeedKeyRecord:
    """A pulling subscriber's API key: its key id (finds the row, no secret) and the
    SHA-256 of its secret; one per subscriber, replaced on rotation."""

    subscriber: str
    key_id: str
    secret_sha256: str
    issued_at: datetime


# --- alerts (issue 10, part 5) -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AlertStateRecord:
    """A condition that holds for one rule and subject (a subscriber, an agreement, the
    outbox): pending until it has held for the rule's `for`, then firing. No row: inactive."""

    rule: str
    subject: str
    status: str  # pending | firing
    since: datetime  # when the condition was first seen holding
    firing_at: datetime | None
    value: float
    summary: str  # counts and ids only: never personal data


@dataclass(frozen=True, kw_only=True)
class AlertEventRecord:
    """One notification: a condition started firing, or resolved. `id` is set by the store."""

    rule: str
    subject: str
    kind: str  # firing | resolved
    at: datetime
    value: float
    summary: str
    id: int | None = None


@dataclass(frozen=True, kw_only=True)
class AlertDeliveryRecord:
    """One event for one target; retried with backoff until delivered or given up."""

    id: int
    event: AlertEventRecord
    target: str  # webhook:1, email (never the URL: it may hold a token)
    attempts: int
    next_attempt_at: datetime | None  # None: delivered or given up
    delivered_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class QueueLevel:
    """A queue's messages and consumers, as the broker last sampled them."""

    messages: int
    consumers: int


@dataclass(frozen=True, kw_only=True)
class CsvRowError:
    """A refused row of a CSV upload: where, and what is wrong; never the value."""

    line: int
    column: str
    problem: str


@dataclass(frozen=True, kw_only=True)
class CsvTransactionRecord:
    """One CSV upload (an agent's file of one kind, known by its SHA-256) and its counts.
    `status`: processing, complete or failed (a failed upload resumes when sent again)."""

    id: str
    agent_id: str
    zone: str
    kind: str
    sha256: str
    mapping_version: int
    status: str
    created_at: datetime
    updated_at: datetime
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    errors_not_listed: int = 0  # refused rows beyond the listed cap


# --- the ops console (issue 10): message journeys and activity figures -------------------

JOURNEY_STATUSES = ("pending", "parked", "routed", "held")


@dataclass(frozen=True, kw_only=True)
class JourneyQuery:
    """A console search over accepted messages; every criterion given must match. `upn` and
    `learner_refid` are canonical (hub.core.identifiers). Newest first; `before` is the
    keyset cursor (received_at, message id) of the last row of the previous page."""

    upn: str | None = None
    learner_refid: str | None = None
    school: str | None = None
    agent: str | None = None
    object_name: str | None = None
    agreement_id: str | None = None
    status: str | None = None  # one of JOURNEY_STATUSES
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[datetime, str] | None = None
    limit: int = 50


@dataclass(frozen=True, kw_only=True)
class MessageSummary:
    """An accepted message without its payload."""

    id: str
    agent_id: str
    zone: str
    sif_msg_id: str
    kind: str
    object_name: str | None
    action: str | None
    school: str | None
    received_at: datetime


@dataclass(frozen=True, kw_only=True)
class JourneyObject:
    """One object of a message on its way: its outbox row's state (no payload)."""

    id: str
    seq: int
    object_name: str
    action: str
    school: str | None
    subject_refid: str | None
    attempts: int
    last_error: str | None
    created_at: datetime | None
    done_at: datetime | None
    parked_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class Journey:
    """A message's whole journey: its objects, the copies held back, the copies released."""

    message: MessageSummary
    objects: tuple[JourneyObject, ...]
    held: tuple[HeldRecord, ...]
    disclosures: tuple[DisclosureRecord, ...]


@dataclass(frozen=True, kw_only=True)
class Activity:
    """Counts since a moment: per object (received, rejected, routed, held, delivered,
    acknowledged) and per subscriber (held, delivered, acknowledged). Routed counts the
    objects of messages received since then that were routed; acknowledged counts the
    copies released since then that were acknowledged."""

    by_object: dict[str, dict[str, int]]
    by_subscriber: dict[str, dict[str, int]]
