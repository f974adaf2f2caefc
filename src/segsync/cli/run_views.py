"""How the CLI shows runs: the live progress bar, a run in full (``runs show``, and what
``exports run`` prints at its end), and a run as JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from segsync.cli.hold_views import print_hold
from segsync.cli.lazy import lazy_module
from segsync.cli.output import console, err_console, print_table, rich_console
from segsync.cli.verify import print_lists

if TYPE_CHECKING:
    from rich.progress import TaskID

    from segsync.services import runs as run_service
else:
    run_service = lazy_module("segsync.services.runs")

_PHASES = {
    "reading": "Reading members",
    "planning": "Planning",
    "lists": "Setting up lists",
    "queued": "Waiting in the queue",
    "sending": "Sending contacts",
    "removing": "Removing memberships",
    "done": "Done",
}


class RunProgressBar:
    """A Rich progress bar fed by :class:`RunProgress` events (items done / total, ETA)."""

    def __init__(self) -> None:
        # Imported here: `runs list` and every help screen load this module, not the bar.
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=rich_console(err_console),
            transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RunProgressBar:
        self.progress.start()
        self.task = self.progress.add_task("Starting", total=None)
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def __call__(self, event: run_service.RunProgress) -> None:
        assert self.task is not None
        total = event.items_total or None
        self.progress.update(
            self.task,
            description=f"Run {event.run_id}: {_PHASES.get(event.phase, event.phase)}",
            completed=event.items_done,
            total=total,
        )


def when_text(run: run_service.RunRecord) -> str:
    moment = run.started_at or run.queued_at
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def when_short(run: run_service.RunRecord) -> str:
    moment = run.started_at or run.queued_at
    return moment.strftime("%m-%d %H:%M")


def seconds_text(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def print_run(run: run_service.RunRecord) -> None:
    kind = " (dry run)" if run.dry_run else "" if run.kind == "sync" else f" ({run.kind})"
    console.print(f"[bold]Run {run.id}[/] of export {run.export_name!r}{kind}", highlight=False)
    facts = [
        ("Status", run.status.label),
        ("Started", when_text(run)),
        ("Ended", run.ended_at.strftime("%Y-%m-%d %H:%M:%S UTC") if run.ended_at else ""),
        ("Duration", seconds_text(run_service.duration(run))),
        ("Progress", f"{run.items_done:,} / {run.items_total:,} items"),
        ("Trigger", f"{run.trigger} by {run.actor}"),
        ("Attempts", str(run.attempts)),
    ]
    for label, value in facts:
        console.print(f"  {label + ':':<12}{value}", highlight=False, markup=False)
    counts = run.counts.to_dict()
    half = (len(counts) + 1) // 2
    pairs = [(name.capitalize(), f"{value:,}") for name, value in counts.items()]
    left, right = pairs[:half], pairs[half:] + [("", "")] * (2 * half - len(pairs))
    print_table(
        None,
        ["Count", "", "Count", ""],
        [[a, b, c, d] for (a, b), (c, d) in zip(left, right, strict=True)],
    )
    if run.message:
        console.print(run.message, highlight=False, markup=False)
    for warning in run.warnings:
        err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    if run.dry_run and run.plan:
        _print_plan(run.plan)
    titles = {item["segment_id"]: item["title"] for item in (run.plan or {}).get("lists", [])}
    print_hold(run.hold, titles)
    if run.kind != "sync" and run.plan:
        print_lists(run.plan.get("lists", []))


def _print_plan(plan: dict[str, Any]) -> None:
    rows = [
        [
            item["title"],
            "new" if item["new_list"] else item["list_id"],
            f"{item['members']:,}",
            f"{item['to_add']:,}",
            f"{item['to_remove']:,}",
        ]
        for item in plan.get("lists", [])
    ]
    print_table("Plan per list", ["List", "List id", "Members", "To add", "To remove"], rows)
    console.print(
        f"contacts: {plan['added']:,} to add, {plan['updated']:,} to update, "
        f"{plan['unchanged']:,} unchanged; requests at least {plan['requests_lower_bound']:,} "
        f"({plan['batches']:,} upsert batch(es), {plan['lists_to_create']} list(s) to create, "
        f"{plan['removals']:,} removal(s))",
        highlight=False,
        markup=False,
    )
    for item in plan.get("lists", []):
        if item.get("samples"):
            console.print(f"Sample payloads for list {item['title']!r}:", highlight=False)
            console.print_json(json.dumps(item["samples"], default=str))
    if plan.get("updates_only"):
        console.print("Sample payloads of updates without a new list:", highlight=False)
        console.print_json(json.dumps(plan["updates_only"], default=str))


def run_record(run: run_service.RunRecord) -> dict[str, Any]:
    data = run_service.run_json(run)
    if run.kind != "sync":
        data["kind"] = run.kind
    if (run.dry_run or run.kind != "sync") and run.plan is not None:
        data["plan"] = run.plan
    if run.hold is not None:
        data["hold"] = run.hold
    if run.undo_of is not None:
        data["undo_of"] = run.undo_of
    return data
