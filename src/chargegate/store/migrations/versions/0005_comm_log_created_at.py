"""communication log: index on created_at, for retention and time-range listing

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ocpp_messages_created_at", "ocpp_messages", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ocpp_messages_created_at", table_name="ocpp_messages")
