"""The export run engine at scale (issue 4 §7): 100,000 sample profiles, the simulator at
R = 100 r/s with 50 ms latency, a connection set to 100 r/s.

Prints: the full run (upsert requests vs the minimum, other requests, 429s, wall, wall / floor
with floor = requests / R), a rerun without changes, 1% of profiles changed, two segments
overlapping by half (requests vs ceil(items / 100)), the peak RSS of the full run, and the full
run projected at Autopilot's real 5 r/s.

The simulator and every run are separate processes (``segsync simulator``, ``segsync exports
run``), as in production; the peak RSS is that of the run process.

    python bench/export.py [--profiles 100000] [--rate 100] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from segsync.services.connections import NewConnection, add_connection
from segsync.services.context import open_context
from segsync.services.exports import DataMatching, ExportSettings, create_export
from segsync.services.profiles import load_sample
from segsync.settings import Settings
from segsync.storage.repositories.runs import RunRepository
from segsync.storage.repositories.segments import SegmentRepository

KEY = "bench-key-0123456789"
REFERENCE = "up to a few hours (the reference product's documentation)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_simulator(port: int, rate: float, latency_ms: float) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "segsync", "simulator", "--port", str(port), "--api-key", KEY,
        "--rate-limit", str(rate), "--latency-ms", str(latency_ms), "--seed", "1",
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sim/stats", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the simulator did not start")


def definition(name: str, low: int | None, high: int | None) -> str:
    conditions: list[dict[str, Any]] = []
    if low is not None:
        conditions.append({"attribute": "CustomerId", "op": "greater_or_equal", "value": low})
    if high is not None:
        conditions.append({"attribute": "CustomerId", "op": "less_or_equal", "value": high})
    if not conditions:
        conditions.append({"attribute": "CustomerId", "op": "greater_or_equal", "value": 0})
    return json.dumps({"name": name, "rules": [{"conditions": {"all": conditions}}]})


class Bench:
    def __init__(self, root: Path, sim_url: str, rate: float) -> None:
        self.settings = Settings(_env_file=None, data_dir=root / "data")  # type: ignore[call-arg]
        self.sim_url = sim_url
        self.rate = rate

    def sim(self, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.sim_url}/_sim/{path}"
        reply = httpx.post(url, json=body) if body is not None else httpx.get(url)
        return reply.json()

    def reset_stats(self) -> None:
        # /_sim/reset would forget the contacts too; read the counters before and subtract.
        self.base = self.sim("stats")

    def stats(self) -> dict[str, Any]:
        now = self.sim("stats")
        delta: dict[str, int] = {}
        for route, by_status in now["requests"].items():
            for status, n in by_status.items():
                before = self.base["requests"].get(route, {}).get(status, 0)
                if n - before:
                    delta[f"{route} {status}"] = n - before
        return {"by_route": delta, "throttled": now["throttled"] - self.base["throttled"]}

    def run(self, export: str, *extra: str) -> tuple[dict[str, Any], float, int]:
        """Run the export in its own process; return its record, wall seconds, peak RSS (KiB)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
        cmd = [sys.executable, "-m", "segsync", "--data-dir", str(self.settings.data_dir)]
        started = time.perf_counter()
        process = subprocess.Popen(
            [*cmd, "exports", "run", export, "--json", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        out, err = process.communicate()
        wall = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"run failed: {err.decode()[-2000:]}")
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return json.loads(out), wall, rss

    def engine_seconds(self, run_id: int) -> float:
        with open_context(self.settings) as ctx, ctx.db.session() as session:
            run = RunRepository(session).get(run_id)
        assert run.started_at is not None
        assert run.ended_at is not None
        return (run.ended_at - run.started_at).total_seconds()


def upserts(stats: dict[str, Any]) -> int:
    return sum(n for key, n in stats["by_route"].items() if key.startswith("POST /v1/contacts "))


def total(stats: dict[str, Any]) -> int:
    return sum(stats["by_route"].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    port = free_port()
    simulator = start_simulator(port, args.rate, args.latency_ms)
    try:
        with tempfile.TemporaryDirectory(prefix="segsync-bench-") as tmp:
            bench = Bench(Path(tmp), f"http://127.0.0.1:{port}", args.rate)
            report(bench, args)
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)


def setup(bench: Bench, profiles: int) -> None:
    third = profiles // 3
    with open_context(bench.settings) as ctx:
        load_sample(ctx, profiles=profiles, seed=42)
        with ctx.db.session() as session:
            repo = SegmentRepository(session)
            for name, low, high in (
                ("Everyone", None, None),
                ("First two thirds", None, 2 * third),
                ("Last two thirds", third + 1, None),
            ):
                repo.create(name=name, definition=definition(name, low, high), now=ctx.now())
        connection = add_connection(
            ctx,
            NewConnection(
                "Bench", type="autopilot", api_key=KEY, base_url=f"{bench.sim_url}/v1",
                rate_limit=bench.rate, contract_limit=10 * profiles,
            ),
            agree=True,
        )  # fmt: skip
        matching = DataMatching("Email", "FirstName", "LastName")
        for name, chosen in (
            ("All", ["Everyone"]),
            ("Halves", ["First two thirds", "Last two thirds"]),
        ):
            create_export(ctx, ExportSettings(name, connection.id, matching, chosen))


def change_one_percent(bench: Bench) -> None:
    with open_context(bench.settings) as ctx:
        ctx.profiles.backend.raw_sql(
            "UPDATE customers SET FirstName = FirstName || 'x' WHERE CustomerId % 100 = 0"
        )


def report(bench: Bench, args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    setup(bench, args.profiles)
    print(f"set-up: {args.profiles:,} sample profiles in {time.perf_counter() - t0:.1f} s")
    rate = args.rate

    dry, dry_wall, _ = bench.run("All", "--dry-run")
    plan = dry["plan"]
    bench.reset_stats()
    full, wall, rss = bench.run("All")
    stats = bench.stats()
    engine = bench.engine_seconds(full["id"])
    n_up = upserts(stats)
    n_all = total(stats)
    minimum = math.ceil(full["counts"]["added"] / 100)
    floor = n_all / rate
    counts = full["counts"]
    print(f"\nfull run ({counts['members']:,} members, {counts['invalid']:,} invalid, "
          f"{counts['duplicates']:,} duplicates, {counts['added']:,} contacts)")  # fmt: skip
    print(f"  upsert requests        {n_up:,} (minimum {minimum:,})")
    others = {k: n for k, n in stats["by_route"].items() if not k.startswith("POST /v1/contacts")}
    print(f"  other requests         {n_all - n_up:,}  {others}")
    print(f"  429s                   {stats['throttled']:,}")
    print(f"  wall (process)         {wall:.2f} s   engine (run record) {engine:.2f} s")
    print(f"  read + plan (dry run)  {bench.engine_seconds(dry['id']):.2f} s "
          f"(dry-run process {dry_wall:.2f} s)")  # fmt: skip
    print(f"  floor = {n_all} / {rate:g}   {floor:.2f} s")
    print(f"  wall / floor           process {wall / floor:.3f}, engine {engine / floor:.3f}, "
          f"sending only {(engine - bench.engine_seconds(dry['id'])) / floor:.3f}")  # fmt: skip
    print(f"  peak RSS (run process) {rss / 1024:.0f} MB")
    print(f"  plan said              {plan['requests_lower_bound']:,} requests at least")

    bench.reset_stats()
    rerun, wall, _ = bench.run("All")
    stats = bench.stats()
    print(f"\nrerun without changes: {upserts(stats)} upsert requests, {total(stats)} requests, "
          f"wall {wall:.2f} s (engine {bench.engine_seconds(rerun['id']):.2f} s)")  # fmt: skip

    change_one_percent(bench)
    bench.reset_stats()
    changed, wall, _ = bench.run("All")
    stats = bench.stats()
    print(f"\n1% of profiles changed: {changed['counts']['updated']:,} updated, "
          f"{upserts(stats)} upsert requests (target 10), wall {wall:.2f} s")  # fmt: skip

    bench.reset_stats()
    halves, wall, _ = bench.run("Halves")
    stats = bench.stats()
    with open_context(bench.settings) as ctx, ctx.db.session() as session:
        run = RunRepository(session).get(halves["id"])
    items = run.items_total
    print(f"\ntwo segments overlapping by half: {halves['counts']['added']:,} contacts, "
          f"{items:,} items; {upserts(stats):,} upsert requests vs ceil(items / 100) = "
          f"{math.ceil(items / 100):,}; {total(stats) - upserts(stats)} other requests; "
          f"wall {wall:.2f} s")  # fmt: skip

    projected = n_all / 5.0
    print(
        f"\nprojection at Autopilot's real 5 r/s: {n_all:,} requests → {projected:.0f} s "
        f"({projected / 60:.1f} min) for {counts['added']:,} contacts; reference: {REFERENCE}"
    )


if __name__ == "__main__":
    main()
