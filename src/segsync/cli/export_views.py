"""How ``segsync exports`` prints an export, its segments and what a change did."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from segsync.cli.lazy import lazy_module
from segsync.cli.output import console, err_console, print_table

if TYPE_CHECKING:
    from segsync.services import exports as export_service
else:
    export_service = lazy_module("segsync.services.exports")


def say(text: str, *, err: bool = False) -> None:
    """Print ``text`` as is: no markup, no emoji codes (``custom:date:X`` stays as typed)."""
    from rich.text import Text

    (err_console if err else console).print(Text(text))


def connection_label(connection: str, connection_type: str | None) -> str:
    return f"{connection} ({connection_type})" if connection_type else connection


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def print_details(details: export_service.ExportDetails) -> None:
    from rich.text import Text

    console.print(Text(details.name, style="bold"))
    facts = [
        ("Connection", connection_label(details.connection, details.connection_type)),
        ("Removal policy", details.removal_policy),
        ("List prefix", details.list_prefix or "(none)"),
        ("Schedule", details.schedule_description),
        ("Verify", details.verify_schedule_description),
        ("Hold", details.hold_description),
        ("Latest status", (details.status or "no run yet").capitalize()),
        ("Refreshed", _when(details.refreshed_at)),
        ("Your permissions", details.your_permissions),
        ("Created", f"{_when(details.created_at)} by {details.created_by}"),
    ]
    if details.contract_limit is not None:
        facts.insert(1, ("Contract limit", f"{details.contract_limit:,} profiles"))
    for label, value in facts:
        say(f"  {label + ':':<18}{value}")
    destination = details.destination or "Destination"
    print_table(
        "Data matching",
        [f"{destination} field", "Profile attribute"],
        [[line.field, line.attribute] for line in details.mapping],
    )
    print_segments(details)


def print_segments(details: export_service.ExportDetails) -> None:
    from rich.text import Text

    rows: list[list[str]] = [
        [
            line.name,
            "?" if line.members is None else f"{line.members:,}",
            line.list_title,
            line.list_id or "(created on first run)",
        ]
        for line in details.segments
    ]
    total = "?" if details.distinct_total is None else f"{details.distinct_total:,}"
    rows.append(["Distinct total", total, "", ""])
    destination = details.destination or "Destination"
    columns = ["Segment", "Members", f"{destination} list", "List id"]
    print_table("Segments", columns, rows)
    for warning in details.warnings:
        err_console.print(Text.assemble(("warning: ", "bold yellow"), warning))


def change_json(change: export_service.ExportChange) -> dict[str, object]:
    return {
        "name": change.export.name,
        "connection": change.export.connection_name,
        "sync_state_reset": change.sync_state_reset,
        "canceled_runs": change.canceled_runs,
        "stop_requested": change.stop_requested,
    }


def print_canceled(change: export_service.ExportChange) -> None:
    if change.canceled_runs:
        ids = ", ".join(str(run_id) for run_id in change.canceled_runs)
        say(f"Canceled queued runs: {ids}.")
    if change.stop_requested:
        ids = ", ".join(str(run_id) for run_id in change.stop_requested)
        say(f"Runs {ids} stop after their current batch.")
