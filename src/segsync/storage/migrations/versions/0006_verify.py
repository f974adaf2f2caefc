"""Verify: a run's kind (a sync run, a verify, a repair) and each export's verify schedule
(docs/exports.md "Verify").

Revision ID: 0006_verify
Revises: 0005_sync_intents
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_verify"
down_revision = "0005_sync_intents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="sync"))
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "verify_schedule", sa.Text(), nullable=False, server_default='{"mode": "off"}'
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_column("verify_schedule")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("kind")
