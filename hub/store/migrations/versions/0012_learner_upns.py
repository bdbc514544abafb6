"""Every UPN a learner has been shown with (learner_upns), so UPN-keyed exclusions hold
across a change of UPN; filled from the UPNs known now.

Revision ID: 0012_learner_upns
Revises: 0010_exports
Create Date: 2026-12-02

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_learner_upns"
down_revision: str | Sequence[str] | None = "0010_exports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "learner_upns",
        sa.Column("refid", sa.String(), nullable=False),
        sa.Column("upn", sa.String(), nullable=False),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("refid", "upn"),
    )
    op.execute(
        "INSERT INTO learner_upns (refid, upn, first_seen) "
        "SELECT refid, upn, updated_at FROM learners WHERE upn IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("learner_upns")
