"""Builders shared by the export tests: sample profiles, segments, connections and runs, written
through the real repositories and models into the test's SQLite and DuckDB files."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

from segsync.domain.permissions import Actor, Role
from segsync.services.context import ServiceContext
from segsync.services.profiles import load_sample
from segsync.storage.models.connections import Connection
from segsync.storage.models.runs import Run
from segsync.storage.repositories.segments import SegmentRepository

GOLD = {"attribute": "LoyaltyTier", "op": "equals", "value": "Gold"}
SUBSCRIBED = {"attribute": "IsSubscribed", "op": "is_true"}


def with_sample(ctx: ServiceContext, profiles: int = 200) -> None:
    """Sample profiles, plus the segments "Gold" and "Subscribed" (they overlap)."""
    load_sample(ctx, profiles=profiles, seed=1)
    add_segment(ctx, "Gold", GOLD)
    add_segment(ctx, "Subscribed", SUBSCRIBED)


def add_segment(ctx: ServiceContext, name: str, condition: dict[str, Any]) -> int:
    definition = {"name": name, "rules": [{"conditions": {"all": [condition]}}]}
    with ctx.db.session() as session:
        return (
            SegmentRepository(session)
            .create(name=name, definition=json.dumps(definition), now=ctx.now())
            .id
        )


def add_connection(
    ctx: ServiceContext,
    name: str,
    *,
    shared: bool = False,
    contract_limit: int = 100_000,
    type_: str = "autopilot",
) -> int:
    now = ctx.now()
    with ctx.db.session() as session:
        row = Connection(
            name=name,
            type=type_,
            shared_with_contributors=shared,
            secret_ciphertext=None,
            secret_ref="env:AUTOPILOT_KEY",
            secret_hint="••••3f9a",
            base_url="http://127.0.0.1:9/v1",
            rate_limit=5.0,
            contract_limit=contract_limit,
            export_user_id=None,
            created_by="local-admin",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row.id


def add_run(
    ctx: ServiceContext,
    export_id: int,
    status: str,
    *,
    connection_id: int | None = None,
    ended_at: datetime | None = None,
    dry_run: bool = False,
    minutes_ago: int = 60,
) -> int:
    queued = ctx.now() - timedelta(minutes=minutes_ago)
    started = None if status == "queued" else queued
    with ctx.db.session() as session:
        row = Run(
            export_id=export_id,
            export_name=f"export {export_id}",
            connection_id=connection_id,
            status=status,
            trigger="manual",
            actor="local-admin",
            dry_run=dry_run,
            queued_at=queued,
            started_at=started,
            ended_at=ended_at,
        )
        session.add(row)
        session.flush()
        return row.id


def acting_as(ctx: ServiceContext, role: Role, email: str | None = None) -> ServiceContext:
    """The same context (same DB and profile engine) acting as a user with ``role``."""
    ctx.profiles  # noqa: B018  (open the engine once, so copies share it)
    actor = Actor(user_id=None, email=email or f"{role.value}@example.com", role=role)
    return dataclasses.replace(ctx, actor=actor)
