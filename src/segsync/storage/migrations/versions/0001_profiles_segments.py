"""Data sources, relationships, segments, their refreshes and snapshots.

Revision ID: 0001_profiles_segments
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_profiles_segments"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "data_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(128), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("key_column", sa.String(256), nullable=True),
        sa.Column("is_profile", sa.Boolean(), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("file_mtime", _TS, nullable=True),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sources")),
        sa.UniqueConstraint("table_name", name=op.f("uq_data_sources_table_name")),
    )
    op.create_table(
        "relationships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("child_table", sa.String(128), nullable=False),
        sa.Column("child_column", sa.String(256), nullable=False),
        sa.Column("parent_table", sa.String(128), nullable=False),
        sa.Column("parent_column", sa.String(256), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relationships")),
        sa.UniqueConstraint(
            "child_table",
            "child_column",
            "parent_table",
            "parent_column",
            name=op.f("uq_relationships_child_table_child_column_parent_table_parent_column"),
        ),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("member_count", sa.BigInteger(), nullable=True),
        sa.Column("last_refreshed_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "segment_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("member_count", sa.BigInteger(), nullable=True),
        sa.Column("entered", sa.BigInteger(), nullable=True),
        sa.Column("left", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_refreshes_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_refreshes")),
    )
    op.create_index(op.f("ix_segment_refreshes_segment_id"), "segment_refreshes", ["segment_id"])
    op.create_table(
        "segment_snapshots",
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("profile_ids", sa.LargeBinary(), nullable=False),
        sa.Column("member_count", sa.BigInteger(), nullable=False),
        sa.Column("taken_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_snapshots_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_segment_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("segment_snapshots")
    op.drop_index(op.f("ix_segment_refreshes_segment_id"), table_name="segment_refreshes")
    op.drop_table("segment_refreshes")
    op.drop_table("segments")
    op.drop_table("relationships")
    op.drop_table("data_sources")
