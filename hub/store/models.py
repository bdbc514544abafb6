"""Table definitions (sqlmodel). The schema itself is created by the alembic migrations in
hub/store/migrations; tests check that the two agree.

Design notes:
- Disclosures and audit rows carry no foreign keys: they are the accountability record and
  must outlive the messages they describe when retention rules delete payloads.
- outbox has an integer `seq_no` for FIFO order (uuid ids do not sort by arrival) and a
  partial index over the rows not yet done, so claiming and counting pending rows stays
  cheap however many done rows accumulate.
- All datetimes are timezone-aware UTC (see hub.store.types.UtcDateTime).
- Agreements (0002): versions are immutable rows; lifecycle and pupil access are one row
  per key, replaced. Held copies keep only a reference to their outbox row; small partial
  indexes over the unsettled rows keep the dispatcher's polling cheap as settled rows pile up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from hub.store.types import AutoId, Json, UtcDateTime

# Deterministic constraint names, so later migrations can drop or alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
LAST_ERROR_MAX = 500

# A registry of our own keeps these tables out of SQLModel's global metadata.
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class HubTable(SQLModel, registry=registry(metadata=metadata)):
    """Base of every hub table."""


def _col(type_: Any, *args: Any, nullable: bool = False, **kwargs: Any) -> Any:
    """A Column for `Field(sa_column=...)`; NOT NULL unless asked."""
    return Column(type_, *args, nullable=nullable, **kwargs)


class MessageRow(HubTable, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("agent_id", "sif_msg_id"),
        # 0012: the console's search by school, object or agent, newest first.
        Index("ix_messages_school_received_at", "school", "received_at"),
        Index("ix_messages_object_name_received_at", "object_name", "received_at"),
        Index("ix_messages_agent_id_received_at", "agent_id", "received_at"),
    )

    id: str = Field(sa_column=_col(String(32), primary_key=True))
    agent_id: str = Field(sa_column=_col(String))
    zone: str = Field(sa_column=_col(String))
    sif_msg_id: str = Field(sa_column=_col(String))
    kind: str = Field(sa_column=_col(String))
    version: str = Field(sa_column=_col(String))
    object_name: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    action: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    school: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    # 0003: indexed for retention (messages no agreement covered go by age).
    received_at: datetime = Field(sa_column=_col(UtcDateTime, index=True))
    payload: bytes = Field(sa_column=_col(LargeBinary))


class OutboxRow(HubTable, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        # "Pending in order": only undone rows are indexed, walked in seq_no order.
        Index(
            "ix_outbox_pending",
            "seq_no",
            postgresql_where=text("done_at IS NULL"),
            sqlite_where=text("done_at IS NULL"),
        ),
        # 0003: rows set aside after failing too often, until ops re-drive them.
        Index(
            "ix_outbox_parked",
            "parked_at",
            postgresql_where=text("parked_at IS NOT NULL AND done_at IS NULL"),
            sqlite_where=text("parked_at IS NOT NULL AND done_at IS NULL"),
        ),
        # 0003: routed rows by when retention lets their payload go.
        Index(
            "ix_outbox_purgeable",
            "purge_after",
            postgresql_where=text("done_at IS NOT NULL"),
            sqlite_where=text("done_at IS NOT NULL"),
        ),
    )

    seq_no: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    id: str = Field(sa_column=_col(String(32), unique=True))
    message_id: str = Field(
        sa_column=_col(String(32), ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    )
    seq: int = Field(sa_column=_col(Integer))
    zone: str = Field(sa_column=_col(String))
    source_agent: str = Field(sa_column=_col(String))
    object_name: str = Field(sa_column=_col(String))
    action: str = Field(sa_column=_col(String))
    school: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    # 0003: indexed, so that copies awaiting a learner's identity are found when it arrives.
    subject_refid: str | None = Field(
        default=None, sa_column=_col(String, nullable=True, index=True)
    )
    object_refid: str | None = Field(
        default=None, sa_column=_col(String, nullable=True, index=True)
    )
    schools: list[str] = Field(
        default_factory=list, sa_column=_col(Json, server_default=text("'[]'"))
    )
    object_xml: bytes = Field(sa_column=_col(LargeBinary))
    attempts: int = Field(default=0, sa_column=_col(Integer, server_default=text("0")))
    next_attempt_at: datetime = Field(sa_column=_col(UtcDateTime))
    lease_until: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    last_error: str | None = Field(
        default=None, sa_column=_col(String(LAST_ERROR_MAX), nullable=True)
    )
    done_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    created_at: datetime = Field(sa_column=_col(UtcDateTime))
    purge_after: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    parked_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))


class DisclosureRow(HubTable, table=True):
    __tablename__ = "disclosures"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    outbox_id: str = Field(sa_column=_col(String(32), index=True))
    # 0012: indexed for the console (a message's journey; search by agreement).
    message_id: str = Field(sa_column=_col(String(32), index=True))
    copy_msg_id: str = Field(sa_column=_col(String, index=True))
    subscriber: str = Field(sa_column=_col(String, index=True))
    agreement_id: str = Field(sa_column=_col(String, index=True))
    agreement_version: int = Field(sa_column=_col(Integer))
    object_name: str = Field(sa_column=_col(String))
    action: str = Field(sa_column=_col(String))
    school: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    subject_refid: str | None = Field(
        default=None, sa_column=_col(String, nullable=True, index=True)
    )
    published_at: datetime = Field(sa_column=_col(UtcDateTime, index=True))
    # 0002: the subject access record. `upn` may be unknown when the copy left (found then
    # through learners.refid); copy_msg_id is indexed for the recipient's acknowledgement.
    upn: str | None = Field(default=None, sa_column=_col(String, nullable=True, index=True))
    lawful_basis: str = Field(default="", sa_column=_col(String, server_default=text("''")))
    purpose: str = Field(default="", sa_column=_col(String, server_default=text("''")))
    paths: list[str] = Field(
        default_factory=list, sa_column=_col(Json, server_default=text("'[]'"))
    )
    acknowledged_at: datetime | None = Field(
        default=None, sa_column=_col(UtcDateTime, nullable=True)
    )


class AuditRow(HubTable, table=True):
    __tablename__ = "audit"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(sa_column=_col(UtcDateTime, index=True))
    actor: str = Field(sa_column=_col(String))
    action: str = Field(sa_column=_col(String))
    subject: str = Field(sa_column=_col(String))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=_col(Json))
    # 0004: the actor's own free-text note (X-Hub-Note); the actor is who authenticated.
    note: str | None = Field(default=None, sa_column=_col(String, nullable=True))


class RejectionRow(HubTable, table=True):
    """Why a message was refused; never its payload (it may hold personal data)."""

    __tablename__ = "rejections"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(sa_column=_col(UtcDateTime, index=True))
    agent_id: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    zone: str = Field(sa_column=_col(String))
    category: int = Field(sa_column=_col(Integer))
    code: int = Field(sa_column=_col(Integer))
    object_name: str | None = Field(default=None, sa_column=_col(String, nullable=True))


class RegistrationRow(HubTable, table=True):
    __tablename__ = "registrations"

    agent_id: str = Field(sa_column=_col(String, primary_key=True))
    zone: str = Field(sa_column=_col(String, primary_key=True))
    mode: str = Field(sa_column=_col(String))
    versions: list[str] = Field(sa_column=_col(Json))
    max_buffer_size: int = Field(sa_column=_col(Integer))
    registered_at: datetime = Field(sa_column=_col(UtcDateTime))
    provides: list[str] = Field(default_factory=list, sa_column=_col(Json))
    subscribes: list[str] = Field(default_factory=list, sa_column=_col(Json))


class ResponsePacketRow(HubTable, table=True):
    __tablename__ = "response_packets"

    agent_id: str = Field(sa_column=_col(String, primary_key=True))
    request_msg_id: str = Field(sa_column=_col(String, primary_key=True))
    packet_number: int = Field(sa_column=_col(Integer, primary_key=True, autoincrement=False))
    more_packets: bool = Field(sa_column=_col(Boolean))
    message_id: str = Field(
        sa_column=_col(String(32), ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    )


class LearnerRow(HubTable, table=True):
    """A learner's UPN, remembered from the SIF objects that carry it (canonical form)."""

    __tablename__ = "learners"

    refid: str = Field(sa_column=_col(String, primary_key=True))
    upn: str | None = Field(default=None, sa_column=_col(String, nullable=True, index=True))
    updated_at: datetime = Field(sa_column=_col(UtcDateTime))


class LearnerSchoolRow(HubTable, table=True):
    """0003: a school an object showed the learner at (a learner may be at several: dual
    registration, a move). Rows are only ever added: no agent can take a learner away."""

    __tablename__ = "learner_schools"

    refid: str = Field(sa_column=_col(String, primary_key=True))
    laestab: str = Field(sa_column=_col(String, primary_key=True))
    first_seen: datetime = Field(sa_column=_col(UtcDateTime))


class LearnerUpnRow(HubTable, table=True):
    """0012: every UPN a learner has been shown with, only ever added: a UPN-keyed
    exclusion (suppression, a school's all-except list) keeps holding when a later object
    gives the learner another UPN (a temporary UPN replaced, or an adoption)."""

    __tablename__ = "learner_upns"
    # 0012_console_indexes: the console finds a child by a former UPN too.
    __table_args__ = (Index("ix_learner_upns_upn", "upn"),)

    refid: str = Field(sa_column=_col(String, primary_key=True))
    upn: str = Field(sa_column=_col(String, primary_key=True))
    first_seen: datetime = Field(sa_column=_col(UtcDateTime))


class ObjectLearnerRow(HubTable, table=True):
    """0003: which learner a learner-scoped object is about, by the object's own RefId, for
    partial Change and Delete events that leave the learner out."""

    __tablename__ = "object_learners"

    object_refid: str = Field(sa_column=_col(String, primary_key=True))
    object_name: str = Field(sa_column=_col(String))
    learner_refid: str = Field(sa_column=_col(String, index=True))
    updated_at: datetime = Field(sa_column=_col(UtcDateTime))


# -- agreements (0002) -------------------------------------------------------------------


class AgreementVersionRow(HubTable, table=True):
    """One immutable version of an agreement (never updated; a change is a new version)."""

    __tablename__ = "agreement_versions"

    agreement_id: str = Field(sa_column=_col(String, primary_key=True))
    version: int = Field(sa_column=_col(Integer, primary_key=True, autoincrement=False))
    body: dict[str, Any] = Field(sa_column=_col(Json))
    created_at: datetime = Field(sa_column=_col(UtcDateTime))
    created_by: str = Field(sa_column=_col(String))
    widens: bool = Field(sa_column=_col(Boolean))
    # The recipients whose scope this version widens (0007; NULL before: `widens` for all).
    widened_for: list[str] | None = Field(default=None, sa_column=_col(Json, nullable=True))


class LifecycleRow(HubTable, table=True):
    __tablename__ = "agreement_lifecycle"

    agreement_id: str = Field(sa_column=_col(String, primary_key=True))
    status: str = Field(sa_column=_col(String))
    reason: str = Field(sa_column=_col(String))
    changed_at: datetime = Field(sa_column=_col(UtcDateTime))
    changed_by: str = Field(sa_column=_col(String))
    suspended_until: datetime | None = Field(
        default=None, sa_column=_col(UtcDateTime, nullable=True)
    )
    notice_effective: datetime | None = Field(
        default=None, sa_column=_col(UtcDateTime, nullable=True)
    )
    review_due: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))


class ApprovalRow(HubTable, table=True):
    """A school's receipt; the first approval of a version is the one kept."""

    __tablename__ = "agreement_approvals"

    # The key is the uniqueness: one receipt per school and version.
    agreement_id: str = Field(sa_column=_col(String, primary_key=True))
    laestab: str = Field(sa_column=_col(String, primary_key=True))
    version: int = Field(sa_column=_col(Integer, primary_key=True, autoincrement=False))
    approved_by: str = Field(sa_column=_col(String))
    approved_at: datetime = Field(sa_column=_col(UtcDateTime))


class PupilAccessRow(HubTable, table=True):
    __tablename__ = "pupil_access"

    agreement_id: str = Field(sa_column=_col(String, primary_key=True))
    laestab: str = Field(sa_column=_col(String, primary_key=True))
    mode: str = Field(sa_column=_col(String))
    learners: list[str] = Field(default_factory=list, sa_column=_col(Json))
    changed_at: datetime = Field(sa_column=_col(UtcDateTime))
    changed_by: str = Field(sa_column=_col(String))


class CohortMemberRow(HubTable, table=True):
    """One learner of a cohort a recipient service supplied (the set is replaced whole)."""

    __tablename__ = "cohort_members"

    subscriber: str = Field(sa_column=_col(String, primary_key=True))
    cohort: str = Field(sa_column=_col(String, primary_key=True))
    member: str = Field(sa_column=_col(String, primary_key=True))


class SuppressionRow(HubTable, table=True):
    __tablename__ = "suppressions"

    id: str = Field(sa_column=_col(String, primary_key=True))
    learner: str = Field(sa_column=_col(String, index=True))
    reason: str = Field(sa_column=_col(String))
    created_at: datetime = Field(sa_column=_col(UtcDateTime))
    created_by: str = Field(sa_column=_col(String))
    lifted_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    lifted_by: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    lift_reason: str | None = Field(default=None, sa_column=_col(String, nullable=True))


class AdminUserRow(HubTable, table=True):
    """0004: a named admin user; its token's secret is kept as an argon2 hash only."""

    __tablename__ = "admin_users"

    name: str = Field(sa_column=_col(String, primary_key=True))
    role: str = Field(sa_column=_col(String))
    key_id: str = Field(sa_column=_col(String(32), unique=True))
    secret_hash: str = Field(sa_column=_col(String))
    created_at: datetime = Field(sa_column=_col(UtcDateTime))
    rotated_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))


# Partial-index predicates, shared with the repositories' queries (which must match them
# for the planner to use the index).
HELD_UNSETTLED = "settled_at IS NULL"
HELD_DUE = "settled_at IS NULL AND release_after IS NOT NULL"
HELD_RELEASED = "settled_at IS NULL AND decision = 'release'"
HELD_IDENTITY = "settled_at IS NULL AND reason = 'identity'"


def _partial(name: str, *columns: str, where: str) -> Index:
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where))


class HeldCopyRow(HubTable, table=True):
    """A copy decided but not yet released. No foreign key to outbox: like disclosures,
    the row must outlive retention deleting the message it came from."""

    __tablename__ = "held_copies"
    __table_args__ = (
        # Unsettled rows per agreement and reason: held.decide, held.summary.
        _partial("ix_held_copies_unsettled", "agreement_id", "reason", where=HELD_UNSETTLED),
        # 0003: due at a time (a window, an identity that arrived), by when: claim_due.
        _partial("ix_held_copies_due", "release_after", where=HELD_DUE),
        # Suspended copies a decision released, oldest first: claim_due.
        _partial("ix_held_copies_released", "held_at", where=HELD_RELEASED),
        # 0003: awaiting a learner's identity, oldest first: expiry.
        _partial("ix_held_copies_identity", "held_at", where=HELD_IDENTITY),
        # 0012: the console (a message's held copies; the dashboard's counts since a time).
        Index("ix_held_copies_outbox_id", "outbox_id"),
        Index("ix_held_copies_held_at", "held_at"),
    )

    id: str = Field(sa_column=_col(String, primary_key=True))
    outbox_id: str = Field(sa_column=_col(String(32)))
    subscriber: str = Field(sa_column=_col(String))
    agreement_id: str = Field(sa_column=_col(String))
    reason: str = Field(sa_column=_col(String))
    held_at: datetime = Field(sa_column=_col(UtcDateTime))
    release_after: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    decision: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    settled_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    outcome: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    # 0003: a releaser's claim, so that hubs sharing a database never release a copy twice.
    lease_until: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))


class WebhookSecretRow(HubTable, table=True):
    """A webhook subscriber's signing secret, sealed (the hub signs with it, so it cannot
    keep a hash; see adapters/webhook.py). One per subscriber, replaced on rotation."""

    __tablename__ = "webhook_secrets"

    subscriber: str = Field(sa_column=_col(String, primary_key=True))
    sealed: bytes = Field(sa_column=_col(LargeBinary))
    issued_at: datetime = Field(sa_column=_col(UtcDateTime))


class WebhookAttemptRow(HubTable, table=True):
    """One try at pushing one copy (0006). Like disclosures: no foreign keys, purged with
    the accountability records."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    copy_msg_id: str = Field(sa_column=_col(String, index=True))
    subscriber: str = Field(sa_column=_col(String))
    attempt: int = Field(sa_column=_col(Integer))
    attempted_at: datetime = Field(sa_column=_col(UtcDateTime, index=True))
    outcome: str = Field(sa_column=_col(String))
    status_code: int | None = Field(default=None, sa_column=_col(Integer, nullable=True))
    error: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    retry_in_ms: int | None = Field(default=None, sa_column=_col(Integer, nullable=True))


class ExportRowRow(HubTable, table=True):
    """A released copy staged as a CSV row for a file subscriber (0010). Holds personal data
    (the cells): deleted with its file when the file's retention ends."""

    __tablename__ = "export_rows"
    __table_args__ = (
        # "Waiting for a file": only rows not yet cut are indexed.
        Index(
            "ix_export_rows_waiting",
            "subscriber",
            "staged_at",
            postgresql_where=text("export_id IS NULL"),
            sqlite_where=text("export_id IS NULL"),
        ),
    )

    copy_msg_id: str = Field(sa_column=_col(String, primary_key=True))
    subscriber: str = Field(sa_column=_col(String))
    object_name: str = Field(sa_column=_col(String))
    action: str = Field(sa_column=_col(String))
    agreement_id: str = Field(sa_column=_col(String))
    agreement_version: int = Field(sa_column=_col(Integer))
    cells: dict[str, str] = Field(default_factory=dict, sa_column=_col(Json))
    staged_at: datetime = Field(sa_column=_col(UtcDateTime))
    export_id: str | None = Field(
        default=None, sa_column=_col(String(32), nullable=True, index=True)
    )


class ExportFileRow(HubTable, table=True):
    """A CSV file written for a file subscriber, and its manifest (0010)."""

    __tablename__ = "export_files"

    id: str = Field(sa_column=_col(String(32), primary_key=True))
    subscriber: str = Field(sa_column=_col(String, index=True))
    seq: int = Field(sa_column=_col(Integer))
    directory: str = Field(sa_column=_col(String))
    file_name: str = Field(sa_column=_col(String))
    manifest_name: str = Field(sa_column=_col(String))
    rows: int = Field(sa_column=_col(Integer))
    counts: dict[str, int] = Field(default_factory=dict, sa_column=_col(Json))
    agreements: list[str] = Field(default_factory=list, sa_column=_col(Json))
    sha256: str = Field(sa_column=_col(String(64)))
    size_bytes: int = Field(sa_column=_col(AutoId))
    created_at: datetime = Field(sa_column=_col(UtcDateTime))
    purge_after: datetime = Field(sa_column=_col(UtcDateTime, index=True))


class FeedItemRow(HubTable, table=True):
    """0009: one released copy kept for a subscriber that pulls (api delivery), the body as
    released; `cursor` grows per subscriber in commit order (see FeedHeadRow)."""

    __tablename__ = "feed_items"
    __table_args__ = (UniqueConstraint("subscriber", "cursor"),)

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    subscriber: str = Field(sa_column=_col(String))
    cursor: int = Field(sa_column=_col(BigInteger))
    copy_msg_id: str = Field(sa_column=_col(String, unique=True))
    object_name: str = Field(sa_column=_col(String))
    refid: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    action: str = Field(sa_column=_col(String))
    body: bytes = Field(sa_column=_col(LargeBinary))
    released_at: datetime = Field(sa_column=_col(UtcDateTime))
    purge_after: datetime = Field(sa_column=_col(UtcDateTime, index=True))


class FeedHeadRow(HubTable, table=True):
    """0009: each pulling subscriber's last cursor. Taking the next one updates this row,
    whose lock is held to commit, so cursors commit in order and a reader never skips one."""

    __tablename__ = "feed_heads"

    subscriber: str = Field(sa_column=_col(String, primary_key=True))
    last_cursor: int = Field(sa_column=_col(BigInteger))


class FeedKeyRow(HubTable, table=True):
    """0009: a pulling subscriber's API key: key id and SHA-256 of the secret only."""

    __tablename__ = "feed_keys"

    subscriber: str = Field(sa_column=_col(String, primary_key=True))
    key_id: str = Field(sa_column=_col(String, unique=True))
    secret_sha256: str = Field(sa_column=_col(String))
    issued_at: datetime = Field(sa_column=_col(UtcDateTime))


class AlertStateRow(HubTable, table=True):
    """A rule and subject whose condition holds (0011): pending or firing. Deleted when it
    no longer holds, so a restarted hub neither notifies again nor forgets a firing alert."""

    __tablename__ = "alert_states"

    rule: str = Field(sa_column=_col(String, primary_key=True))
    subject: str = Field(sa_column=_col(String, primary_key=True))
    status: str = Field(sa_column=_col(String))
    since: datetime = Field(sa_column=_col(UtcDateTime))
    firing_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    value: float = Field(sa_column=_col(Float))
    summary: str = Field(sa_column=_col(String))


class AlertEventRow(HubTable, table=True):
    """One notification made (0011): a condition started firing, or resolved."""

    __tablename__ = "alert_events"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    rule: str = Field(sa_column=_col(String))
    subject: str = Field(sa_column=_col(String))
    kind: str = Field(sa_column=_col(String))
    at: datetime = Field(sa_column=_col(UtcDateTime, index=True))
    value: float = Field(sa_column=_col(Float))
    summary: str = Field(sa_column=_col(String))


class AlertDeliveryRow(HubTable, table=True):
    """One notification for one target (0011), like the outbox: due at `next_attempt_at`
    (NULL once delivered or given up), leased while being sent."""

    __tablename__ = "alert_deliveries"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    event_id: int = Field(sa_column=_col(AutoId, index=True))
    target: str = Field(sa_column=_col(String))
    attempts: int = Field(sa_column=_col(Integer))
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=_col(UtcDateTime, nullable=True, index=True)
    )
    delivered_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    last_error: str | None = Field(default=None, sa_column=_col(String, nullable=True))


class CsvTransactionRow(HubTable, table=True):
    """One CSV upload (0008): an agent's file of one kind, known by its SHA-256 (a file
    sent again is the same transaction), and its counts."""

    __tablename__ = "csv_transactions"
    __table_args__ = (UniqueConstraint("agent_id", "kind", "sha256"),)

    id: str = Field(sa_column=_col(String(32), primary_key=True))
    agent_id: str = Field(sa_column=_col(String))
    zone: str = Field(sa_column=_col(String))
    kind: str = Field(sa_column=_col(String))
    sha256: str = Field(sa_column=_col(String(64)))
    mapping_version: int = Field(sa_column=_col(Integer))
    status: str = Field(sa_column=_col(String))
    created_at: datetime = Field(sa_column=_col(UtcDateTime))
    updated_at: datetime = Field(sa_column=_col(UtcDateTime))
    rows: int = Field(default=0, sa_column=_col(Integer))
    accepted: int = Field(default=0, sa_column=_col(Integer))
    rejected: int = Field(default=0, sa_column=_col(Integer))
    errors_not_listed: int = Field(default=0, sa_column=_col(Integer))


class CsvRowErrorRow(HubTable, table=True):
    """A refused row of a CSV upload (0008): line, column, problem; never the value."""

    __tablename__ = "csv_row_errors"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    transaction_id: str = Field(sa_column=_col(String(32), index=True))
    line: int = Field(sa_column=_col(Integer))
    column: str = Field(sa_column=_col(String))
    problem: str = Field(sa_column=_col(String))


def table(model: type[HubTable]) -> Table:
    """The Core Table behind a model (the repositories speak Core for speed)."""
    result = model.__table__  # type: ignore[attr-defined]
    assert isinstance(result, Table)
    return result


messages = table(MessageRow)
outbox = table(OutboxRow)
disclosures = table(DisclosureRow)
audit = table(AuditRow)
rejections = table(RejectionRow)
registrations = table(RegistrationRow)
response_packets = table(ResponsePacketRow)
learners = table(LearnerRow)
learner_schools = table(LearnerSchoolRow)
learner_upns = table(LearnerUpnRow)
object_learners = table(ObjectLearnerRow)
agreement_versions = table(AgreementVersionRow)
agreement_lifecycle = table(LifecycleRow)
agreement_approvals = table(ApprovalRow)
pupil_access = table(PupilAccessRow)
cohort_members = table(CohortMemberRow)
suppressions = table(SuppressionRow)
held_copies = table(HeldCopyRow)
admin_users = table(AdminUserRow)
webhook_secrets = table(WebhookSecretRow)
webhook_attempts = table(WebhookAttemptRow)
export_rows = table(ExportRowRow)
export_files = table(ExportFileRow)
csv_transactions = table(CsvTransactionRow)
csv_row_errors = table(CsvRowErrorRow)
feed_items = table(FeedItemRow)
feed_heads = table(FeedHeadRow)
feed_keys = table(FeedKeyRow)
alert_states = table(AlertStateRow)
alert_events = table(AlertEventRow)
alert_deliveries = table(AlertDeliveryRow)
