"""Run a set of tests several times in a row while other processes keep every core busy, and
print each repetition's pass/fail counts and duration: a test that passes here does not depend
on how fast the machine happens to be.

    python scripts/loaded_tests.py                       # the default set, 5 times, 2 busy loops
    python scripts/loaded_tests.py -r 3 --load 4 -- tests/e2e -x
    python scripts/loaded_tests.py --load 0 -- tests/services/test_runner.py   # no load

Everything after ``--`` goes to pytest (default: the engine, e2e and browser tests). The busy
loops are processes of this script's own, stopped by their ids when it ends. It exits 1 when
any repetition had a failure or an error (or ran no test), else 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TESTS = [
    "tests/services/test_runner.py",
    "tests/services/test_runner_faults.py",
    "tests/e2e",
    "tests/browser",
]
BUSY_LOOP = "while True:\n    pass\n"
COUNTED = ("tests", "failures", "errors", "skipped")


@dataclass(frozen=True)
class Outcome:
    """One repetition: counts from pytest's JUnit XML report, and the wall time."""

    passed: int
    failed: int
    errors: int
    skipped: int
    seconds: float
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.failed == 0 and self.errors == 0 and self.passed > 0


def start_load(processes: int) -> list[subprocess.Popen[bytes]]:
    """``processes`` Python busy loops, one core's worth of work each."""
    command = [sys.executable, "-c", BUSY_LOOP]
    return [subprocess.Popen(command) for _ in range(processes)]  # noqa: S603 - our own code


def stop_load(load: list[subprocess.Popen[bytes]]) -> None:
    for process in load:
        process.terminate()
    for process in load:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_once(pytest_args: list[str], report: Path) -> Outcome:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        *pytest_args,
    ]
    started = time.monotonic()
    finished = subprocess.run(command, cwd=ROOT, check=False)  # noqa: S603 - our own pytest
    seconds = time.monotonic() - started
    totals: Counter[str] = Counter()
    if report.exists():  # written by the pytest just run, in our own temporary directory
        for suite in ET.parse(report).getroot().iter("testsuite"):  # noqa: S314
            totals.update({key: int(suite.get(key, 0)) for key in COUNTED})
    failed, errors, skipped = totals["failures"], totals["errors"], totals["skipped"]
    passed = totals["tests"] - failed - errors - skipped
    return Outcome(passed, failed, errors, skipped, seconds, finished.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--repeat", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument(
        "--load",
        type=int,
        default=os.cpu_count() or 2,
        help="busy-loop processes beside the tests (default: one per core)",
    )
    parser.add_argument("pytest_args", nargs="*", help="after --: what pytest runs")
    options = parser.parse_args(argv)
    if options.repeat < 1 or options.load < 0:
        parser.error("--repeat must be at least 1 and --load at least 0")
    pytest_args = options.pytest_args or DEFAULT_TESTS

    print(f"tests: {' '.join(pytest_args)}")
    print(f"load: {options.load} busy loop(s) on {os.cpu_count()} core(s)", flush=True)
    outcomes: list[Outcome] = []
    load = start_load(options.load)
    try:
        with tempfile.TemporaryDirectory(prefix="loaded-tests-") as scratch:
            for index in range(1, options.repeat + 1):
                outcome = run_once(pytest_args, Path(scratch) / f"run-{index}.xml")
                outcomes.append(outcome)
                print(
                    f"repetition {index}/{options.repeat}: {outcome.passed} passed, "
                    f"{outcome.failed} failed, {outcome.errors} errors, {outcome.skipped} "
                    f"skipped in {outcome.seconds:.1f}s"
                    + ("" if outcome.ok else f"  <-- NOT OK (exit {outcome.exit_code})"),
                    flush=True,
                )
    finally:
        stop_load(load)

    good = sum(outcome.ok for outcome in outcomes)
    times = [outcome.seconds for outcome in outcomes]
    print(
        f"{good}/{len(outcomes)} repetitions passed under load; "
        f"{min(times):.1f}s to {max(times):.1f}s each"
    )
    return 0 if good == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
