"""The destination account a connection reached at its last successful check.

Revision ID: 0004_connection_instance
Revises: 0003_workers
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_connection_instance"
down_revision = "0003_workers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instance_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_column("instance_id")
