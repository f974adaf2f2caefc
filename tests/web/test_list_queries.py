"""Every list costs a fixed number of SQL statements, never one per row (issue 11, "History at
scale"): each page and API list below is requested with a small history and again with three
times as much of everything (exports, runs, rejects, refreshes, connections, users, tokens,
notifications, audit events, erasures), and must issue the same number of statements.

Counted with SQLAlchemy's ``before_cursor_execute`` event on the app's engine: deterministic,
never timed. ``bench/web.py`` measures the times."""

from __future__ import annotations

import gc
import json
from collections import Counter
from dataclasses import fields
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from segsync.destinations.autopilot.fields import AUTOPILOT_FIELDS
from segsync.domain.mapping import FieldMapping
from segsync.domain.schedule import ExportSchedule
from segsync.services import users
from segsync.services.exports import forms as export_forms
from segsync.services.exports import views as export_views
from segsync.storage.models.accounts import ApiToken, User
from segsync.storage.models.connections import Connection
from segsync.storage.models.operations import AuditEvent, Erasure, Notification
from segsync.storage.models.runs import Run, RunReject
from segsync.storage.models.segments import Segment, SegmentRefresh
from segsync.storage.models.workers import Worker
from segsync.storage.repositories.exports import ExportRepository
from segsync.web.app import settle_startup_heap
from tests.web.conftest import WebHarness

ADMIN = "administrator@example.com"
MAPPING = FieldMapping(email="Email", catalogue=AUTOPILOT_FIELDS).to_dict()
SCHEDULE = ExportSchedule().to_dict()
STATUSES = ("successful", "failure", "processing", "queued")
SMALL = 3
"""Rows of each kind in the small history; the big one has three times as many."""

PATHS = (
    "/data/exports",
    "/data/exports?sort=status",
    "/data/exports/{export}",
    "/data/exports/{export}/runs",
    "/data/exports/new",
    "/data/exports/{export}/edit",
    "/data/exports/{export}/duplicate",
    "/data/runs/{run}",
    "/data/runs/{run}.json",
    "/data/segments",
    "/data/segments/{segment}",
    "/data/segments/new",
    "/data/segments/{segment}/edit",
    "/admin/connections",
    "/admin/connections/add",
    "/admin/connections/add/autopilot",
    "/admin/connections/{connection}",
    "/admin/connections/{connection}/edit",
    "/admin/connections/{connection}/remove",
    "/admin/permissions",
    "/admin/system",
    "/admin/notifications",
    "/admin/privacy",
    "/account",
    "/api/v1/runs?limit=500",
    "/api/v1/runs?export_id={export}&limit=500",
    "/api/v1/runs/{run}",
    "/api/v1/runs/{run}/rejects",
    "/api/v1/runs/{run}/changes",
    "/api/v1/exports",
    "/api/v1/exports/{export}",
    "/api/v1/status",
    "/api/v1/segments",
    "/api/v1/segments/{segment}",
    "/api/v1/connections",
    "/api/v1/connections/{connection}",
    "/api/v1/audit",
    "/api/v1/notifications",
    "/api/v1/erasures",
    "/api/v1/users",
    "/api/v1/tokens",
    "/api/v1/schedule",
)

NOT_FOR_CONTRIBUTORS = frozenset(
    path
    for path in PATHS
    if path.startswith("/admin/")
    or path.split("?")[0]
    in {
        "/data/exports/{export}/edit",  # on an unshared connection
        "/api/v1/connections/{connection}",
        "/api/v1/audit",
        "/api/v1/notifications",
        "/api/v1/erasures",
        "/api/v1/users",
        "/api/v1/schedule",
    }
)
"""Paths a contributor may not open (403: administrators only, or the first export, which is on
an unshared connection); the others are counted for a contributor too, whose permissions are
decided per row."""


class History:
    """Adds rows of every kind. The first export, run, segment and connection (those the
    detail pages open) gain rows too: more runs, rejects, refreshes and exports."""

    def __init__(self, web: WebHarness) -> None:
        self.web = web
        self.made = 0
        self.ids: dict[str, int] = {}

    def grow(self, count: int) -> None:
        ctx = self.web.ctx
        now = ctx.now()
        with ctx.db.session() as session:
            admin_id = session.scalar(select(User.id).where(User.email == ADMIN))
            assert admin_id is not None
            for i in range(self.made, self.made + count):
                self._others(session, i, admin_id, now)
            session.flush()
            for i in range(self.made, self.made + count):
                self._export(session, i, now)
        self.made += count

    def _others(self, session: Session, i: int, admin_id: int, now: datetime) -> None:
        add = session.add
        add(
            Connection(
                name=f"Connection {i:03d}",
                type="autopilot",
                shared_with_contributors=bool(i % 2),
                secret_ciphertext=None,
                secret_ref="env:AUTOPILOT_KEY",
                secret_hint="••••1234",
                base_url="http://127.0.0.1:9/v1",
                rate_limit=5.0,
                contract_limit=1000,
                export_user_id=None,
                created_by=ADMIN,
                created_at=now,
                updated_at=now,
            )
        )
        rule = {"attribute": "City", "op": "equals", "value": f"City {i}"}
        definition = {"name": f"Segment {i:03d}", "rules": [{"conditions": {"all": [rule]}}]}
        add(
            Segment(
                name=f"Segment {i:03d}",
                description=None,
                definition=json.dumps(definition),
                status="active",
                member_count=3,
                last_refreshed_at=now,
                created_at=now,
                updated_at=now,
                created_by=ADMIN,
            )
        )
        role = ("viewer", "contributor", "administrator")[i % 3]
        add(
            User(
                email=f"user{i:03d}@example.com",
                role=role,
                password_hash=None,
                created_at=now,
                updated_at=now,
            )
        )
        add(
            ApiToken(
                user_id=admin_id,
                name=f"token {i}",
                token_hash=f"{i:064d}",
                hint="abcd",
                created_at=now,
                last_used_at=None,
                revoked_at=None,
            )
        )
        add(Worker(id=f"worker-{i}", host="h", pid=i, started_at=now, heartbeat_at=now))
        add(
            AuditEvent(
                at=now,
                actor=ADMIN,
                action="export.create",
                target_type="export",
                target=f"Export {i:03d}",
                summary="made an export",
                details="{}",
            )
        )

    def _export(self, session: Session, i: int, now: datetime) -> None:
        add = session.add
        connection = self._id(session, Connection, f"Connection {i:03d}")
        segment = self._id(session, Segment, f"Segment {i:03d}")
        first_connection = self.ids.setdefault("connection", connection)
        first_segment = self.ids.setdefault("segment", segment)
        add(
            SegmentRefresh(
                segment_id=first_segment,
                started_at=now,
                ended_at=now,
                status="ok" if i % 2 else "failed",
                member_count=3,
                entered=1,
                left=0,
                error=None if i % 2 else "boom",
            )
        )
        record = ExportRepository(session).create(
            name=f"Export {i:03d}",
            connection_id=connection if i % 2 else first_connection,
            mapping=MAPPING,
            removal_policy="mirror",
            list_prefix="",
            schedule=SCHEDULE,
            segment_ids=sorted({segment, first_segment}),
            created_by=ADMIN,
            now=now,
        )
        first_export = self.ids.setdefault("export", record.id)
        for k in range(len(STATUSES)):
            for export_id in (record.id, first_export):  # the first export's history grows
                run = self._run(export_id, STATUSES[(i + k) % 4], now, dry=k == 1 and i % 2 == 0)
                add(run)
                session.flush()
                first_run = self.ids.setdefault("run", run.id)
                for kind in ("invalid", "rejected"):
                    for run_id in {run.id, first_run}:  # the first run's rejects grow
                        add(RunReject(run_id=run_id, kind=kind, email="x", reason="bad"))
        add(
            Notification(
                at=now,
                kind="failed",
                export_id=record.id,
                export_name=record.name,
                run_id=first_run,
                message="the export failed",
                delivered="{}",
            )
        )
        add(
            Erasure(
                email=f"person{i}@example.com",
                connection_id=connection,
                requested_by=ADMIN,
                requested_at=now,
                status="pending",
                attempts=0,
            )
        )

    @staticmethod
    def _id(session: Session, model: type[Connection] | type[Segment], name: str) -> int:
        found = session.scalar(select(model.id).where(model.name == name))
        assert isinstance(found, int)
        return found

    @staticmethod
    def _run(export_id: int, status: str, now: datetime, *, dry: bool) -> Run:
        ended = None if status in ("processing", "queued") else now + timedelta(seconds=5)
        return Run(
            export_id=export_id,
            export_name="x",
            connection_id=None,
            status=status,
            trigger="manual",
            actor=ADMIN,
            dry_run=dry,
            queued_at=now,
            started_at=None if status == "queued" else now,
            ended_at=ended,
            counts="{}",
            items_total=10,
            items_done=5,
        )


def _statements(
    web: WebHarness,
    browser: TestClient,
    headers: dict[str, str],
    ids: dict[str, int],
    paths: tuple[str, ...] = PATHS,
) -> dict[str, list[str]]:
    """The SQL statements each of ``paths`` issues, by path."""
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(" ".join(str(args[2]).split()))

    result: dict[str, list[str]] = {}
    engine = web.ctx.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for path in paths:
            url = path.format(**ids)
            seen.clear()
            if url.startswith("/api/"):
                reply = web.api.get(url, headers=headers)
            else:
                reply = browser.get(url)
            assert reply.status_code == 200, f"{url}: {reply.status_code} {reply.text[:300]}"
            result[path] = list(seen)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return result


@pytest.mark.parametrize("role", ["administrator", "contributor"])
def test_every_list_costs_the_same_number_of_queries_for_three_times_the_rows(
    web: WebHarness, role: str
) -> None:
    history = History(web)
    history.grow(SMALL)
    browser = web.client_as(role)
    headers = web.bearer(web.api_token(role))
    paths = (
        PATHS
        if role == "administrator"
        else tuple(p for p in PATHS if p not in NOT_FOR_CONTRIBUTORS)
    )
    _statements(web, browser, headers, history.ids, paths)  # warm-up: first token use, caches

    small = _statements(web, browser, headers, history.ids, paths)
    history.grow(2 * SMALL)
    big = _statements(web, browser, headers, history.ids, paths)

    grew = {path: (len(small[path]), len(big[path])) for path in paths}
    grew = {path: counts for path, counts in grew.items() if counts[0] != counts[1]}
    repeated = {
        path: [sql[:160] for sql, n in Counter(big[path]).items() if n > 1] for path in grew
    }
    assert not grew, f"statements per list grew with the rows: {grew}; repeated: {repeated}"
    # The rows are there: the big history shows three times as much.
    api = web.api.get("/api/v1/runs?limit=500", headers=headers).json()
    assert len(api) == 3 * SMALL * 2 * len(STATUSES)
    assert all(run["rejects"] for run in api)
    # The run list never reads one run, its rejects or its export on its own.
    listed = big["/api/v1/runs?limit=500"]
    for one_at_a_time in ("WHERE runs.id = ", "WHERE run_rejects.run_id = ", "exports.id = "):
        assert not [sql for sql in listed if one_at_a_time in sql], listed


def test_editable_exports_follow_the_permission_policy(web: WebHarness) -> None:
    """The segment page's "Add to an export" choices come from one two-column query; they are
    the exports the user may edit: all for an administrator, those on a shared connection for a
    contributor, none for a viewer."""
    History(web).grow(SMALL + 1)  # odd exports: own connection, shared; even: the first, not
    names = {}
    for role in ("administrator", "contributor", "viewer"):
        actor = users.resolve_actor(web.ctx, f"{role}@example.com")
        ctx = web.app.state.runtime.context(actor)
        names[role] = [name for name, _ in export_forms.editable_exports(ctx)]
        ids = export_forms.export_ids(ctx)
        assert all(ids[name] == export_id for name, export_id in export_forms.editable_exports(ctx))
    assert names["administrator"] == [f"Export {i:03d}" for i in range(SMALL + 1)]
    assert names["contributor"] == [f"Export {i:03d}" for i in range(1, SMALL + 1, 2)]
    assert names["viewer"] == []


def test_an_export_row_as_json_has_every_field_but_the_id() -> None:
    row = export_views.ExportRow(
        name="A",
        connection="C",
        connection_name="C",
        connection_type="autopilot",
        segments=["S"],
        schedule="with the system refresh",
        status=None,
        refreshed_at=None,
        your_permissions="view",
        id=7,
    )
    data = row.to_dict()
    assert set(data) == {field.name for field in fields(row)} - {"id"}
    assert data["segments"] == ["S"]
    assert data["segments"] is not row.segments


def test_settling_the_heap_freezes_what_is_alive() -> None:
    """``segsync serve`` settles the heap once the app is built, so full collections skip the
    objects that live as long as the process (bench/web.py: no 150–300 ms pauses)."""
    before = gc.get_freeze_count()
    try:
        settle_startup_heap()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
