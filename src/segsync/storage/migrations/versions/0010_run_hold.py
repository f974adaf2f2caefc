"""The blast-radius hold (docs/exports.md "Blast-radius hold"): each export's two thresholds
and each run's hold record (the verdict on its plan, and its approval).

``exports.hold_removals`` is the share of a list whose removal holds a run (0.2 = 20%; NULL:
off); ``exports.hold_growth`` the factor by which a list may grow (3.0; NULL: off). Existing
exports get the defaults: the hold is on unless turned off. ``runs.hold`` is JSON text.

Revision ID: 0010_run_hold
Revises: 0008_web_sessions
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_run_hold"
down_revision = "0008_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hold_removals", sa.Float(), nullable=True, server_default="0.2")
        )
        batch_op.add_column(sa.Column("hold_growth", sa.Float(), nullable=True, server_default="3"))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("hold")
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_column("hold_growth")
        batch_op.drop_column("hold_removals")
