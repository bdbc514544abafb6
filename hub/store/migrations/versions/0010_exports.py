"""Scheduled file exports: each file subscriber's copies staged as rows (one per copy), and
the CSV files cut from them.

Revision ID: 0010_exports
Revises: 0008_csv_transactions (chained after main's head when main was merged in; the
brief said 0007)
Create Date: 2026-12-02

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_exports"
down_revision: str | Sequence[str] | None = "0008_csv_transactions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "export_rows",
        sa.Column("copy_msg_id", sa.String(), nullable=False),
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("object_name", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("agreement_id", sa.String(), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("cells", JSON, nullable=False),
        sa.Column("staged_at", UTC_TIME, nullable=False),
        sa.Column("export_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("copy_msg_id", name="pk_export_rows"),
    )
    op.create_index("ix_export_rows_export_id", "export_rows", ["export_id"])
    op.create_index(
        "ix_export_rows_waiting",
        "export_rows",
        ["subscriber", "staged_at"],
        postgresql_where=sa.text("export_id IS NULL"),
        sqlite_where=sa.text("export_id IS NULL"),
    )
    op.create_table(
        "export_files",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("directory", sa.String(), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("manifest_name", sa.String(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("agreements", JSON, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", AUTO_ID, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("purge_after", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_export_files"),
    )
    op.create_index("ix_export_files_subscriber", "export_files", ["subscriber"])
    op.create_index("ix_export_files_purge_after", "export_files", ["purge_after"])


def downgrade() -> None:
    op.drop_index("ix_export_files_purge_after", table_name="export_files")
    op.drop_index("ix_export_files_subscriber", table_name="export_files")
    op.drop_table("export_files")
    op.drop_index("ix_export_rows_waiting", table_name="export_rows")
    op.drop_index("ix_export_rows_export_id", table_name="export_rows")
    op.drop_table("export_rows")
