"""The change record: run_changes, and the payload last acknowledged per synced contact.

Revision ID: 0009_run_changes
Revises: 0008_web_sessions
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_run_changes"
down_revision = "0008_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=True),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("profile_id", sa.String(length=256), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("fields", sa.Text(), nullable=True),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.Column("new_contact", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_changes_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_changes")),
    )
    with op.batch_alter_table("run_changes", schema=None) as batch_op:
        batch_op.create_index("ix_run_changes_run_email", ["run_id", "email"], unique=False)
        batch_op.create_index("ix_run_changes_export_email", ["export_id", "email"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_changes_email"), ["email"], unique=False)
    with op.batch_alter_table("sync_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_contacts", schema=None) as batch_op:
        batch_op.drop_column("payload")
    with op.batch_alter_table("run_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_changes_email"))
        batch_op.drop_index("ix_run_changes_export_email")
        batch_op.drop_index("ix_run_changes_run_email")
    op.drop_table("run_changes")
