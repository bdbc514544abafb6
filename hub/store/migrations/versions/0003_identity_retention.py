"""Learners' identities and retention: the schools each learner was shown at, each
learner-scoped object's learner, the outbox columns that hold an object's references and
when its payload may go, leased held copies, and the indexes retention purges by.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
`learners.school` becomes rows of `learner_schools` (a learner may be at several schools,
and rows are only ever added).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)
# Partial-index predicates (the same text as hub.store.models, copied so that this
# revision never changes when the models do).
HELD_SCHEDULED = "settled_at IS NULL AND reason = 'schedule'"
HELD_DUE = "settled_at IS NULL AND release_after IS NOT NULL"
HELD_IDENTITY = "settled_at IS NULL AND reason = 'identity'"
ROUTED = "done_at IS NOT NULL"
PARKED = "parked_at IS NOT NULL AND done_at IS NULL"


def _partial_index(name: str, table: str, columns: list[str], where: str) -> None:
    op.create_index(
        name, table, columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
    )


def upgrade() -> None:
    op.add_column("outbox", sa.Column("object_refid", sa.String(), nullable=True))
    op.add_column(
        "outbox", sa.Column("schools", JSON, server_default=sa.text("'[]'"), nullable=False)
    )
    op.add_column("outbox", sa.Column("purge_after", UTC_TIME, nullable=True))
    op.add_column("outbox", sa.Column("parked_at", UTC_TIME, nullable=True))
    _partial_index("ix_outbox_parked", "outbox", ["parked_at"], PARKED)
    op.create_index("ix_outbox_subject_refid", "outbox", ["subject_refid"])
    op.create_index("ix_outbox_object_refid", "outbox", ["object_refid"])
    _partial_index("ix_outbox_purgeable", "outbox", ["purge_after"], ROUTED)
    # Routed rows from before retention existed: kept for a year from now at most.
    routed = sa.table("outbox", sa.column("purge_after", UTC_TIME), sa.column("done_at", UTC_TIME))
    op.execute(
        routed.update()
        .where(routed.c.done_at.is_not(None))
        .values(purge_after=datetime.now(UTC) + timedelta(days=365))
    )

    op.create_table(
        "learner_schools",
        sa.Column("refid", sa.String(), nullable=False),
        sa.Column("laestab", sa.String(), nullable=False),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("refid", "laestab", name="pk_learner_schools"),
    )
    op.execute(
        sa.text(
            "INSERT INTO learner_schools (refid, laestab, first_seen) "
            "SELECT refid, school, updated_at FROM learners WHERE school IS NOT NULL"
        )
    )
    with op.batch_alter_table("learners") as batch:
        batch.drop_column("school")

    op.create_table(
        "object_learners",
        sa.Column("object_refid", sa.String(), nullable=False),
        sa.Column("object_name", sa.String(), nullable=False),
        sa.Column("learner_refid", sa.String(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("object_refid", name="pk_object_learners"),
    )
    op.create_index("ix_object_learners_learner_refid", "object_learners", ["learner_refid"])

    op.add_column("held_copies", sa.Column("lease_until", UTC_TIME, nullable=True))
    op.drop_index("ix_held_copies_scheduled", table_name="held_copies")
    _partial_index("ix_held_copies_due", "held_copies", ["release_after"], HELD_DUE)
    _partial_index("ix_held_copies_identity", "held_copies", ["held_at"], HELD_IDENTITY)

    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_index("ix_rejections_at", "rejections", ["at"])
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_disclosures_published_at", "disclosures", ["published_at"])


def downgrade() -> None:
    op.drop_index("ix_disclosures_published_at", table_name="disclosures")
    op.drop_index("ix_audit_at", table_name="audit")
    op.drop_index("ix_rejections_at", table_name="rejections")
    op.drop_index("ix_messages_received_at", table_name="messages")
    op.drop_index("ix_held_copies_identity", table_name="held_copies")
    op.drop_index("ix_held_copies_due", table_name="held_copies")
    _partial_index("ix_held_copies_scheduled", "held_copies", ["release_after"], HELD_SCHEDULED)
    with op.batch_alter_table("held_copies") as batch:
        batch.drop_column("lease_until")
    op.drop_index("ix_object_learners_learner_refid", table_name="object_learners")
    op.drop_table("object_learners")
    with op.batch_alter_table("learners") as batch:
        batch.add_column(sa.Column("school", sa.String(), nullable=True))
    op.execute(
        sa.text(
            "UPDATE learners SET school = (SELECT MIN(laestab) FROM learner_schools "
            "WHERE learner_schools.refid = learners.refid)"
        )
    )
    op.drop_table("learner_schools")
    op.drop_index("ix_outbox_purgeable", table_name="outbox")
    op.drop_index("ix_outbox_parked", table_name="outbox")
    op.drop_index("ix_outbox_object_refid", table_name="outbox")
    op.drop_index("ix_outbox_subject_refid", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("parked_at")
        batch.drop_column("purge_after")
        batch.drop_column("schools")
        batch.drop_column("object_refid")
