"""Explain a person (docs/explain.md): how long one answer takes on a realistic profile table.

Loads the sample profiles (default 100,000, seeded, with their orders) into a fresh data dir,
saves the demo's two segments (one with a related rule and a having), then explains 20 people
picked at random from the profile table, each answer from a warm service context, and prints
the median and the slowest beside a live count of one segment (the cost of asking the profile
engine one question about everyone), as a ratio. Nothing is sent anywhere.

    .venv/bin/python bench/explain.py [--profiles N] [--people K]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from segsync.services import people, profiles, segments
from segsync.services.context import open_context
from segsync.services.profiles.tables import catalog
from segsync.services.segments import members
from segsync.services.system.demo import DEMO_SEGMENTS
from segsync.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segsync-bench-explain-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        with open_context(settings) as ctx:
            started = time.perf_counter()
            sample = profiles.load_sample(ctx, profiles=args.profiles, seed=42)
            names = [segments.create_segment(ctx, text, "yaml").name for text in DEMO_SEGMENTS]
            print(
                f"set-up: {sample.customers:,} profiles, {sample.orders:,} orders, "
                f"{len(names)} segments in {time.perf_counter() - started:.1f} s"
            )
            table = ctx.profiles.table(catalog(ctx).profile_table)
            emails = [e for e in table.select("Email").to_pyarrow().column(0).to_pylist() if e]
            chosen = random.Random(7).sample(emails, min(args.people, len(emails)))
            people.explain_person(ctx, chosen[0])  # warm: the engine opened, tables read once
            times = []
            for email in chosen:
                began = time.perf_counter()
                report = people.explain_person(ctx, email)
                times.append(time.perf_counter() - began)
                assert report.profiles, email
            began = time.perf_counter()
            members.count_segment(ctx, names[1])
            one_count = time.perf_counter() - began
    median, slowest = statistics.median(times), max(times)
    load = os.getloadavg()[0]
    print(
        f"explain, {len(times)} people: median {median * 1000:.0f} ms, "
        f"slowest {slowest * 1000:.0f} ms"
    )
    print(
        f"a live count of {names[1]!r}: {one_count * 1000:.0f} ms; "
        f"explain median / count = {median / one_count:.2f}"
    )
    print(f"load average {load:.1f} on {os.cpu_count()} core(s)")


if __name__ == "__main__":
    main()
