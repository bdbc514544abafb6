"""Initial schema: messages, outbox, disclosures, audit, rejections, registrations,
response packets, learners.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand and checked against hub.store.models by tests/integration/test_store.py
(autogenerate must find no difference). Types are spelled out here rather than imported
from hub.store so that this revision never changes when the models do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)


def _id(name: str = "id") -> sa.Column[int]:
    return sa.Column(name, AUTO_ID, primary_key=True, autoincrement=True, nullable=False)


def _text(name: str, *, nullable: bool = False, length: int | None = None) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTC_TIME, nullable=nullable)


def upgrade() -> None:
    _messages()
    _outbox()
    _disclosures()
    _audit()
    _rejections()
    _registrations()
    _response_packets()
    _learners()


def _messages() -> None:
    op.create_table(
        "messages",
        _text("id", length=32),
        _text("agent_id"),
        _text("zone"),
        _text("sif_msg_id"),
        _text("kind"),
        _text("version"),
        _text("object_name", nullable=True),
        _text("action", nullable=True),
        _text("school", nullable=True),
        _time("received_at"),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("agent_id", "sif_msg_id", name="uq_messages_agent_id_sif_msg_id"),
    )


def _outbox() -> None:
    op.create_table(
        "outbox",
        _id("seq_no"),
        _text("id", length=32),
        _text("message_id", length=32),
        sa.Column("seq", sa.Integer(), nullable=False),
        _text("zone"),
        _text("source_agent"),
        _text("object_name"),
        _text("action"),
        _text("school", nullable=True),
        _text("subject_refid", nullable=True),
        sa.Column("object_xml", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _time("next_attempt_at"),
        _time("lease_until", nullable=True),
        _text("last_error", nullable=True, length=500),
        _time("done_at", nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("seq_no", name="pk_outbox"),
        sa.UniqueConstraint("id", name="uq_outbox_id"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_outbox_message_id_messages",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"])
    # Only rows still to route, walked in arrival order: what claim_outbox reads.
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["seq_no"],
        postgresql_where=sa.text("done_at IS NULL"),
        sqlite_where=sa.text("done_at IS NULL"),
    )


def _disclosures() -> None:
    op.create_table(
        "disclosures",
        _id(),
        _text("outbox_id", length=32),
        _text("message_id", length=32),
        _text("copy_msg_id"),
        _text("subscriber"),
        _text("agreement_id"),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        _text("object_name"),
        _text("action"),
        _text("school", nullable=True),
        _text("subject_refid", nullable=True),
        _time("published_at"),
        sa.PrimaryKeyConstraint("id", name="pk_disclosures"),
    )
    op.create_index("ix_disclosures_outbox_id", "disclosures", ["outbox_id"])
    op.create_index("ix_disclosures_subscriber", "disclosures", ["subscriber"])
    op.create_index("ix_disclosures_subject_refid", "disclosures", ["subject_refid"])


def _audit() -> None:
    op.create_table(
        "audit",
        _id(),
        _time("at"),
        _text("actor"),
        _text("action"),
        _text("subject"),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )


def _rejections() -> None:
    op.create_table(
        "rejections",
        _id(),
        _time("at"),
        _text("agent_id", nullable=True),
        _text("zone"),
        sa.Column("category", sa.Integer(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        _text("object_name", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rejections"),
    )


def _registrations() -> None:
    op.create_table(
        "registrations",
        _text("agent_id"),
        _text("zone"),
        _text("mode"),
        sa.Column("versions", JSON, nullable=False),
        sa.Column("max_buffer_size", sa.Integer(), nullable=False),
        _time("registered_at"),
        sa.Column("provides", JSON, nullable=False),
        sa.Column("subscribes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "zone", name="pk_registrations"),
    )


def _response_packets() -> None:
    op.create_table(
        "response_packets",
        _text("agent_id"),
        _text("request_msg_id"),
        sa.Column("packet_number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("more_packets", sa.Boolean(), nullable=False),
        _text("message_id", length=32),
        sa.PrimaryKeyConstraint(
            "agent_id", "request_msg_id", "packet_number", name="pk_response_packets"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_response_packets_message_id_messages",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_response_packets_message_id", "response_packets", ["message_id"])


def _learners() -> None:
    op.create_table(
        "learners",
        _text("refid"),
        _text("school", nullable=True),
        _text("upn", nullable=True),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("refid", name="pk_learners"),
    )
    op.create_index("ix_learners_upn", "learners", ["upn"])


def downgrade() -> None:
    for table in (
        "learners",
        "response_packets",
        "registrations",
        "rejections",
        "audit",
        "disclosures",
        "outbox",
        "messages",
    ):
        op.drop_table(table)
