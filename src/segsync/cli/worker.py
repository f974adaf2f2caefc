"""``segsync worker``: a worker that claims queued runs and executes them, until SIGTERM."""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, console, err_console, print_json, wants_json
from segsync.services.runs.defaults import POLL_SECONDS

if TYPE_CHECKING:
    from segsync.services import runs as run_service
else:
    run_service = lazy_module("segsync.services.runs")


def worker_command(
    ctx: typer.Context,
    once: Annotated[
        bool,
        typer.Option("--once", help="Execute the runs that can start now, then exit."),
    ] = False,
    poll_interval: Annotated[
        float,
        typer.Option(
            "--poll-interval", metavar="S", min=0.05, help="Seconds between looks at the queue."
        ),
    ] = POLL_SECONDS,
    json_flag: JsonOption = False,
) -> None:
    """Claim queued runs and execute them, one at a time, until SIGTERM or Ctrl-C (the run in
    flight then goes back to the queue after its batches in flight, to be resumed)."""
    as_json = wants_json(ctx, json_flag)
    with service_context(ctx) as services:
        from segsync.services.runs.worker import Worker

        worker = Worker(services, poll_interval=poll_interval)

        def stop(signum: int, _frame: FrameType | None) -> None:
            if not as_json:
                err_console.print(
                    f"{signal.Signals(signum).name}: stopping; a run in flight goes back to the "
                    "queue after its batches in flight",
                    highlight=False,
                )
            worker.stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if not as_json:
                err_console.print(
                    f"worker {worker.id} on {services.db.display_url}"
                    + ("" if once else "; SIGTERM or Ctrl-C stops it"),
                    highlight=False,
                )
            from segsync.services.sync.apart import standby

            with standby(services, serving=True):  # forked now: first runs may read apart
                worker.run(once=once)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    records: list[dict[str, Any]] = []
    for run in worker.executed:
        records.append(run_service.run_json(run) | {"export": run.export_name})
        if not as_json:
            console.print(
                f"run {run.id} of {run.export_name!r}: {run.status.label} — {run.message or ''}",
                highlight=False,
                markup=False,
            )
    if as_json:
        print_json(records)
