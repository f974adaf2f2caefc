"""Chaos soak: segsync runs killed at random moments under simulator faults, then Autopilot's
state checked against an expectation computed from the final data alone (docs/exports.md,
"Chaos soak").

    python scripts/soak.py                                  # what `make soak` runs
    python scripts/soak.py --kills 40 --seed 3 --metadata sqlite
    python scripts/soak.py --iterations 12 --no-baseline --json figures.json
    python scripts/soak.py --destination ortto               # the same against Ortto's simulator
    python scripts/soak.py --keep-failed                     # a failed phase's files kept

Each phase (``--metadata``: SQLite, PostgreSQL at 127.0.0.1:5432 in a fresh database, or
both) works in its own temporary directory: profile data, segments, a connection to an
Autopilot simulator served from this process, and an export with the mirror policy. It loops —
change the data, switch a fault on, run the export and kill it (CLI processes, or two
workers), switch the fault off — until its share of the iterations, kills or time is used, then
runs the export cleanly to its end and compares. Exit code 1 when anything is lost, orphaned,
duplicated, has wrong fields, or a run is stuck.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soaklib.chaos import FAULTS, Budget, Phase
from soaklib.cli import PostgresDatabase
from soaklib.report import Figures, measure

SHARES = {"sqlite": 0.6, "postgres": 0.4}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seed", type=int, default=20260603, help="random seed (default %(default)s)"
    )
    parser.add_argument("--iterations", type=int, default=10_000, help="at most this many loops")
    parser.add_argument(
        "--kills", type=int, default=240, help="stop once this many kills were made"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=27.0,
        help="minutes of chaos at most (default %(default)s)",
    )
    parser.add_argument("--profiles", type=int, default=300, help="profiles at the start")
    parser.add_argument(
        "--destination",
        choices=("autopilot", "ortto"),
        default="autopilot",
        help="the simulated destination type (default %(default)s)",
    )
    parser.add_argument(
        "--metadata",
        default="sqlite,postgres",
        help="metadata DBs, one phase each: sqlite, postgres or both (default %(default)s)",
    )
    parser.add_argument(
        "--workers-share", type=float, default=0.5, help="share of loops run by two workers"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the crash-free replay (extra requests)"
    )
    parser.add_argument(
        "--faults",
        default=",".join(sorted(set(FAULTS))),
        help="fault kinds to draw from, comma-separated (default %(default)s; 'none' is a loop "
        "without a fault)",
    )
    parser.add_argument(
        "--undo-share",
        type=float,
        default=0.15,
        help="share of loops that start with an undo step (default %(default)s; 0 for none)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--keep-failed",
        action="store_true",
        help="keep a failed phase's directory and PostgreSQL database, with what the "
        "simulator held, for diagnosis (they are removed otherwise)",
    )
    args = parser.parse_args(argv)
    args.metadata = [m.strip() for m in args.metadata.split(",") if m.strip()]
    unknown = [m for m in args.metadata if m not in SHARES]
    if unknown or not args.metadata:
        parser.error(f"--metadata: {unknown or 'nothing'} — give sqlite, postgres or both")
    args.faults = tuple(f.strip() for f in args.faults.split(",") if f.strip())
    wrong = sorted(set(args.faults) - set(FAULTS))
    if wrong or not args.faults:
        parser.error(f"--faults: {wrong or 'nothing'} — choose among {sorted(set(FAULTS))}")
    return args


def log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def run_phase(name: str, args: argparse.Namespace, share: float, rng: random.Random) -> Figures:
    database = PostgresDatabase() if name == "postgres" else None
    tmp = Path(tempfile.mkdtemp(prefix=f"segsync-soak-{name}-"))
    figures: Figures | None = None
    try:
        phase = Phase(
            name,
            tmp,
            rng,
            profiles=args.profiles,
            database_url=None if database is None else database.url,
            workers_share=args.workers_share,
            log=log,
            faults=args.faults,
            destination=args.destination,
            undo_share=args.undo_share,
        )
        try:
            phase.setup()
            log(f"[{name}] set up in {tmp}: {args.profiles} profiles, {phase.sim.base_url}")
            budget = Budget(
                iterations=max(1, round(args.iterations * share)),
                kills=max(1, round(args.kills * share)),
                deadline=time.monotonic() + args.duration * 60 * share,
            )
            phase.run(budget)
            log(phase.progress() + "; final clean run done, comparing")
            figures = measure(phase, with_baseline=not args.no_baseline)
            if args.keep_failed and figures.failures:
                held = {"contacts": phase.sim.contacts(), "lists": phase.sim.lists()}
                (tmp / "simulator.json").write_text(json.dumps(held, indent=1, sort_keys=True))
            return figures
        finally:
            phase.close()
    finally:
        if args.keep_failed and (figures is None or figures.failures):
            where = "" if database is None else f"; its metadata DB {database.url}"
            log(f"[{name}] kept for diagnosis: {tmp} (simulator.json: what it held){where}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            if database is not None:
                database.drop()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rng = random.Random(args.seed)
    total = sum(SHARES[m] for m in args.metadata)
    started = time.monotonic()
    results = []
    for name in args.metadata:
        figures = run_phase(name, args, SHARES[name] / total, rng)
        results.append(figures)
        for line in figures.lines:
            log(f"[{name}] {line}")
    minutes = (time.monotonic() - started) / 60
    failures = {f.phase: f.failures for f in results if f.failures}
    kills = sum(f.values["kills"] for f in results)
    mid_send = sum(f.values["mid_send"] for f in results)
    verdict = f"FAILED {failures}" if failures else "every check passed"
    log(f"soak done in {minutes:.1f} min, seed {args.seed}: {kills} kills, {mid_send} mid-send")
    log(verdict)
    if args.json is not None:
        document = {
            "seed": args.seed,
            "minutes": round(minutes, 2),
            "phases": {f.phase: f.values for f in results},
        }
        args.json.write_text(json.dumps(document, indent=2, sort_keys=True))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
