"""commands: the sweeper's index holds only pending commands

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As store/models.py writes it (a migration keeps its own copy: models may move on).
_PENDING_ONLY = "state = 'PENDING'"


def upgrade() -> None:
    op.create_index(
        "ix_commands_pending_deadline",
        "commands",
        ["deadline"],
        unique=False,
        sqlite_where=sa.text(_PENDING_ONLY),
        postgresql_where=sa.text(_PENDING_ONLY),
    )
    op.drop_index("ix_commands_state_deadline", table_name="commands")


def downgrade() -> None:
    op.create_index("ix_commands_state_deadline", "commands", ["state", "deadline"], unique=False)
    op.drop_index("ix_commands_pending_deadline", table_name="commands")
