"""Users, API tokens, connections, consents, exports, sync state, runs, audit, notices, erasures.

Revision ID: 0002_exports_runs
Revises: 0001_profiles_segments
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

_TS = sa.DateTime(timezone=True)


revision = "0002_exports_runs"
down_revision = "0001_profiles_segments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)

    op.create_table(
        "system_settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_system_settings")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("shared_with_contributors", sa.Boolean(), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("secret_ref", sa.Text(), nullable=True),
        sa.Column("secret_hint", sa.String(length=32), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("rate_limit", sa.Float(), nullable=False),
        sa.Column("contract_limit", sa.BigInteger(), nullable=False),
        sa.Column("export_user_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("health", sa.String(length=32), nullable=False),
        sa.Column("health_message", sa.Text(), nullable=True),
        sa.Column("health_checked_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["export_user_id"],
            ["users.id"],
            name=op.f("fk_connections_export_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint("name", name=op.f("uq_connections_name")),
    )
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connections_export_user_id"), ["export_user_id"], unique=False
        )

    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("connection_name", sa.String(length=200), nullable=False),
        sa.Column("agreed_by", sa.String(length=320), nullable=False),
        sa.Column("agreed_at", _TS, nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_consents_connection_id_connections"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consents_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_erasures_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    with op.batch_alter_table("erasures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_erasures_email"), ["email"], unique=False)

    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("removal_policy", sa.String(length=16), nullable=False),
        sa.Column("list_prefix", sa.String(length=100), nullable=False),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_exports_connection_id_connections"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
        sa.UniqueConstraint("name", name=op.f("uq_exports_name")),
    )
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exports_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "export_lists",
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_export_lists_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("export_id", "segment_id", name=op.f("pk_export_lists")),
    )
    op.create_table(
        "export_segments",
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_export_segments_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_export_segments_segment_id_segments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("export_id", "segment_id", name=op.f("pk_export_segments")),
    )
    with op.batch_alter_table("export_segments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_export_segments_segment_id"), ["segment_id"], unique=False
        )

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=True),
        sa.Column("export_name", sa.String(length=200), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("due_at", _TS, nullable=True),
        sa.Column("queued_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("items_total", sa.BigInteger(), nullable=False),
        sa.Column("items_done", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_runs_export_id_exports"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("export_id", "due_at", name=op.f("uq_runs_export_id_due_at")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_connection_id"), ["connection_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_export_id"), ["export_id"], unique=False)
        batch_op.create_index("ix_runs_status_queued_at", ["status", "queued_at"], unique=False)

    op.create_table(
        "sync_contacts",
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=128), nullable=True),
        sa.Column("synced_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_sync_contacts_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("export_id", "email", name=op.f("pk_sync_contacts")),
    )
    with op.batch_alter_table("sync_contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_contacts_email"), ["email"], unique=False)

    op.create_table(
        "sync_memberships",
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_sync_memberships_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "export_id", "segment_id", "email", name=op.f("pk_sync_memberships")
        ),
    )
    with op.batch_alter_table("sync_memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_memberships_email"), ["email"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=True),
        sa.Column("export_name", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("delivered", sa.Text(), nullable=False),
        sa.Column("read_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_notifications_export_id_exports"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_notifications_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_at"), ["at"], unique=False)

    op.create_table(
        "run_rejects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("profile_id", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=512), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_rejects_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_rejects")),
    )
    with op.batch_alter_table("run_rejects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_rejects_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run_rejects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_rejects_run_id"))

    op.drop_table("run_rejects")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_at"))

    op.drop_table("notifications")
    with op.batch_alter_table("sync_memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_memberships_email"))

    op.drop_table("sync_memberships")
    with op.batch_alter_table("sync_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_contacts_email"))

    op.drop_table("sync_contacts")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_status_queued_at")
        batch_op.drop_index(batch_op.f("ix_runs_export_id"))
        batch_op.drop_index(batch_op.f("ix_runs_connection_id"))

    op.drop_table("runs")
    with op.batch_alter_table("export_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_segments_segment_id"))

    op.drop_table("export_segments")
    op.drop_table("export_lists")
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exports_connection_id"))

    op.drop_table("exports")
    with op.batch_alter_table("erasures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erasures_email"))

    op.drop_table("erasures")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_connection_id"))

    op.drop_table("consents")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connections_export_user_id"))

    op.drop_table("connections")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("system_settings")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
