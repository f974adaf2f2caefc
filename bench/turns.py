"""Two versions of segsync's first run of 100,000 profiles, measured in turns.

How each round of issue 11's work was judged: the machine's speed swings with its host's load
(``bench/export.py``'s first line), so a change of a few per cent shows only when the version
before it and the version with it run one after the other, many times, on the same data.

Each version is a git revision, checked out into a temporary worktree, or ``.``, the working
tree as it is. Each gets its own data dir, set up by its own code with ``bench/export.py``'s
set-up (the same sample profiles, segments, connections and exports). Its own code matters: saving
an export keeps its run SQL with a stamp of segsync's source files, so a data dir set up by
other code — or before an edit — has that SQL compiled again inside the run, some 0.3 s of
Ibis that the bench's runs never pay. Then, in each turn, each version's ``Fast`` export runs
its first run (1,000 r/s, no latency) in its own ``segsync exports run`` process, from a fresh
copy of its data dir, against a simulator started afresh. Printed: each run's engine seconds
(the run record's start to end), its processes' CPU seconds and the largest one's peak RSS (a
run that reads in a process of its own has two: ``bench/export.py`` measures their memory
together); then, per version, the
median and the range, and the ratio of the medians.

With no revision (as ``make bench`` runs it) the working tree runs against itself: the spread
of the two columns is the noise a change must beat at that moment.

    python bench/turns.py [REV [OTHER]] [--turns 4] [--profiles 100000]

``REV`` alone compares it with the working tree, e.g. ``python bench/turns.py HEAD`` for
uncommitted work, ``HEAD~1`` for the last commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import export  # the bench beside this one: its simulator, wire settings and launcher

ROOT = Path(__file__).resolve().parents[1]
SET_UP = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("bench_export", sys.argv[1])
bench = importlib.util.module_from_spec(spec)
sys.modules["bench_export"] = bench
spec.loader.exec_module(bench)
bench.setup(bench.Bench(Path(sys.argv[2]), sys.argv[3]), int(sys.argv[4]))
"""


@dataclass
class Version:
    label: str
    tree: Path  # where its src/ and bench/ are
    data: Path | None = None  # its data dir as set up, copied for each run


@dataclass
class Sample:
    engine: float
    cpu: float
    rss_mb: float


def checkout(revision: str, tree: Path) -> Path:
    """The revision in a detached worktree at ``tree``."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), revision],
        check=True,
    )
    return tree


def env_for(version: Version) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    env["PYTHONPATH"] = str(version.tree / "src")
    return env


def set_up(version: Version, where: Path, sim_url: str, profiles: int) -> None:
    """The version's data dir, made by its own code (see the module)."""
    subprocess.run(  # bytecode first, as an installed segsync has it
        [sys.executable, "-m", "compileall", "-q", str(version.tree / "src")], check=True
    )
    where.mkdir(parents=True)
    script = version.tree / "bench" / "export.py"
    subprocess.run(
        [sys.executable, "-c", SET_UP, str(script), str(where), sim_url, str(profiles)],
        check=True,
        env=env_for(version),
        stdout=subprocess.DEVNULL,
    )
    version.data = where / "data"


def engine_seconds(data: Path, run_id: int) -> float:
    """The run record's start to end, read from the metadata DB (SQLite, the default) with the
    standard library: the same for every version's code."""
    with sqlite3.connect(data / "segsync.db") as db:
        started, ended = db.execute(
            "SELECT started_at, ended_at FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
    return (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()


def first_run(version: Version, scratch: Path, port: int) -> Sample:
    """The version's first run from a fresh copy of its data dir, against a fresh simulator."""
    assert version.data is not None
    data = scratch / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(version.data, data)
    simulator = export.start_simulator(port)
    try:
        export.Bench(scratch, f"http://127.0.0.1:{port}").wire(1000, 0)
        usage = scratch / "usage.json"
        command = [sys.executable, "-m", "segsync", "--data-dir", str(data)]
        done = subprocess.run(
            [sys.executable, "-c", export.LAUNCHER, str(usage), "speed", *command,
             "exports", "run", "Fast", "--json"],
            capture_output=True, env=env_for(version), check=False,
        )  # fmt: skip
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
    if done.returncode != 0:
        raise SystemExit(f"{version.label}: the run failed: {done.stderr.decode()[-2000:]}")
    record = json.loads(done.stdout)
    if record["status"] != "successful":
        raise SystemExit(f"{version.label}: the run ended {record['status']}: {record}")
    used = json.loads(usage.read_text())
    return Sample(engine_seconds(data, record["id"]), used["cpu"], used["maxrss_kib"] / 1024)


def summary(label: str, samples: list[Sample]) -> float:
    engines = [s.engine for s in samples]
    median = statistics.median(engines)
    cpu = statistics.median(s.cpu for s in samples)
    rss = max(s.rss_mb for s in samples)
    print(f"  {label:<12} engine median {median:.2f} s (range {min(engines):.2f}–"
          f"{max(engines):.2f}), CPU median {cpu:.2f} s, peak RSS {rss:.0f} MB")  # fmt: skip
    return median


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "revisions", nargs="*", help="one or two git revisions; '.': the working tree"
    )
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--profiles", type=int, default=100_000)
    args = parser.parse_args(argv)
    if len(args.revisions) > 2:
        parser.error("give at most two revisions")
    if args.turns < 1:
        parser.error("--turns: give at least 1")
    if args.profiles < 1:
        parser.error("--profiles: give at least 1")
    labels = [*args.revisions, ".", "."][:2]
    same = labels[0] == labels[1]  # one checkout and one set-up, run twice a turn
    print(f"machine: 20M additions in {export.machine_speed():.2f} s (lower is faster)")
    started = time.perf_counter()
    port = export.free_port()
    trees = Path(tempfile.mkdtemp(prefix="segsync-turns-trees-"))
    try:
        with tempfile.TemporaryDirectory(prefix="segsync-turns-") as tmp:
            work = Path(tmp)
            made = [Version(label, ROOT if label == "." else checkout(label, trees / f"rev-{n}"))
                    for n, label in enumerate(labels[: 1 if same else 2])]  # fmt: skip
            versions = [made[0], made[-1]]  # the first and the second of each turn
            simulator = export.start_simulator(port)
            try:
                for n, version in enumerate(made):
                    set_up(version, work / f"v{n}", f"http://127.0.0.1:{port}", args.profiles)
            finally:
                simulator.terminate()
                simulator.wait(timeout=10)
            took = time.perf_counter() - started
            print(f"set-up: {args.profiles:,} profiles per version in {took:.0f} s")
            samples: list[list[Sample]] = [[], []]
            for turn in range(1, args.turns + 1):
                for n, version in enumerate(versions):
                    sample = first_run(version, work / "run", port)
                    samples[n].append(sample)
                    print(f"  turn {turn}  {version.label:<12} engine {sample.engine:.2f} s  "
                          f"CPU {sample.cpu:.2f} s  peak RSS {sample.rss_mb:.0f} MB")  # fmt: skip
    finally:
        for tree in trees.iterdir():
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )
        shutil.rmtree(trees, ignore_errors=True)
    print("\nfirst run at 1,000 r/s, no latency, in turns:")
    first = summary(f"{labels[0]} (1st)" if same else labels[0], samples[0])
    second = summary(f"{labels[1]} (2nd)" if same else labels[1], samples[1])
    print(f"  ratio        {second / first:.3f} (the second's median engine time / the first's)")
    print(f"\nbench/turns.py took {time.perf_counter() - started:.0f} s")
    print(f"machine: 20M additions in {export.machine_speed():.2f} s at the end")


if __name__ == "__main__":
    main()
