"""``make fuzz``: the fuzz suite (tests/fuzz) at full size, then its figures.

Runs pytest on tests/fuzz with SEGSYNC_FUZZ_EXAMPLES=full (or ``--examples N`` per target and
operation), collects what each target counted (tests/fuzz/tally.py) and prints one line per
target: tries, accepted, clean errors, 5xx, tracebacks, late failures, state changes, canary
hits. Bounded: a fixed number of generated inputs per target, derandomized (the same inputs
every run). Exits non-zero when any bad figure is not 0 or a test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = (
    ("tries", "tries"),
    ("ok", "accepted"),
    ("clean", "clean errors"),
    ("server_error", "5xx"),
    ("traceback", "tracebacks"),
    ("late_failure", "late failures"),
    ("state_change", "state changes"),
    ("canary_hit", "canary hits"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", default="full", help="per target: 'full' or a number")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "fuzz.json"
        env = {
            **os.environ,
            "SEGSYNC_FUZZ_EXAMPLES": args.examples,
            "SEGSYNC_FUZZ_REPORT": str(report),
        }
        started = time.monotonic()
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz"],
            cwd=ROOT,
            env=env,
        )
        seconds = time.monotonic() - started
        figures = json.loads(report.read_text()) if report.exists() else {}
    width = max((len(name) for name in figures), default=10)
    print()
    print("target".ljust(width), *(label.rjust(len(label)) for _, label in COLUMNS), sep="  ")
    totals = dict.fromkeys((key for key, _ in COLUMNS), 0)
    for name, row in sorted(figures.items()):
        print(name.ljust(width), *(str(row[k]).rjust(len(label)) for k, label in COLUMNS), sep="  ")
        for key, _ in COLUMNS:
            totals[key] += row[key]
        for example in row.get("examples", []):
            print("   ", example.splitlines()[0][:200])
    print(
        "total".ljust(width), *(str(totals[k]).rjust(len(label)) for k, label in COLUMNS), sep="  "
    )
    print(f"\n{totals['tries']:,} generated inputs in {seconds:.0f} s; pytest exit code {code}")
    bad = sum(
        totals[k]
        for k in ("server_error", "traceback", "late_failure", "state_change", "canary_hit")
    )
    return 1 if code or bad or not figures else 0


if __name__ == "__main__":
    sys.exit(main())
