"""Indexes for the ops console: message search by school, object and agent over time, a
message's journey (its disclosures and held copies), search by agreement or by a former
UPN, and the dashboard's held-copy counts.

Revision ID: 0012_console_indexes
Revises: 0012_learner_upns
Create Date: 2026-12-02

Written by hand and checked against hub.store.models by tests/integration/test_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_console_indexes"
down_revision: str | Sequence[str] | None = "0012_learner_upns"  # chained at the merge of main
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_messages_school_received_at", "messages", ["school", "received_at"]),
    ("ix_messages_object_name_received_at", "messages", ["object_name", "received_at"]),
    ("ix_messages_agent_id_received_at", "messages", ["agent_id", "received_at"]),
    ("ix_disclosures_message_id", "disclosures", ["message_id"]),
    ("ix_disclosures_agreement_id", "disclosures", ["agreement_id"]),
    ("ix_held_copies_outbox_id", "held_copies", ["outbox_id"]),
    ("ix_held_copies_held_at", "held_copies", ["held_at"]),
    ("ix_learner_upns_upn", "learner_upns", ["upn"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
