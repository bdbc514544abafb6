"""Alerts: the state of each rule and subject whose condition holds, the notifications
made, and one delivery row per notification and target.

Revision ID: 0011_alerts
Revises: 0009_feeds
Create Date: 2026-12-02

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_alerts"
down_revision: str | Sequence[str] | None = "0009_feeds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("since", UTC_TIME, nullable=False),
        sa.Column("firing_at", UTC_TIME, nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "subject", name="pk_alert_states"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_at", "alert_events", ["at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("event_id", AUTO_ID, nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=True),
        sa.Column("delivered_at", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
    )
    op.create_index("ix_alert_deliveries_event_id", "alert_deliveries", ["event_id"])
    op.create_index("ix_alert_deliveries_next_attempt_at", "alert_deliveries", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_next_attempt_at", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_event_id", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alert_events_at", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_states")
