"""``segsync runs ...`` and ``segsync exports run|run-all``: run exports with a progress bar,
follow, cancel and inspect runs, download what a run set aside."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segsync.cli.context import service_context
from segsync.cli.exports import exports_app
from segsync.cli.lazy import lazy_module
from segsync.cli.output import (
    EXIT_FAILED,
    JsonOption,
    WideOption,
    console,
    err_console,
    print_json,
    print_table,
    state,
    wants_json,
)
from segsync.cli.run_changes import changes_command, list_results, print_list_results
from segsync.cli.run_views import (
    RunProgressBar,
    print_run,
    run_record,
    seconds_text,
    when_short,
    when_text,
)

if TYPE_CHECKING:
    from segsync.services import runs as run_service
    from segsync.services.context import ServiceContext
else:
    run_service = lazy_module("segsync.services.runs")

runs_app = typer.Typer(
    name="runs",
    help="Runs of exports: history, details, cancel, rejects.",
    no_args_is_help=True,
)

# ---------------------------------------------------------------- exports run / run-all


@exports_app.command("run")
def run_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export to run.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute the exact plan; send nothing.")
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="Queue the run and print its id; do not follow it."),
    ] = False,
    json_flag: JsonOption = False,
) -> None:
    """Run an export now, whatever its schedule (or resume its interrupted run): queue it and
    follow it with a progress bar until it ends; with no worker alive, run it here."""
    as_json = wants_json(ctx, json_flag)
    with service_context(ctx) as services:
        if no_wait:
            run_id = run_service.spawn_background_run(
                state(ctx).settings, services, name, dry_run=dry_run
            )
            if as_json:
                print_json({"id": run_id, "status": "queued"})
            else:
                console.print(
                    f"run {run_id} queued; follow it with `segsync runs show {run_id}`",
                    highlight=False,
                )
            return
        if dry_run:
            started = run_service.start_run(services, name, dry_run=True)
            run = run_service.execute_started(services, started)
        else:
            run = _follow(services, name, as_json=as_json)
    if as_json:
        print_json(run_record(run))
    else:
        print_run(run)
    if run.status.value in ("failure", "held"):
        raise typer.Exit(EXIT_FAILED)


def _follow(services: ServiceContext, name: str, *, as_json: bool) -> run_service.RunRecord:
    """Queue the run and follow it to its end (a worker runs it, or this process)."""
    from segsync.services.runs.queue import enqueue_run
    from segsync.services.runs.worker import follow_run
    from segsync.services.sync.apart import standby

    with standby(services):  # forked now: a first run may read in a process of its own
        enqueued = enqueue_run(services, name)
        run_id = enqueued.run.id
        if not as_json and enqueued.run.status.value == "processing":
            err_console.print(
                f"resuming run {run_id}, interrupted before it ended", highlight=False
            )
        try:
            if as_json:
                return follow_run(services, run_id)
            with RunProgressBar() as bar:
                return follow_run(services, run_id, progress=bar)
        except KeyboardInterrupt:
            err_console.print(
                f"stopped following run {run_id}; `segsync runs show {run_id}` shows it. A "
                "run this command was executing resumes with the next `exports run` or a "
                "worker",
                highlight=False,
            )
            raise typer.Exit(130) from None


@exports_app.command("run-all")
def run_all_command(ctx: typer.Context, json_flag: JsonOption = False) -> None:
    """Queue a run of every export whose schedule is on; the workers execute them."""
    as_json = wants_json(ctx, json_flag)
    with service_context(ctx) as services:
        results = run_service.run_all(services)
    output: list[dict[str, Any]] = []
    for item in results:
        if isinstance(item, str):
            output.append({"skipped": item})
            if not as_json:
                err_console.print(f"[bold yellow]not queued:[/] {item}", highlight=False)
            continue
        output.append(run_service.run_json(item) | {"export": item.export_name})
        if not as_json:
            console.print(
                f"{item.export_name}: run {item.id} {item.status.label}",
                highlight=False,
                markup=False,
            )
    if as_json:
        print_json(output)
    elif not results:
        console.print("no export has its schedule on")
    elif any(not isinstance(item, str) for item in results):
        console.print(
            "the runs start as soon as a worker is free (`segsync serve` or `segsync worker`); "
            "follow them with `segsync runs list`",
            highlight=False,
        )


# ---------------------------------------------------------------- runs ...


@runs_app.command("list")
def list_command(
    ctx: typer.Context,
    export: Annotated[
        str | None, typer.Option("--export", metavar="NAME", help="Only this export's runs.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many runs (newest first).")] = 50,
    wide: WideOption = False,
    json_flag: JsonOption = False,
) -> None:
    """Runs, newest first (--wide adds the duration, the requests and the year)."""
    with service_context(ctx) as services:
        runs = run_service.list_runs(services, export=export, limit=limit)
    if wants_json(ctx, json_flag):
        print_json([run_record(run) | {"export": run.export_name} for run in runs])
        return
    rows = [
        [
            run.id,
            run.export_name,
            run.status.label
            + (" (dry run)" if run.dry_run else "" if run.kind == "sync" else f" ({run.kind})"),
            when_text(run) if wide else when_short(run),
            f"{run.counts.added:,}",
            f"{run.counts.updated:,}",
            f"{run.counts.removed:,}",
            f"{run.counts.rejected:,}",
            seconds_text(run_service.duration(run)),
            f"{run.counts.requests:,}",
        ]
        for run in runs
    ]
    columns = [
        "Run",
        "Export",
        "Status",
        "Started",
        "Added",
        "Updated",
        "Removed",
        "Rejected",
        "Duration",
        "Requests",
    ]
    print_table("Runs", columns, rows, wide=wide)


@runs_app.command("show")
def show_command(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The run id.")],
    json_flag: JsonOption = False,
) -> None:
    """A run's status, counts, progress, message and warnings, its results per list (a dry
    run: its plan)."""
    with service_context(ctx) as services:
        run = run_service.get_run(services, run_id)
        results = list_results(services, run)
    if wants_json(ctx, json_flag):
        print_json(
            run_record(run)
            | {
                "export": run.export_name,
                "dry_run": run.dry_run,
                "items_done": run.items_done,
                "items_total": run.items_total,
                "warnings": run.warnings,
                "lists": None if results is None else [r.to_dict() for r in results],
            }
        )
        return
    print_run(run)
    print_list_results(results)


runs_app.command("changes")(changes_command)


@runs_app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The run id.")],
    json_flag: JsonOption = False,
) -> None:
    """Cancel a run: a queued one at once, a running one after its batch in flight."""
    with service_context(ctx) as services:
        run = run_service.cancel_run(services, run_id)
    if wants_json(ctx, json_flag):
        print_json(run_record(run) | {"cancel_requested": run.cancel_requested})
        return
    if run.status.is_final:
        console.print(f"run {run.id} canceled", highlight=False)
    else:
        console.print(
            f"run {run.id} will stop after the batch in flight; "
            f"`segsync runs show {run.id}` shows when it has",
            highlight=False,
        )


@runs_app.command("rejects")
def rejects_command(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The run id.")],
    csv_path: Annotated[
        Path, typer.Option("--csv", metavar="FILE", help="Write the rejects to this CSV file.")
    ],
    json_flag: JsonOption = False,
) -> None:
    """Write what a run set aside or Autopilot refused to a CSV file (email, profile id, kind,
    reason)."""
    with service_context(ctx) as services:
        count = run_service.write_rejects_csv(services, run_id, csv_path)
    if wants_json(ctx, json_flag):
        print_json({"run": run_id, "rejects": count, "file": str(csv_path)})
        return
    console.print(f"{count:,} reject(s) of run {run_id} written to {csv_path}", highlight=False)
