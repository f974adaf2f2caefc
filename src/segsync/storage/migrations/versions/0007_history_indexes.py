"""Indexes for big histories: each export's latest run and its latest successful run are read
from an index alone (the export list, the status page, Admin > System), however many runs there
are (docs/design.md "Lists at scale").

Revision ID: 0007_history_indexes
Revises: 0005_sync_intents
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007_history_indexes"
down_revision = "0005_sync_intents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_runs_export_latest", ["export_id", "dry_run", "status", "ended_at"], unique=False
        )
        batch_op.create_index(
            "ix_runs_status_export", ["status", "dry_run", "export_id", "ended_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_status_export")
        batch_op.drop_index("ix_runs_export_latest")
