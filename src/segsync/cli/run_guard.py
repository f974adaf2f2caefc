"""``segsync runs approve|dismiss``: what to do with a run the blast-radius hold stopped
(docs/exports.md "Blast-radius hold")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import EXIT_FAILED, JsonOption, console, print_json, wants_json
from segsync.cli.runs import RunProgressBar, print_run, runs_app
from segsync.cli.runs import _record as run_record

if TYPE_CHECKING:
    from segsync.services import runs as run_service
    from segsync.services.runs import worker as worker_service
else:
    run_service = lazy_module("segsync.services.runs")
    worker_service = lazy_module("segsync.services.runs.worker")

RunId = Annotated[int, typer.Argument(metavar="ID", help="The held run's id.")]


@runs_app.command("approve")
def approve_command(
    ctx: typer.Context,
    run_id: RunId,
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="Queue the approved run; do not follow it."),
    ] = False,
    json_flag: JsonOption = False,
) -> None:
    """Approve a held run: it sends the plan it showed (or plans again, saying so, if the data
    changed). Followed to its end like `exports run`; with no worker alive, run here."""
    as_json = wants_json(ctx, json_flag)
    with service_context(ctx) as services:
        run = run_service.approve_run(services, run_id)
        if no_wait:
            if as_json:
                print_json(run_record(run))
            else:
                console.print(
                    f"run {run_id} approved and queued; follow it with `segsync runs show "
                    f"{run_id}`",
                    highlight=False,
                )
            return
        if as_json:
            run = worker_service.follow_run(services, run_id)
        else:
            with RunProgressBar() as bar:
                run = worker_service.follow_run(services, run_id, progress=bar)
    if as_json:
        print_json(run_record(run))
    else:
        print_run(run)
    if run.status.value in ("failure", "held"):
        raise typer.Exit(EXIT_FAILED)


@runs_app.command("dismiss")
def dismiss_command(ctx: typer.Context, run_id: RunId, json_flag: JsonOption = False) -> None:
    """Dismiss a held run: it ends Canceled and nothing is sent."""
    with service_context(ctx) as services:
        run = run_service.dismiss_run(services, run_id)
    if wants_json(ctx, json_flag):
        print_json(run_record(run))
        return
    console.print(f"run {run.id} dismissed: nothing was sent", highlight=False)
