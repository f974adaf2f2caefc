"""``segsync status``: every data source, segment and export with its latest status, last
update and next due time (T3)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, WideOption, console, print_json, print_table, wants_json

if TYPE_CHECKING:
    from segsync.services.system import status as status_service
else:
    status_service = lazy_module("segsync.services.system.status")

_KINDS = {"data_source": "Data source", "segment": "Segment", "export": "Export"}


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _detail(task: status_service.TaskStatus) -> str:
    details = task.details
    if task.kind == "data_source":
        return f"{details['rows']:,} rows" + (f" from {details['file']}" if details["file"] else "")
    if task.kind == "segment":
        members = details["members"]
        text = "" if members is None else f"{members:,} members"
        return text + (
            f"; {details['error']}" if task.status == "failed" and details["error"] else ""
        )
    text = f"{details['connection'] or 'No connection'}; {details['schedule']}"
    if task.status in {"failure", "skipped"} and details["message"]:
        text += f"; {details['message']}"
    return text


def status_command(
    ctx: typer.Context, wide: WideOption = False, json_flag: JsonOption = False
) -> None:
    """Every task with its latest status, last update and next due time."""
    with service_context(ctx) as services:
        report = status_service.status(services)
    if wants_json(ctx, json_flag):
        print_json(report.to_dict())
        return
    system = report.system
    console.print(f"System schedule: {system.description}", highlight=False, markup=False)
    if system.next_due is not None:
        console.print(f"Next system refresh: {_when(system.next_due)}", highlight=False)
    if system.last_refresh_due is not None:
        console.print(
            f"Latest system refresh: due {system.last_refresh_due} ({system.last_refresh_state})",
            highlight=False,
        )
    rows = [
        [
            _KINDS[task.kind],
            task.name,
            task.status,
            _when(task.last_update),
            _when(task.next_due),
            _detail(task),
        ]
        for task in report.tasks
    ]
    if not rows:
        console.print("No data sources, segments or exports yet.")
        return
    columns = ["Task", "Name", "Status", "Last update", "Next due", "Details"]
    print_table("Status", columns, rows, wide=wide)
    console.print(
        "History and details: `segsync runs list --export NAME`, `segsync runs show ID`, "
        "`segsync segments show NAME`",
        highlight=False,
    )
