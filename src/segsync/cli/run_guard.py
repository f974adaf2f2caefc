"""``segsync runs approve|dismiss|undo``: what to do with a run the blast-radius hold stopped
(docs/exports.md "Blast-radius hold"), and undoing a run (docs/exports.md "Undo a run")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import EXIT_FAILED, JsonOption, console, print_json, wants_json
from segsync.cli.run_views import RunProgressBar, print_run, run_record
from segsync.cli.runs import runs_app

if TYPE_CHECKING:
    from segsync.services import runs as run_service
    from segsync.services.context import ServiceContext
    from segsync.services.runs import worker as worker_service
else:
    run_service = lazy_module("segsync.services.runs")
    worker_service = lazy_module("segsync.services.runs.worker")


def _follow(services: ServiceContext, run_id: int, *, as_json: bool) -> None:
    """Follow the run to its end (executing it here when no worker is alive) and print it;
    exit 1 when it ends in Failure or Held."""
    if as_json:
        run = worker_service.follow_run(services, run_id)
        print_json(run_record(run))
    else:
        with RunProgressBar() as bar:
            run = worker_service.follow_run(services, run_id, progress=bar)
        print_run(run)
    if run.status.value in ("failure", "held"):
        raise typer.Exit(EXIT_FAILED)


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
        _follow(services, run_id, as_json=as_json)


@runs_app.command("dismiss")
def dismiss_command(ctx: typer.Context, run_id: RunId, json_flag: JsonOption = False) -> None:
    """Dismiss a held run: it ends Canceled and nothing is sent."""
    with service_context(ctx) as services:
        run = run_service.dismiss_run(services, run_id)
    if wants_json(ctx, json_flag):
        print_json(run_record(run))
        return
    console.print(f"run {run.id} dismissed: nothing was sent", highlight=False)


@runs_app.command("undo")
def undo_command(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The run to undo.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the undo's plan; send nothing.")
    ] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Queue the undo; do not follow it.")
    ] = False,
    json_flag: JsonOption = False,
) -> None:
    """Undo a run: remove the people it added to lists, add back those it removed, and put
    back the values it changed. The undo is a run of its own (queued, followed to its end)."""
    as_json = wants_json(ctx, json_flag)
    with service_context(ctx) as services:
        undo = run_service.queue_undo(services, run_id, dry_run=dry_run)
        if no_wait:
            if as_json:
                print_json(run_record(undo))
            else:
                console.print(
                    f"run {undo.id} queued to undo run {run_id}; follow it with `segsync runs "
                    f"show {undo.id}`",
                    highlight=False,
                )
            return
        _follow(services, undo.id, as_json=as_json)
