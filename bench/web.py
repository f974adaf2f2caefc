"""Page render times of the web UI with a big history: 1,000 exports and 10,000 runs.

Seeds a fresh data dir (sample profiles, two refreshed segments, a connection, the exports
through the storage layer in bulk, the runs as finished rows), signs an administrator in, then
requests each main page N times through the real ASGI app (in-process, Starlette's test
client: routing, middleware, templates, the services and SQLite — no network) and prints p50
and p95 per page.

Target: p95 <= 100 ms per page. Figures only; nothing is asserted.

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

from segsync.services import connections, exports, segments, users
from segsync.services.context import open_context
from segsync.services.profiles import load_sample
from segsync.settings import Settings
from segsync.storage.models.connections import Connection
from segsync.storage.models.runs import Run
from segsync.storage.repositories.exports import ExportRepository
from segsync.web.app import create_app

PASSWORD = "bench password 1234"
EMAIL = "administrator@example.com"
SEGMENTS = {
    "Subscribed": {"attribute": "IsSubscribed", "op": "is_true"},
    "Gold": {"attribute": "LoyaltyTier", "op": "equals", "value": "Gold"},
}
STATUSES = ("successful", "successful", "successful", "failure", "skipped", "canceled")


def seed(settings: Settings, n_exports: int, n_runs: int) -> tuple[int, int]:
    """Seed the data dir; return (an export id, a run id) to open their pages."""
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
        with ctx.db.session() as session:
            rows = []
            for i in range(n_runs):
                export_id = ids[i % len(ids)]
                start = now - timedelta(minutes=10 * (n_runs - i))
                rows.append(
                    Run(
                        export_id=export_id,
                        export_name=f"Export {ids.index(export_id):04d}",
                        connection_id=first.connection_id,
                        status=STATUSES[i % len(STATUSES)],
                        trigger="scheduled",
                        actor=EMAIL,
                        dry_run=False,
                        queued_at=start,
                        started_at=start,
                        ended_at=start + timedelta(seconds=42),
                        counts=counts,
                        items_total=25,
                        items_done=25,
                    )
                )
            session.add_all(rows)
            session.flush()
            last_run = rows[-1].id
    return ids[len(ids) // 2], last_run


def sign_in(client: TestClient) -> None:
    page = client.get("/sign-in").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token on the sign-in page"
    reply = client.post(
        "/sign-in", data={"email": EMAIL, "password": PASSWORD, "csrf_token": match.group(1)}
    )
    assert reply.status_code == 303, reply.text


def measure(client: TestClient, path: str, repeat: int) -> list[float]:
    reply = client.get(path)  # warm-up, and a check that the page works
    assert reply.status_code == 200, f"{path}: {reply.status_code} {reply.text[:300]}"
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        reply = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert reply.status_code == 200, path
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


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
        export_id, run_id = seed(settings, args.exports, args.runs)
        print(
            f"seeded {args.exports:,} exports and {args.runs:,} runs "
            f"in {time.perf_counter() - started:.1f} s"
        )
        with TestClient(create_app(settings), follow_redirects=False) as client:
            sign_in(client)
            pages = [
                "/data/exports",
                "/data/exports?q=Export+05&sort=status",
                f"/data/exports/{export_id}",
                f"/data/runs/{run_id}",
                f"/data/runs/{run_id}.json",
                "/data/segments",
                "/admin/connections",
                "/admin/permissions",
                "/admin/system",
            ]
            print(f"{'page':<42} {'p50 ms':>8} {'p95 ms':>8}  (n={args.repeat}, target p95 ≤ 100)")
            for path in pages:
                times = measure(client, path, args.repeat)
                p50 = statistics.median(times)
                p95 = percentile(times, 0.95)
                flag = "" if p95 <= 100 else "  over target"
                print(f"{path:<42} {p50:8.1f} {p95:8.1f}{flag}")


if __name__ == "__main__":
    main()
