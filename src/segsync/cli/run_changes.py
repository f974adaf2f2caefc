"""``segsync runs changes ID [--action A] [--list NAME] [--limit N] [--csv FILE]``: a run's
change log, and the results per list that ``segsync runs show`` prints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, console, print_json, print_table, wants_json
from segsync.errors import InputError

if TYPE_CHECKING:
    from segsync.services.runs import changes as changes_service
    from segsync.services.runs import history
else:
    changes_service = lazy_module("segsync.services.runs.changes")
    history = lazy_module("segsync.services.runs.history")

SHOWN = 100


def list_results(services: Any, run: Any) -> list[Any] | None:
    """The run's results per list (``None`` when its change log is not kept)."""
    results: list[Any] | None = changes_service.list_results(services, run)
    return results


def print_list_results(results: list[Any] | None) -> None:
    """The results per list (:class:`ListResult`), or why there are none."""
    if not results:
        return
    print_table(
        "Results per list",
        ["List", "Added", "Updated", "Removed", "Rejected"],
        [
            [r.title, f"{r.added:,}", f"{r.updated:,}", f"{r.removed:,}", f"{r.rejected:,}"]
            for r in results
        ],
    )


def _segment_id(results: list[Any] | None, name: str | None) -> int | None:
    if name is None:
        return None
    for result in results or []:
        if result.segment_id is not None and name in (result.title, str(result.segment_id)):
            return int(result.segment_id)
    titles = [r.title for r in results or [] if r.segment_id is not None]
    known = f"; lists of this run: {', '.join(titles)}" if titles else ""
    raise InputError(f"--list: no list {name!r} in this run's change log{known}")


def changes_command(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="ID", help="The run id.")],
    action: Annotated[
        str | None,
        typer.Option("--action", metavar="ACTION", help="Only added, updated, removed or refused."),
    ] = None,
    list_name: Annotated[
        str | None, typer.Option("--list", metavar="NAME", help="Only this list (its title).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, metavar="N", help="How many to print.")
    ] = SHOWN,
    csv_path: Annotated[
        Path | None,
        typer.Option("--csv", metavar="FILE", help="Write every change to this CSV file."),
    ] = None,
    json_flag: JsonOption = False,
) -> None:
    """A run's change log: who it added to a list, updated (which fields, from what to what),
    removed from a list, or saw refused, with their profile ids."""
    with service_context(ctx) as services:
        run = history.get_run(services, run_id)
        results = changes_service.list_results(services, run)
        segment_id = _segment_id(results, list_name)
        if csv_path is not None:
            count = changes_service.write_changes_csv(
                services, run_id, csv_path, action=action, segment_id=segment_id
            )
            if wants_json(ctx, json_flag):
                print_json({"run": run_id, "changes": count, "file": str(csv_path)})
            else:
                console.print(f"{count:,} change(s) of run {run_id} written to {csv_path}")
            return
        page = changes_service.change_page(
            services, run_id, action=action, segment_id=segment_id, size=limit
        )
    if wants_json(ctx, json_flag):
        print_json(page.to_dict())
        return
    if not page.items:
        kept = "" if page.kept else " (this run's change log is no longer kept)"
        console.print(f"no change{kept}", highlight=False)
        return
    rows = []
    for view in page.items:
        item = view.to_dict()
        rows.append(
            [
                item["action"],
                item["list"] or "",
                item["email"],
                item["profile_id"] or "",
                item["summary"],
            ]
        )
    print_table(f"Changes of run {run_id}", ["Action", "List", "Email", "Profile", "Fields"], rows)
    if page.next_after is not None:
        console.print("more: --limit N shows more, --csv FILE writes all of them", highlight=False)
