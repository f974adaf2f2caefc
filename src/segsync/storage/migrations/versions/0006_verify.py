"""Verify: a run's kind (a sync run, a verify, a repair) and each export's verify schedule
(docs/exports.md "Verify"). The history indexes of 0007 take the kind too, so an export's
latest run (verifies left out) is still read from an index alone.

It follows 0007_history_indexes (both were written at once; 0007 was merged first), so a
database already at 0007 upgrades with this one.

Revision ID: 0006_verify
Revises: 0007_history_indexes
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_verify"
down_revision = "0007_history_indexes"
branch_labels = None
depends_on = None


OLD_INDEXES = {
    "ix_runs_export_latest": ["export_id", "dry_run", "status", "ended_at"],
    "ix_runs_status_export": ["status", "dry_run", "export_id", "ended_at"],
}
NEW_INDEXES = {
    "ix_runs_export_latest": ["export_id", "dry_run", "kind", "status", "ended_at"],
    "ix_runs_status_export": ["status", "dry_run", "kind", "export_id", "ended_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="sync"))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        for name, columns in NEW_INDEXES.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
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
        for name, columns in OLD_INDEXES.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("kind")
