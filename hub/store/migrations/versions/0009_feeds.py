"""JSON pull feeds: each released copy kept for a subscriber that pulls (api delivery),
each subscriber's last cursor, and its API key (key id and SHA-256 of the secret only).

Revision ID: 0009_feeds
Revises: 0007
Create Date: 2026-12-02

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_feeds"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feed_items",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True, nullable=False),
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("copy_msg_id", sa.String(), nullable=False),
        sa.Column("object_name", sa.String(), nullable=False),
        sa.Column("refid", sa.String(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("released_at", UTC_TIME, nullable=False),
        sa.Column("purge_after", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feed_items"),
        sa.UniqueConstraint("subscriber", "cursor", name="uq_feed_items_subscriber_cursor"),
        sa.UniqueConstraint("copy_msg_id", name="uq_feed_items_copy_msg_id"),
    )
    op.create_index("ix_feed_items_purge_after", "feed_items", ["purge_after"])
    op.create_table(
        "feed_heads",
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("last_cursor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber", name="pk_feed_heads"),
    )
    op.create_table(
        "feed_keys",
        sa.Column("subscriber", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("secret_sha256", sa.String(), nullable=False),
        sa.Column("issued_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("subscriber", name="pk_feed_keys"),
        sa.UniqueConstraint("key_id", name="uq_feed_keys_key_id"),
    )


def downgrade() -> None:
    op.drop_table("feed_keys")
    op.drop_table("feed_heads")
    op.drop_index("ix_feed_items_purge_after", table_name="feed_items")
    op.drop_table("feed_items")
