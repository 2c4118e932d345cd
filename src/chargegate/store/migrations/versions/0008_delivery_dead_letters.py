"""delivery: dead letters (refusals, dropped_at) and the webhook horizon

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 09:00:00

Rows already given up (past their horizon) become dead letters the operator can list, retry
or drop (docs/guarantees.md#dead-letters).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("refusals", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("dropped_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbox_gave_up", ["gave_up_at"])
    with op.batch_alter_table("emsp_webhooks") as batch:
        batch.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("emsp_webhooks") as batch:
        batch.drop_column("dead_at")
        batch.drop_column("failing_since")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_gave_up")
        batch.drop_column("dropped_at")
        batch.drop_column("refusals")
