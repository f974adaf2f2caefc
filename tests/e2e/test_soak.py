"""The chaos soak in small (X7, docs/exports.md "Chaos soak"): ``scripts/soak.py`` with a
fixed seed for a few iterations — runs killed at random moments with SIGKILL and SIGTERM, via
the CLI and via two workers, under 429 storms, 500s, 408s after commit, latency spikes,
dropped connections, a revoked key and lists deleted by hand, held runs approved and runs
undone — then Autopilot's state checked against an expectation computed from the final data
alone.

Bounded by iterations, not by the clock: a busy machine makes it slower, never different in
what it checks. About a minute and a half on a quiet machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 6
SEED = 7


def test_the_soak_ends_with_nothing_lost_orphaned_duplicated_wrong_or_stuck(
    tmp_path: Path,
) -> None:
    figures_file = tmp_path / "figures.json"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "soak.py"),
        "--metadata", "sqlite",
        "--seed", str(SEED),
        "--iterations", str(ITERATIONS),
        "--kills", "1000",
        "--duration", "60",  # minutes: a guard against a hang, never what stops it
        "--profiles", "200",
        "--no-baseline",
        "--undo-share", "0.5",  # undo steps in half the loops (4 with this seed)
        "--json", str(figures_file),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    output = done.stdout + done.stderr
    assert figures_file.exists(), output
    figures = json.loads(figures_file.read_text())["phases"]["sqlite"]

    assert figures["iterations"] == ITERATIONS, output
    assert figures["kills"] > 0, output  # the chaos happened
    assert figures["lost"] == 0, output
    assert figures["orphaned"] == 0, output
    assert figures["duplicated"] == 0, output
    assert figures["wrong_fields"] == 0, output
    assert figures["stuck_runs"] == 0, output
    assert figures["undos"] > 0, output  # the guard rails ran: undone runs put back exactly
    assert figures["undo_mismatches"] == 0, output
    assert figures["final_run"] == "successful", output
    assert figures["expected_contacts"] > 0, output
    assert done.returncode == 0, output
