"""Agreements: versions, lifecycle, school approvals, pupil access, cohorts, suppressions,
held copies; the subject access columns of disclosures.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

Written by hand and checked against hub.store.models by tests/integration/test_store.py
(autogenerate must find no difference). Types are spelled out here, as in 0001.

Existing disclosure rows get an empty lawful basis, purpose and path list (server
defaults) and no UPN; the subject access query still finds them through learners.refid.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)

# Partial-index predicates (the same text as hub.store.models, copied so that this
# revision never changes when the models do).
HELD_UNSETTLED = "settled_at IS NULL"
HELD_SCHEDULED = "settled_at IS NULL AND reason = 'schedule'"
HELD_RELEASED = "settled_at IS NULL AND decision = 'release'"


def _text(name: str, *, nullable: bool = False, length: int | None = None) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTC_TIME, nullable=nullable)


def _partial_index(name: str, table: str, columns: list[str], where: str) -> None:
    op.create_index(
        name, table, columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
    )


def upgrade() -> None:
    _disclosure_columns()
    _agreement_versions()
    _agreement_lifecycle()
    _agreement_approvals()
    _pupil_access()
    _cohort_members()
    _suppressions()
    _held_copies()


def _disclosure_columns() -> None:
    # Plain ADD COLUMN on both backends (nullable, or NOT NULL with a constant default),
    # so SQLite needs no table rebuild and PostgreSQL no rewrite (PG 11+ stores the default).
    op.add_column("disclosures", _text("upn", nullable=True))
    op.add_column(
        "disclosures",
        sa.Column("lawful_basis", sa.String(), server_default=sa.text("''"), nullable=False),
    )
    op.add_column(
        "disclosures",
        sa.Column("purpose", sa.String(), server_default=sa.text("''"), nullable=False),
    )
    op.add_column(
        "disclosures",
        sa.Column("paths", JSON, server_default=sa.text("'[]'"), nullable=False),
    )
    op.add_column("disclosures", _time("acknowledged_at", nullable=True))
    op.create_index("ix_disclosures_upn", "disclosures", ["upn"])
    op.create_index("ix_disclosures_copy_msg_id", "disclosures", ["copy_msg_id"])


def _agreement_versions() -> None:
    op.create_table(
        "agreement_versions",
        _text("agreement_id"),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", JSON, nullable=False),
        _time("created_at"),
        _text("created_by"),
        sa.Column("widens", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", "version", name="pk_agreement_versions"),
    )


def _agreement_lifecycle() -> None:
    op.create_table(
        "agreement_lifecycle",
        _text("agreement_id"),
        _text("status"),
        _text("reason"),
        _time("changed_at"),
        _text("changed_by"),
        _time("suspended_until", nullable=True),
        _time("notice_effective", nullable=True),
        _time("review_due", nullable=True),
        sa.PrimaryKeyConstraint("agreement_id", name="pk_agreement_lifecycle"),
    )


def _agreement_approvals() -> None:
    op.create_table(
        "agreement_approvals",
        _text("agreement_id"),
        _text("laestab"),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        _text("approved_by"),
        _time("approved_at"),
        sa.PrimaryKeyConstraint(
            "agreement_id", "laestab", "version", name="pk_agreement_approvals"
        ),
    )


def _pupil_access() -> None:
    op.create_table(
        "pupil_access",
        _text("agreement_id"),
        _text("laestab"),
        _text("mode"),
        sa.Column("learners", JSON, nullable=False),
        _time("changed_at"),
        _text("changed_by"),
        sa.PrimaryKeyConstraint("agreement_id", "laestab", name="pk_pupil_access"),
    )


def _cohort_members() -> None:
    op.create_table(
        "cohort_members",
        _text("subscriber"),
        _text("cohort"),
        _text("member"),
        sa.PrimaryKeyConstraint("subscriber", "cohort", "member", name="pk_cohort_members"),
    )


def _suppressions() -> None:
    op.create_table(
        "suppressions",
        _text("id"),
        _text("learner"),
        _text("reason"),
        _time("created_at"),
        _text("created_by"),
        _time("lifted_at", nullable=True),
        _text("lifted_by", nullable=True),
        _text("lift_reason", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
    )
    op.create_index("ix_suppressions_learner", "suppressions", ["learner"])


def _held_copies() -> None:
    op.create_table(
        "held_copies",
        _text("id"),
        _text("outbox_id", length=32),
        _text("subscriber"),
        _text("agreement_id"),
        _text("reason"),
        _time("held_at"),
        _time("release_after", nullable=True),
        _text("decision", nullable=True),
        _time("settled_at", nullable=True),
        _text("outcome", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_held_copies"),
    )
    # Only unsettled rows are indexed, so polling stays cheap however many settled rows
    # accumulate (the same idea as ix_outbox_pending).
    _partial_index(
        "ix_held_copies_unsettled", "held_copies", ["agreement_id", "reason"], HELD_UNSETTLED
    )
    _partial_index("ix_held_copies_scheduled", "held_copies", ["release_after"], HELD_SCHEDULED)
    _partial_index("ix_held_copies_released", "held_copies", ["held_at"], HELD_RELEASED)


def downgrade() -> None:
    for table in (
        "held_copies",
        "suppressions",
        "cohort_members",
        "pupil_access",
        "agreement_approvals",
        "agreement_lifecycle",
        "agreement_versions",
    ):
        op.drop_table(table)
    op.drop_index("ix_disclosures_copy_msg_id", table_name="disclosures")
    op.drop_index("ix_disclosures_upn", table_name="disclosures")
    # SQLite drops columns by rebuilding the table (batch mode); PostgreSQL alters in place.
    with op.batch_alter_table("disclosures") as batch:
        for column in ("acknowledged_at", "paths", "purpose", "lawful_basis", "upn"):
            batch.drop_column(column)
