"""Guard rails (docs/exports.md "Blast-radius hold", "Undo a run"): each export's two hold
thresholds, each run's hold record (the verdict on its plan, and its approval), and which run
an undo run reverses.

``exports.hold_removals`` is the share of a list whose removal holds a run (0.2 = 20%; NULL:
off); ``exports.hold_growth`` the factor by which a list may grow (3.0; NULL: off). Existing
exports get the defaults: the hold is on unless turned off. ``runs.hold`` is JSON text;
``runs.undo_of`` the id of the run an undo run (kind ``undo``) reverses.

Revision ID: 0010_run_hold
Revises: 0009_run_changes
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_run_hold"
down_revision = "0009_run_changes"
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
        batch_op.add_column(sa.Column("undo_of", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("undo_of")
        batch_op.drop_column("hold")
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_column("hold_growth")
        batch_op.drop_column("hold_removals")
