"""Table definitions (sqlmodel). The schema itself is created by the alembic migrations in
hub/store/migrations; tests check that the two agree.

Design notes:
- Disclosures and audit rows carry no foreign keys: they are the accountability record and
  must outlive the messages they describe when retention rules delete payloads.
- outbox has an integer `seq_no` for FIFO order (uuid ids do not sort by arrival) and a
  partial index over the rows not yet done, so claiming and counting pending rows stays
  cheap however many done rows accumulate.
- All datetimes are timezone-aware UTC (see hub.store.types.UtcDateTime).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
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
    __table_args__ = (UniqueConstraint("agent_id", "sif_msg_id"),)

    id: str = Field(sa_column=_col(String(32), primary_key=True))
    agent_id: str = Field(sa_column=_col(String))
    zone: str = Field(sa_column=_col(String))
    sif_msg_id: str = Field(sa_column=_col(String))
    kind: str = Field(sa_column=_col(String))
    version: str = Field(sa_column=_col(String))
    object_name: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    action: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    school: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    received_at: datetime = Field(sa_column=_col(UtcDateTime))
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
    subject_refid: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    object_xml: bytes = Field(sa_column=_col(LargeBinary))
    attempts: int = Field(default=0, sa_column=_col(Integer, server_default=text("0")))
    next_attempt_at: datetime = Field(sa_column=_col(UtcDateTime))
    lease_until: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    last_error: str | None = Field(
        default=None, sa_column=_col(String(LAST_ERROR_MAX), nullable=True)
    )
    done_at: datetime | None = Field(default=None, sa_column=_col(UtcDateTime, nullable=True))
    created_at: datetime = Field(sa_column=_col(UtcDateTime))


class DisclosureRow(HubTable, table=True):
    __tablename__ = "disclosures"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    outbox_id: str = Field(sa_column=_col(String(32), index=True))
    message_id: str = Field(sa_column=_col(String(32)))
    copy_msg_id: str = Field(sa_column=_col(String))
    subscriber: str = Field(sa_column=_col(String, index=True))
    agreement_id: str = Field(sa_column=_col(String))
    agreement_version: int = Field(sa_column=_col(Integer))
    object_name: str = Field(sa_column=_col(String))
    action: str = Field(sa_column=_col(String))
    school: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    subject_refid: str | None = Field(
        default=None, sa_column=_col(String, nullable=True, index=True)
    )
    published_at: datetime = Field(sa_column=_col(UtcDateTime))


class AuditRow(HubTable, table=True):
    __tablename__ = "audit"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(sa_column=_col(UtcDateTime))
    actor: str = Field(sa_column=_col(String))
    action: str = Field(sa_column=_col(String))
    subject: str = Field(sa_column=_col(String))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=_col(Json))


class RejectionRow(HubTable, table=True):
    """Why a message was refused; never its payload (it may hold personal data)."""

    __tablename__ = "rejections"

    id: int | None = Field(
        default=None, sa_column=_col(AutoId, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(sa_column=_col(UtcDateTime))
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
    """Which school a pupil belongs to, remembered from SIF objects that say so."""

    __tablename__ = "learners"

    refid: str = Field(sa_column=_col(String, primary_key=True))
    school: str | None = Field(default=None, sa_column=_col(String, nullable=True))
    upn: str | None = Field(default=None, sa_column=_col(String, nullable=True, index=True))
    updated_at: datetime = Field(sa_column=_col(UtcDateTime))


def table(model: type[HubTable]) -> Table:
    """The Core Table behind a model (the repository speaks Core for speed)."""
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
