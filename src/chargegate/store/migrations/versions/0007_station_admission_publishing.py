"""stations: admission registry, passwords, publishing and Location data; secrets widened

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 01:30:00

Stations seen before this revision were admitted and published by the gateway of the day, so
they stay registered and published: an upgrade does not take a working network off the air.
They have no password; the operator sets one per station (docs/security.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Encrypted secrets are longer than the 64-character tokens they hold.
_SECRETS = [("parties", "token_b"), ("emsp_peers", "token_c"), ("emsp_webhooks", "secret")]


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.add_column(
            sa.Column("registered", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch.add_column(
            sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("site", sa.JSON(), nullable=True))
    with op.batch_alter_table("connectors") as batch:
        batch.add_column(sa.Column("spec", sa.JSON(), nullable=True))
    op.execute("UPDATE stations SET registered = true, published = true")
    for table, column in _SECRETS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.String(length=255), existing_type=sa.String(length=64)
            )


def downgrade() -> None:
    for table, column in _SECRETS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.String(length=64), existing_type=sa.String(length=255)
            )
    with op.batch_alter_table("connectors") as batch:
        batch.drop_column("spec")
    with op.batch_alter_table("stations") as batch:
        for column in ("site", "published", "password_hash", "disabled", "registered"):
            batch.drop_column(column)
