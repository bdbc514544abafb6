"""CSV uploads: one row per uploaded file (agent, kind, SHA-256: a file sent again is the
same transaction) with its counts, and the refused rows (line, column, problem; never the
value).

Revision ID: 0008_csv_transactions
Revises: 0011_alerts
Create Date: 2026-12-02

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_csv_transactions"
down_revision: str | Sequence[str] | None = "0011_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "csv_transactions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        sa.Column("zone", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mapping_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("errors_not_listed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_csv_transactions"),
        sa.UniqueConstraint(
            "agent_id", "kind", "sha256", name="uq_csv_transactions_agent_id_kind_sha256"
        ),
    )
    op.create_table(
        "csv_row_errors",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(32), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(), nullable=False),
        sa.Column("problem", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_csv_row_errors"),
    )
    op.create_index("ix_csv_row_errors_transaction_id", "csv_row_errors", ["transaction_id"])


def downgrade() -> None:
    op.drop_index("ix_csv_row_errors_transaction_id", table_name="csv_row_errors")
    op.drop_table("csv_row_errors")
    op.drop_table("csv_transactions")
