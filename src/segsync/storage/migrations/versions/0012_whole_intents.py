"""Write-ahead intents kept whole: one ``sync_intents`` row for the batches that leave together,
instead of a pending row per contact and membership written before they leave and written again
when acknowledged.

A first run of 100,000 contacts wrote each contact's and each membership's row twice; the
intent is now one row per group of batches, deleted by the acknowledgements that answer them,
and only what a crash, a stop or a refusal leaves unanswered becomes pending rows (docs/design.md
"The engine against its floor", its twenty-second round).

Revision ID: 0012_whole_intents
Revises: 0011_sync_email_lookups
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_whole_intents"
down_revision = "0011_sync_email_lookups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("emails", sa.Text(), nullable=False),
        sa.Column("memberships", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_sync_intents_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_intents")),
    )
    op.create_index(op.f("ix_sync_intents_export_id"), "sync_intents", ["export_id"])


_PENDING_SQLITE = (
    "INSERT INTO sync_contacts (export_id, email, payload_hash, contact_id, synced_at, pending) "
    "SELECT i.export_id, e.value, '', NULL, i.at, TRUE FROM sync_intents AS i, "
    "json_each(i.emails) AS e WHERE TRUE ON CONFLICT (export_id, email) DO NOTHING",
    "INSERT INTO sync_memberships (export_id, segment_id, email, pending) "
    "SELECT i.export_id, json_extract(m.value, '$[0]'), json_extract(m.value, '$[1]'), TRUE "
    "FROM sync_intents AS i, json_each(i.memberships) AS m WHERE TRUE "
    "ON CONFLICT (export_id, segment_id, email) DO NOTHING",
)
_PENDING_POSTGRESQL = (
    "INSERT INTO sync_contacts (export_id, email, payload_hash, contact_id, synced_at, pending) "
    "SELECT i.export_id, e.value, '', NULL, i.at, TRUE FROM sync_intents AS i "
    "CROSS JOIN LATERAL json_array_elements_text(i.emails::json) AS e(value) "
    "ON CONFLICT (export_id, email) DO NOTHING",
    "INSERT INTO sync_memberships (export_id, segment_id, email, pending) "
    "SELECT i.export_id, (m.value ->> 0)::integer, m.value ->> 1, TRUE FROM sync_intents AS i "
    "CROSS JOIN LATERAL json_array_elements(i.memberships::json) AS m(value) "
    "ON CONFLICT (export_id, segment_id, email) DO NOTHING",
)


def downgrade() -> None:
    # What intents hold becomes the pending rows the earlier code reads, before they go.
    dialect = op.get_bind().dialect.name
    for statement in _PENDING_POSTGRESQL if dialect == "postgresql" else _PENDING_SQLITE:
        op.execute(statement)
    op.drop_index(op.f("ix_sync_intents_export_id"), table_name="sync_intents")
    op.drop_table("sync_intents")
