"""Webhook delivery: each webhook subscriber's sealed signing secret, and one row per
attempt to push a copy.

Revision ID: 0006
Revises: 0004_admin_users
Create Date: 2026-12-02

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0004_admin_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("subscriber", name="pk_webhook_secrets"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("copy_msg_id", sa.String(), nullable=False),
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", UTC_TIME, nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("retry_in_ms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_attempts"),
    )
    op.create_index("ix_webhook_attempts_copy_msg_id", "webhook_attempts", ["copy_msg_id"])
    op.create_index("ix_webhook_attempts_attempted_at", "webhook_attempts", ["attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_attempts_attempted_at", table_name="webhook_attempts")
    op.drop_index("ix_webhook_attempts_copy_msg_id", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_secrets")
