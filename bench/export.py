"""The export run engine against its floor (issue 11's targets 1, 2, 3 and 7).

One simulator process (``segsync simulator``), reconfigured between scenarios, and every run its
own process (``segsync exports run``), as in production. 100,000 sample profiles by default; two
segments, "Everyone" and "Gold or Platinum" (about 20 % of them), so a contact may need two items.

Scenarios (``--scenarios``, default all):

- ``full``: the first run of an export at 1,000 r/s with no latency: engine seconds (the run
  record's start to end) and contacts per engine second, beside the issue's headline of 30,000
  (what it judges is the 5 s). Target: ≤ 5 s of engine time for 100k, on the median of three
  runs, each from the data dir as it was before the first and into an empty simulator (one
  run alone swung from 2.7 to 3.45 s on a quiet machine); each is printed. Above 100k, where
  the time is a reference and not a target, one run.
- ``rerun``: the same export again, nothing changed. Targets: ≤ 1.5 s engine, ≤ 2.5 s process.
- ``wire``: the first run of another export at 100 r/s with 50 ms latency. Target: process
  wall / floor ≤ 1.10. Printed beside it, where the time beyond the floor goes: the process
  outside its engine (start-up, exit) and the engine's own rest.
- ``change``: 1 % of the profiles change — renames, joins (Bronze → Gold) and leaves (Gold →
  Bronze) — then the ``wire`` export runs again, three times, each from the same data dir as
  it was before the first (the simulator keeps what the first sent: the later runs make the
  same requests). Target: wall ≤ floor + 2 s, on the median of the three; each is printed.
- ``five``: a 10,000-contact export at Autopilot's real 5 r/s, measured (not projected).

The floor is honest: the **fewest possible requests** for the change, computed here from the
data alone (distinct valid emails per segment, the emails whose fields changed, the memberships
to add and to remove; a batch holds at most 100 items and no email twice), never the requests
the engine made; then ``floor = max(0, fewest − B) / R`` where ``B = max(R, 1)`` is the
simulator's initial token-bucket burst. The peak RSS is that of each run's own process, or of
its processes where it forks a reader (:data:`LAUNCHER` says how they are added up). The
first and last lines say how fast the machine is at those moments (a plain Python loop, timed):
our two-core machine's speed swings by up to 2.5× with its host's load, from one minute to the
next. The loop catches a busy host, not every slowdown (one afternoon it ran as fast as ever
while runs took twice their time), so compare figures made in turns.

    python bench/export.py [--profiles 100000] [--scenarios full,rerun,wire,change,five]

At 1M profiles (the memory target, 300 MB) run ``--profiles 1000000 --scenarios full,rerun``:
``bench/export_million.py`` does, so that ``make bench`` prints that target too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from segsync.domain.emails import normalise_email
from segsync.services.connections import NewConnection, add_connection
from segsync.services.context import open_context
from segsync.services.exports import DataMatching, ExportSettings, create_export
from segsync.services.profiles import load_sample
from segsync.settings import Settings
from segsync.storage.repositories.runs import RunRepository
from segsync.storage.repositories.segments import SegmentRepository

KEY = "bench-key-0123456789"
MAX_BATCH = 100
SCENARIOS = ("full", "rerun", "wire", "change", "five")
CHANGE_RUNS = 3  # the 1 % change is short: its median, not one sample of a noisy machine
FIRST_RUNS = 3  # the 100k first run too: its median, each run printed
GOLD = ("Gold", "Platinum")
LAUNCHER = """
import json, os, resource, subprocess, sys, threading, time

def tree(pid):
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    found += tree(int(child))
    except OSError:
        pass
    return found

def summed(pids):
    pss = rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith(("Pss:", "Rss:")):
                        kib = int(line.split()[1])
                        pss, rss = (pss + kib, rss) if line[0:3] == "Pss" else (pss, rss + kib)
        except OSError:
            pass
    return pss, rss

memory = sys.argv[2] == "memory"
started = time.perf_counter()
run = subprocess.Popen(sys.argv[3:])
most = {"processes": 1, "pss_sum_kib": 0, "rss_sum_kib": 0}

def watch():  # how many processes; with memory, theirs summed while there are several
    while run.poll() is None:
        pids = tree(run.pid)
        most["processes"] = max(most["processes"], len(pids))
        if memory and len(pids) > 1:
            pss, rss = summed(pids)
            most["pss_sum_kib"] = max(most["pss_sum_kib"], pss)
            most["rss_sum_kib"] = max(most["rss_sum_kib"], rss)
        time.sleep(0.05)

watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
run.wait()
wall = time.perf_counter() - started
watcher.join()
used = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as out:
    peak = max(used.ru_maxrss, most["pss_sum_kib"])
    json.dump({"maxrss_kib": peak, "largest_kib": used.ru_maxrss,
               "cpu": used.ru_utime + used.ru_stime, "wall": wall, **most}, out)
sys.exit(run.returncode)
"""
"""``LAUNCHER USAGE_FILE speed|memory COMMAND…`` runs the command and writes what it used: its
wall time, the CPU time of its processes, how many processes it had at once, and its peak
memory (``maxrss_kib``): the largest process's peak RSS, which the kernel keeps exactly. Where
the command forks (a first run reading in a process of its own, ``services/sync/apart.py``),
that is not the whole: run it again with ``memory``, which also adds up the processes'
proportional set sizes (PSS: each shared page split between those sharing it, so a page the
fork shares is counted once) every 50 ms while there are several, and takes that sum where it
is more (their RSS summed is written too, ``rss_sum_kib``: every shared page once per process).
Apart, because adding up a PSS takes the kernel some 9 ms per 200 MB: two processes sampled
every 50 ms take a third of a core from the run being timed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "segsync", "simulator", "--port", str(port), "--api-key", KEY,
        "--rate-limit", "1000", "--seed", "1",
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


def condition(attribute: str, op: str, value: Any) -> dict[str, Any]:
    return {"attribute": attribute, "op": op, "value": value}


def definition(name: str, *conditions: dict[str, Any]) -> str:
    rules = [{"conditions": {"all": list(conditions)}}]
    return json.dumps({"name": name, "rules": rules})


SEGMENTS = {
    "Everyone": definition("Everyone", condition("CustomerId", "greater_or_equal", 0)),
    "Gold or Platinum": definition("Gold or Platinum", condition("LoyaltyTier", "in", GOLD)),
    "First 10k": definition("First 10k", condition("CustomerId", "less_or_equal", 10_000)),
}


@dataclass(frozen=True)
class Run:
    record: dict[str, Any]
    engine: float
    by_route: dict[str, int]
    usage: dict[str, Any]
    """What the launcher wrote (:data:`LAUNCHER`)."""

    @property
    def wall(self) -> float:
        """The run's process alone, start to end: not the launcher's own start."""
        return float(self.usage["wall"])

    @property
    def cpu(self) -> float:
        return float(self.usage["cpu"])

    @property
    def rss_mb(self) -> float:
        return float(self.usage["maxrss_kib"]) / 1024

    @property
    def requests(self) -> int:
        return sum(self.by_route.values())

    @property
    def forked(self) -> bool:
        """Whether the run had more than one process (its peak RSS is not its whole memory)."""
        return int(self.usage.get("processes", 1)) > 1

    def memory(self) -> str:
        """How the peak memory was made up, where the run forked a reader."""
        if not self.forked or not self.usage.get("pss_sum_kib"):
            return ""
        mb = {k: self.usage[k] / 1024 for k in ("pss_sum_kib", "rss_sum_kib", "largest_kib")}
        return (f" ({self.usage['processes']} processes: PSS summed {mb['pss_sum_kib']:.0f} MB, "
                f"RSS summed {mb['rss_sum_kib']:.0f} MB, the largest's RSS "
                f"{mb['largest_kib']:.0f} MB)")  # fmt: skip


class Bench:
    def __init__(self, root: Path, sim_url: str) -> None:
        self.settings = Settings(_env_file=None, data_dir=root / "data")
        self.sim_url = sim_url
        self.root = root
        self.wired: dict[str, float] = {}

    def sim(self, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.sim_url}/_sim/{path}"
        reply = httpx.post(url, json=body) if body is not None else httpx.get(url)
        reply.raise_for_status()
        return reply.json()

    def wire(self, rate: float, latency_ms: float) -> None:
        """Set the simulator's rate limit (its bucket starts full) and latency."""
        self.wired = {"rate_limit": rate, "latency_ms": latency_ms}
        self.sim("faults", self.wired)

    def empty_account(self) -> None:
        """The simulator as a new Autopilot account (no contacts, lists or fields), on the
        same wire: a first run after another meets what the first met, not the contacts the
        other sent (updating a held contact costs the simulator less than adding one)."""
        self.sim("reset", {})
        self.sim("faults", self.wired)

    def counters(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for route, by_status in self.sim("stats")["requests"].items():
            for status, n in by_status.items():
                counts[f"{route} {status}"] = n
        return counts

    def run(self, export: str, *, memory: bool = False) -> Run:
        """Run the export in its own process: its record, wall and engine seconds, peak RSS.

        The run is started by a small launcher process: Linux keeps a process's peak RSS
        across ``exec``, so a child forked straight from this (big) bench process would report
        the bench's memory, not its own. The launcher times the run's process, start to end
        (its own start-up, some 20 ms, is not the run's)."""
        before = self.counters()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
        cmd = [sys.executable, "-m", "segsync", "--data-dir", str(self.settings.data_dir)]
        errors = self.root / "stderr.txt"
        usage_file = self.root / "usage.json"
        with errors.open("wb") as err:
            process = subprocess.run(
                [sys.executable, "-c", LAUNCHER, str(usage_file),
                 "memory" if memory else "speed", *cmd, "exports", "run", export, "--json"],
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                check=False,
            )  # fmt: skip
        if process.returncode != 0:
            raise SystemExit(f"run failed: {errors.read_text()[-2000:]}")
        record = json.loads(process.stdout)
        usage = json.loads(usage_file.read_text())
        after = self.counters()
        by_route = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}
        return Run(record, self.engine_seconds(record["id"]), by_route, usage)

    def keep(self) -> Path:
        """A copy of the data dir as it is now, for :meth:`restore`."""
        kept = self.root / "kept"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(self.settings.data_dir, kept)
        return kept

    def restore(self, kept: Path) -> None:
        shutil.rmtree(self.settings.data_dir)
        shutil.copytree(kept, self.settings.data_dir)

    def engine_seconds(self, run_id: int) -> float:
        with open_context(self.settings) as ctx, ctx.db.session() as session:
            run = RunRepository(session).get(run_id)
        assert run.started_at is not None
        assert run.ended_at is not None
        return (run.ended_at - run.started_at).total_seconds()

    def profiles(self) -> list[dict[str, Any]]:
        with open_context(self.settings) as ctx:
            table = ctx.profiles.table("customers")
            columns = ["CustomerId", "Email", "FirstName", "LastName", "LoyaltyTier"]
            return list(table.select(columns).to_pyarrow().to_pylist())


# -- the fewest requests, from the data alone ---------------------------------------------------


@dataclass(frozen=True)
class Desired:
    """Per distinct valid email: the winning profile's fields and the segments of every profile
    with that email."""

    fields: dict[str, tuple[Any, Any]]
    segments: dict[str, set[str]]


def desired(rows: Iterable[dict[str, Any]], segments: dict[str, Any]) -> Desired:
    fields: dict[str, tuple[Any, Any]] = {}
    winner: dict[str, int] = {}
    member: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        email, _ = normalise_email(row["Email"])
        if email is None:
            continue
        inside = {name for name, test in segments.items() if test(row)}
        if not inside:
            continue
        member[email] |= inside
        if email not in winner or row["CustomerId"] < winner[email]:
            winner[email] = row["CustomerId"]
            fields[email] = (row["FirstName"], row["LastName"])
    return Desired(fields, dict(member))


def fewest_batches(items_per_email: Iterable[int]) -> int:
    counts = [n for n in items_per_email if n]
    if not counts:
        return 0
    return max(math.ceil(sum(counts) / MAX_BATCH), max(counts))


def first_run_minimum(want: Desired) -> int:
    """Make each list, then every membership once (a new contact rides on its first item)."""
    lists = len({s for segments in want.segments.values() for s in segments})
    return lists + fewest_batches(len(s) for s in want.segments.values())


def change_minimum(before: Desired, after: Desired) -> tuple[int, dict[str, int]]:
    """Upserts for new contacts, changed fields and joins; one request per leave."""
    per_email: list[int] = []
    joins = leaves = updates = 0
    for email, segments in after.segments.items():
        old = before.segments.get(email, set())
        new = len(segments - old)
        joins += new if email in before.segments else 0
        changed = before.fields.get(email) != after.fields[email]
        updates += changed and email in before.fields
        per_email.append(new or int(changed))
    for email, segments in before.segments.items():
        leaves += len(segments - after.segments.get(email, set()))
    minimum = fewest_batches(per_email) + leaves
    return minimum, {"updated": updates, "joins": joins, "leaves": leaves}


def server_burst(rate: float) -> float:
    """The requests the simulator's token bucket lets through at once: a second's worth, at
    least one (it starts full)."""
    return max(rate, 1.0)


def floor_seconds(fewest: int, rate: float) -> float:
    return max(0, fewest - server_burst(rate)) / rate


# -- set-up and the change ----------------------------------------------------------------------


def setup(bench: Bench, profiles: int) -> None:
    with open_context(bench.settings) as ctx:
        load_sample(ctx, profiles=profiles, seed=42)
        with ctx.db.session() as session:
            repo = SegmentRepository(session)
            for name, text in SEGMENTS.items():
                repo.create(name=name, definition=text, now=ctx.now())
        matching = DataMatching("Email", "FirstName", "LastName")
        for rate, export, segments in (
            (1000.0, "Fast", ["Everyone", "Gold or Platinum"]),
            (100.0, "Wire", ["Everyone", "Gold or Platinum"]),
            (5.0, "Five", ["First 10k"]),
        ):
            connection = add_connection(
                ctx,
                NewConnection(
                    f"Bench {rate:g}", type="autopilot", api_key=KEY,
                    base_url=f"{bench.sim_url}/v1", rate_limit=rate, contract_limit=2 * profiles,
                ),
                agree=True,
            )  # fmt: skip
            prefix = f"{export}: "
            create_export(
                ctx, ExportSettings(export, connection.id, matching, segments, list_prefix=prefix)
            )


def change_one_percent(bench: Bench) -> None:
    """Renames (0.5 %), joins (0.25 %: Bronze → Gold), leaves (0.25 %: Gold → Bronze)."""
    with open_context(bench.settings) as ctx:
        sql = ctx.profiles.backend.raw_sql
        sql("UPDATE customers SET FirstName = FirstName || 'x' WHERE CustomerId % 200 = 0")
        sql(
            "UPDATE customers SET LoyaltyTier = CASE LoyaltyTier WHEN 'Bronze' THEN 'Gold' "
            "ELSE 'Bronze' END WHERE CustomerId % 200 = 7 "
            "AND LoyaltyTier IN ('Bronze', 'Gold')"
        )


# -- the report ---------------------------------------------------------------------------------


HEADLINE_RATE = 30_000
"""Issue 11's target 1 reads "Engine ≥ 30,000 contacts/s: 100k contacts at 1,000 r/s with no
latency in ≤ 5 s of engine time"; 5 s for 100k is 20,000 a second. The bench judges the 5 s and
prints the rate against the headline beside it."""


def verdict(value: float, target: float) -> str:
    return f"{'PASS' if value <= target else 'MISS'} (target ≤ {target:g})"


def time_verdict(value: float, target: float, scale: float) -> str:
    """:func:`verdict` against a time target of issue 11, set for 100,000 profiles. At a larger
    size the issue sets no time target (only memory), so the figure is set beside the 100k
    target scaled by the size, as a reference, never as PASS or MISS."""
    if scale == 1.0:
        return verdict(value, target)
    side = "within" if value <= target * scale else "over"
    return f"{side} {target * scale:g} (the 100k target × {scale:g}: a reference, not a target)"


def describe(name: str, run: Run, fewest: int, rate: float) -> float:
    floor = floor_seconds(fewest, rate)
    print(f"\n{name}")
    print(f"  requests        {run.requests:,} made; fewest possible {fewest:,}")
    largest = f" (the largest of its {run.usage['processes']} processes)" if run.forked else ""
    print(f"  wall (process)  {run.wall:.2f} s   engine {run.engine:.2f} s   CPU (process) "
          f"{run.cpu:.2f} s   peak RSS {run.rss_mb:.0f} MB{largest}")  # fmt: skip
    burst = server_burst(rate)
    print(f"  floor           {floor:.2f} s  = max(0, {fewest:,} − {burst:g}) / {rate:g}")
    return floor


def beyond(run: Run, floor: float) -> None:
    """Where a run's time beyond its floor goes: the process outside its engine (start-up and
    exit), and the engine's own rest. (The client's bucket starts as full as the simulator's,
    so no first burst is held back; the room it keeps for its requests out is the engine's.)"""
    outside = run.wall - run.engine
    print(f"  beyond floor    {run.wall - floor:.2f} s: outside the engine {outside:.2f} s "
          f"(start-up, exit); the engine's own {run.engine - floor:.2f} s")  # fmt: skip


def median_of(
    bench: Bench,
    kept: Path,
    export: str,
    times: int,
    *,
    by: Callable[[Run], float] | None = None,
    first: bool = False,
) -> tuple[Run, list[Run]]:
    """``times`` runs of ``export``, each from the data dir ``kept`` (as :meth:`Bench.keep`
    made it) and, for a ``first`` run, into an empty account: the median by ``by`` (engine
    seconds unless given), and every run in the order made."""
    runs = []
    for _ in range(times):
        bench.restore(kept)
        if first:
            bench.empty_account()
        runs.append(bench.run(export))
    return sorted(runs, key=by or (lambda r: r.engine))[times // 2], runs


def each(seconds: Iterable[float]) -> str:
    """Every run's figure beside a median, where there were several."""
    figures = [f"{s:.2f}" for s in seconds]
    if len(figures) == 1:
        return ""
    return f" (the median of {len(figures)} runs: {', '.join(figures)} s)"


def report(bench: Bench, args: argparse.Namespace) -> None:
    chosen = set(args.scenarios.split(","))
    t0 = time.perf_counter()
    setup(bench, args.profiles)
    print(f"set-up: {args.profiles:,} sample profiles in {time.perf_counter() - t0:.1f} s")
    tests = {
        "Everyone": lambda r: True,
        "Gold or Platinum": lambda r: r["LoyaltyTier"] in GOLD,
    }
    before = desired(bench.profiles(), tests)
    contacts = len(before.segments)
    print(f"desired: {contacts:,} distinct valid emails, "
          f"{sum(len(s) for s in before.segments.values()):,} memberships")  # fmt: skip
    scale = max(1.0, args.profiles / 100_000)  # the targets are for 100k; larger: scaled
    if "full" in chosen:
        bench.wire(1000, 0)
        kept = bench.keep()
        times = FIRST_RUNS if scale == 1.0 else 1
        run, runs = median_of(bench, kept, "Fast", times, first=True)
        describe("full run at 1,000 r/s, no latency", run, first_run_minimum(before), 1000)
        rate = contacts / run.engine
        print(f"  engine          {run.engine:.2f} s {time_verdict(run.engine, 5.0, scale)}"
              f"{each(r.engine for r in runs)}")  # fmt: skip
        headline = f"the issue's headline {HEADLINE_RATE:,}: {rate / HEADLINE_RATE:.2f}×"
        print(f"  contacts/s      {rate:,.0f} (distinct emails / engine s; {headline})")
        memory = 250 if args.profiles <= 100_000 else 300
        peak = run
        if run.forked:  # its processes' memory together, in a run of its own (LAUNCHER)
            bench.restore(kept)
            bench.empty_account()
            peak = bench.run("Fast", memory=True)
            print("  (its memory: the same first run again, from the same data dir,"
                  " into an empty simulator)")  # fmt: skip
        print(f"  peak RSS        {peak.rss_mb:.0f} MB {verdict(peak.rss_mb, memory)}"
              f"{peak.memory()}")  # fmt: skip
        if "rerun" in chosen:
            again = bench.run("Fast")
            describe("rerun without changes", again, 0, 1000)
            engine = time_verdict(again.engine, 1.5, scale)
            print(f"  engine          {again.engine:.2f} s {engine}")
            print(f"  process         {again.wall:.2f} s {time_verdict(again.wall, 2.5, scale)}")
            print(f"  peak RSS        {again.rss_mb:.0f} MB {verdict(again.rss_mb, memory)}"
                  f"{again.memory()}")  # fmt: skip
            print(f"  requests        {again.by_route}")
    if "wire" in chosen or "change" in chosen:
        bench.wire(100, 50)
        run = bench.run("Wire")
        floor = describe("full run at 100 r/s, 50 ms latency", run, first_run_minimum(before), 100)
        print(f"  wall / floor    process {run.wall / floor:.3f} "
              f"{verdict(run.wall / floor, 1.10)}, engine {run.engine / floor:.3f}")  # fmt: skip
        beyond(run, floor)
    if "change" in chosen:
        change_one_percent(bench)
        after = desired(bench.profiles(), tests)
        fewest, what = change_minimum(before, after)
        bench.wire(100, 50)
        kept = bench.keep()
        run, runs = median_of(bench, kept, "Wire", CHANGE_RUNS, by=lambda r: r.wall)
        floor = describe(f"1 % changed at 100 r/s, 50 ms: {what}", run, fewest, 100)
        counts = runs[0].record["counts"]
        print(f"  run counted     updated {counts['updated']:,}, removed {counts['removed']:,}")
        print(f"  wall − floor    process {run.wall - floor:.2f} s "
              f"{verdict(run.wall - floor, 2.0)}, engine {run.engine - floor:.2f} s"
              f"{each(r.wall - floor for r in runs)}")  # fmt: skip
    if "five" in chosen:
        bench.wire(5, 50)
        ten_k = desired(
            (r for r in bench.profiles() if r["CustomerId"] <= 10_000),
            {"First 10k": tests["Everyone"]},
        )
        run = bench.run("Five")
        floor = describe("10k contacts at Autopilot's 5 r/s, 50 ms (measured)", run,
                         first_run_minimum(ten_k), 5)  # fmt: skip
        print(f"  wall / floor    process {run.wall / floor:.3f}, engine {run.engine / floor:.3f}")


def machine_speed() -> float:
    """Seconds a loop of 20 million additions takes in this interpreter: the machine's speed of
    the moment beside the figures (our two-core machine took from 1.2 s to 3.0 s on one day,
    as its host's load came and went), best of three."""
    best = math.inf
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(20_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"--scenarios: unknown {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    print(f"machine: 20M additions in {machine_speed():.2f} s (lower is faster)")
    started = time.perf_counter()
    port = free_port()
    simulator = start_simulator(port)
    try:
        with tempfile.TemporaryDirectory(prefix="segsync-bench-") as tmp:
            bench = Bench(Path(tmp), f"http://127.0.0.1:{port}")
            report(bench, args)
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
    print(f"\nbench/export.py took {time.perf_counter() - started:.0f} s")
    print(f"machine: 20M additions in {machine_speed():.2f} s at the end")


if __name__ == "__main__":
    main()
