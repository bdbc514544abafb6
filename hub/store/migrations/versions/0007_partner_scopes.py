"""Per-partner scopes: each agreement version records the recipients whose scope it widens,
so that re-approval is judged per recipient (NULL for versions stored before: their one
`widens` flag then applies to every recipient).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("agreement_versions", sa.Column("widened_for", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agreement_versions") as batch:
        batch.drop_column("widened_for")
