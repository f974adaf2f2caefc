"""The sync state's contacts are looked up by email through each export's primary key: the
index on ``sync_contacts.email`` is dropped.

Every run writes a contact row per email (the write-ahead intent) and acknowledges it; the index
on email alone was one more B-tree written per row (docs/design.md "The engine against its
floor"). Its readers — erasure and "explain a person" — now ask ``export_id IN (the exports)
AND email = ?``, which the primary key ``(export_id, email)`` answers with one look-up per
export. ``sync_memberships`` keeps its index on email: its primary key has the segment between
the export and the email, so the same question would read an export's every membership.

Revision ID: 0011_sync_email_lookups
Revises: 0010_run_hold
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011_sync_email_lookups"
down_revision = "0010_run_hold"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sync_contacts_email", table_name="sync_contacts")


def downgrade() -> None:
    op.create_index("ix_sync_contacts_email", "sync_contacts", ["email"])
