"""Page and API-list response times with a big history: 1,000 exports and 10,000 runs.

Seeds a fresh data dir (sample profiles, two refreshed segments, a connection, the exports
through the storage layer in bulk, the runs as finished rows inserted in bulk with some rejects,
notifications, audit events and erasures), signs an administrator in and makes an API token,
then requests every page and every API list N times through the real ASGI app (in-process,
Starlette's test client: routing, middleware, templates, the services and SQLite — no network)
and prints p50 and p95 per path beside the target, as a ratio (p95 / target; over 1 misses it)
and as pass/fail, the median CPU time per request (what it costs when other processes share the
cores), and how many paths pass.

Target: p95 <= 100 ms per page and per API list. Figures only; nothing is asserted (the count
of SQL statements per list is asserted by tests/web/test_list_queries.py).

    python bench/web.py [--exports 1000] [--runs 10000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from segsync.services import connections, exports, segments, users
from segsync.services.context import LOCAL_ADMIN, open_context
from segsync.services.profiles import load_sample
from segsync.settings import Settings
from segsync.storage.models.connections import Connection
from segsync.storage.models.operations import AuditEvent, Erasure, Notification
from segsync.storage.models.runs import Run, RunReject
from segsync.storage.repositories.exports import ExportRepository
from segsync.web.app import create_app, settle_startup_heap

PASSWORD = "bench password 1234"
EMAIL = "administrator@example.com"
SEGMENTS = {
    "Subscribed": {"attribute": "IsSubscribed", "op": "is_true"},
    "Gold": {"attribute": "LoyaltyTier", "op": "equals", "value": "Gold"},
}
STATUSES = ("successful", "successful", "successful", "failure", "skipped", "canceled")
TARGET_MS = 100.0
REJECTS_EVERY = 10
"""One run in ten set three contacts aside."""


class Seeded:
    """Ids of what the pages open: an export with runs, a run with rejects, a segment, the
    connection."""

    def __init__(self, export_id: int, run_id: int, segment_id: int, connection_id: int) -> None:
        self.export_id = export_id
        self.run_id = run_id
        self.segment_id = segment_id
        self.connection_id = connection_id


def seed(settings: Settings, n_exports: int, n_runs: int) -> Seeded:
    """Seed the data dir in bulk; return the ids the measured pages open."""
    with open_context(settings) as ctx:
        load_sample(ctx, profiles=2_000, seed=1)
        for name, condition in SEGMENTS.items():
            definition = {"name": name, "rules": [{"conditions": {"all": [condition]}}]}
            segments.create_segment(ctx, json.dumps(definition))
        segments.refresh_segments(ctx, list(SEGMENTS))
        users.add_user(ctx, EMAIL, "administrator", PASSWORD)
        now = ctx.now()
        with ctx.db.session() as session:
            session.add(
                Connection(
                    name="Autopilot",
                    type="autopilot",
                    shared_with_contributors=True,
                    secret_ciphertext=None,
                    secret_ref="env:AUTOPILOT_KEY",
                    secret_hint="••••3f9a",
                    base_url="http://127.0.0.1:9/v1",
                    rate_limit=5.0,
                    contract_limit=100_000,
                    export_user_id=None,
                    created_by=EMAIL,
                    created_at=now,
                    updated_at=now,
                )
            )
        matching = exports.DataMatching("Email", "FirstName", "LastName")
        connection_id = connections.connection_id(ctx, "Autopilot")
        settings = exports.ExportSettings("Export 0000", connection_id, matching, ["Gold"])
        first = exports.create_export(ctx, settings)
        segment_ids = [s.id for s in segments.list_segments(ctx)]
        with ctx.db.session() as session:
            repo = ExportRepository(session)
            ids = [first.id]
            for i in range(1, n_exports):
                ids.append(
                    repo.create(
                        name=f"Export {i:04d}",
                        connection_id=first.connection_id,
                        mapping=first.mapping,
                        removal_policy=first.removal_policy,
                        list_prefix="",
                        schedule=first.schedule,
                        segment_ids=segment_ids[: 1 + i % 2],
                        created_by=EMAIL,
                        now=now,
                    ).id
                )
        counts = json.dumps({"members": 500, "added": 20, "updated": 5, "unchanged": 475})
        runs = []
        for i in range(n_runs):
            start = now - timedelta(minutes=10 * (n_runs - i))
            runs.append(
                {
                    "export_id": ids[i % len(ids)],
                    "export_name": f"Export {i % len(ids):04d}",
                    "connection_id": first.connection_id,
                    "status": STATUSES[i % len(STATUSES)],
                    "trigger": "scheduled",
                    "actor": EMAIL,
                    "dry_run": i % 7 == 0,
                    "queued_at": start,
                    "started_at": start,
                    "ended_at": start + timedelta(seconds=42),
                    "counts": counts,
                    "items_total": 25,
                    "items_done": 25,
                    "warnings": "[]",
                    "cancel_requested": False,
                    "attempts": 1,
                }
            )
        with ctx.db.session() as session:
            session.execute(insert(Run), runs)
        with ctx.db.session() as session:
            run_ids = [
                run_id
                for (run_id,) in session.execute(Run.__table__.select().with_only_columns(Run.id))
            ]
            rejects = [
                {
                    "run_id": run_id,
                    "kind": kind,
                    "profile_id": str(run_id),
                    "email": f"p{run_id}@example",
                    "reason": "invalid email",
                }
                for run_id in run_ids[::REJECTS_EVERY]
                for kind in ("invalid", "invalid", "rejected")
            ]
            session.execute(insert(RunReject), rejects)
            failed = run_ids[3 :: len(STATUSES)]
            session.execute(
                insert(Notification),
                [
                    {
                        "at": now,
                        "kind": "failed",
                        "export_id": ids[0],
                        "export_name": "Export 0000",
                        "run_id": run_id,
                        "message": "the export failed",
                        "delivered": "{}",
                    }
                    for run_id in failed[-500:]
                ],
            )
            session.execute(
                insert(AuditEvent),
                [
                    {
                        "at": now - timedelta(seconds=i),
                        "actor": EMAIL,
                        "action": "export.run",
                        "target_type": "export",
                        "target": f"Export {i % len(ids):04d}",
                        "summary": "ran the export",
                        "details": "{}",
                    }
                    for i in range(n_runs)
                ],
            )
            session.execute(
                insert(Erasure),
                [
                    {
                        "email": f"person{i}@example.com",
                        "connection_id": first.connection_id,
                        "requested_by": EMAIL,
                        "requested_at": now,
                        "status": "pending",
                        "attempts": 0,
                    }
                    for i in range(200)
                ],
            )
    middle = ids[len(ids) // 2]
    assert first.connection_id is not None
    return Seeded(
        middle, run_ids[-1 - len(STATUSES) * REJECTS_EVERY], segment_ids[0], first.connection_id
    )


def sign_in(client: TestClient) -> None:
    page = client.get("/sign-in").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token on the sign-in page"
    reply = client.post(
        "/sign-in", data={"email": EMAIL, "password": PASSWORD, "csrf_token": match.group(1)}
    )
    assert reply.status_code == 303, reply.text


def api_token(client: TestClient) -> dict[str, str]:
    """A bearer token of the administrator (made through the app's own services)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    ctx = runtime.context(users.resolve_actor(runtime.context(LOCAL_ADMIN), EMAIL))
    return {"Authorization": f"Bearer {users.create_token(ctx, 'bench').token}"}


def measure(
    client: TestClient, path: str, repeat: int, headers: dict[str, str] | None
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each request. CPU time is the whole process's (the
    app runs in a thread of it): on a busy machine it shows what the request itself costs."""
    reply = client.get(path, headers=headers)  # warm-up, and a check that the page works
    assert reply.status_code == 200, f"{path}: {reply.status_code} {reply.text[:300]}"
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        reply = client.get(path, headers=headers)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert reply.status_code == 200, path
    return wall, cpu


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def paths(ids: Seeded) -> list[str]:
    """Every page and API list, and the detail pages that show a list (an export's runs, a
    segment's refreshes, a run's rejects)."""
    export, run, segment = ids.export_id, ids.run_id, ids.segment_id
    return [
        "/data/exports",
        "/data/exports?q=Export+05&sort=status",
        "/data/exports?page=10&sort=refreshed",
        f"/data/exports/{export}",
        f"/data/exports/{export}/runs",
        f"/data/exports/{export}/runs?page=2",
        "/data/exports/new",
        f"/data/exports/{export}/edit",
        f"/data/exports/{export}/duplicate",
        f"/data/runs/{run}",
        f"/data/runs/{run}.json",
        "/data/segments",
        f"/data/segments/{segment}",
        "/data/segments/new",
        f"/data/segments/{segment}/edit",
        "/admin/connections",
        "/admin/connections/add",
        "/admin/connections/add/autopilot",
        f"/admin/connections/{ids.connection_id}",
        f"/admin/connections/{ids.connection_id}/edit",
        f"/admin/connections/{ids.connection_id}/remove",
        "/admin/permissions",
        "/admin/system",
        "/admin/notifications",
        "/admin/privacy",
        "/account",
        "/api/v1/runs?limit=500",
        "/api/v1/runs",
        f"/api/v1/runs?export_id={export}&limit=500",
        f"/api/v1/runs/{run}",
        f"/api/v1/runs/{run}/rejects",
        "/api/v1/exports",
        "/api/v1/exports?limit=50&sort=status",
        f"/api/v1/exports/{export}",
        "/api/v1/status",
        "/api/v1/segments",
        f"/api/v1/segments/{segment}",
        "/api/v1/connections",
        "/api/v1/audit",
        "/api/v1/notifications",
        "/api/v1/erasures",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/schedule",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="segsync-bench-web-") as tmp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=Path(tmp) / "data",
            database_url=None,
            profiles_url=None,
            secret_key=None,
        )
        started = time.perf_counter()
        ids = seed(settings, args.exports, args.runs)
        print(
            f"seeded {args.exports:,} exports and {args.runs:,} runs "
            f"in {time.perf_counter() - started:.1f} s"
        )
        with TestClient(create_app(settings), follow_redirects=False) as client:
            sign_in(client)
            bearer = api_token(client)
            settle_startup_heap()  # as `segsync serve` does once the app is built
            print(
                f"{'path':<46} {'p50 ms':>7} {'p95 ms':>7} {'target':>7} {'p95/target':>10}"
                f" {'cpu p50':>8} {'result':>6}  (n={args.repeat})"
            )
            failed: list[str] = []
            for path in paths(ids):
                headers = bearer if path.startswith("/api/") else None
                wall, cpu = measure(client, path, args.repeat, headers)
                p95 = percentile(wall, 0.95)
                ratio = p95 / TARGET_MS
                if ratio > 1:
                    failed.append(path)
                result = "fail" if ratio > 1 else "pass"
                print(
                    f"{path:<46} {statistics.median(wall):7.1f} {p95:7.1f} {TARGET_MS:7g}"
                    f" {ratio:10.2f} {statistics.median(cpu):8.1f} {result:>6}"
                )
            total = time.perf_counter() - started
            passed = len(paths(ids)) - len(failed)
            print(
                f"{passed} of {len(paths(ids))} pass (p95 <= {TARGET_MS:g} ms), {len(failed)} fail"
                f"{': ' + ', '.join(failed) if failed else ''}; {total:.0f} s in all"
            )


if __name__ == "__main__":
    main()
