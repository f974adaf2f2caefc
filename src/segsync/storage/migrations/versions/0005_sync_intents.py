"""Write-ahead intents: a contact or list membership a batch may have changed is recorded as
pending before the batch leaves; the acknowledgement turns it into known (docs/exports.md
"Cancel, crashes and resuming").

Revision ID: 0005_sync_intents
Revises: 0004_connection_instance
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sync_intents"
down_revision = "0004_connection_instance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("sync_contacts", "sync_memberships"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    for table in ("sync_contacts", "sync_memberships"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("pending")
