"""``segsync exports verify`` and ``segsync exports verify-schedule``: read an export's lists
back from the destination, report the drift, repair it; verify on a schedule.

Exit codes of ``exports verify``: 0 no drift (or a repair fixed it all), 1 drift found and not
repaired (or the verify failed), 2 bad input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from segsync.cli.context import service_context
from segsync.cli.export_views import say
from segsync.cli.exports import exports_app
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, console, err_console, print_json, wants_json

if TYPE_CHECKING:
    from segsync.services.exports import verify as verify_service
    from segsync.services.exports import verify_schedule as schedule_service
else:
    verify_service = lazy_module("segsync.services.exports.verify")
    schedule_service = lazy_module("segsync.services.exports.verify_schedule")

SAMPLES_SHOWN = 10


def print_estimate(queued: verify_service.QueuedVerify) -> None:
    """The request cost, before the reads start (on stderr, so --json stays clean)."""
    cost = queued.estimate
    err_console.print(
        f"verify run {queued.run.id}: about {cost.requests:,} request(s) to read the lists "
        f"back (1 look at the lists + {cost.pages:,} page(s) over {cost.lists:,} list(s))",
        highlight=False,
        markup=False,
    )


def _emails(label: str, emails: list[str], total: int) -> None:
    if not total:
        return
    shown = ", ".join(emails[:SAMPLES_SHOWN])
    more = f" and {total - SAMPLES_SHOWN:,} more" if total > SAMPLES_SHOWN else ""
    console.print(f"    {label}: {shown}{more}", highlight=False, markup=False)


_STATES = {
    "ok": "",
    "renamed": " — renamed by hand to {found!r}",
    "deleted": " — deleted by hand",
    "never_created": " — no list yet (the export has not run)",
}


def print_lists(lists: list[dict[str, Any]]) -> None:
    """Each list's drift, with up to ten emails of each kind."""
    for item in lists:
        state = _STATES.get(item["state"], "").format(found=item.get("found_title"))
        console.print(
            f"List {item['title']!r} (segment {item['segment']!r}){state}: "
            f"{item['members_read']:,} read, {item['orphans']:,} orphan(s), "
            f"{item['missing']:,} missing, {item['unsubscribed']:,} unsubscribed",
            highlight=False,
            markup=False,
        )
        _emails("orphans", item["orphan_emails"], item["orphans"])
        _emails("missing", item["missing_emails"], item["missing"])
        _emails("unsubscribed (left alone)", item["unsubscribed_emails"], item["unsubscribed"])
        _emails("kept (add-only)", item["kept_emails"], item["kept"])


def print_report(report: dict[str, Any]) -> None:
    print_lists(report["lists"])
    for warning in report["warnings"]:
        err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    say(report["message"] or report["status"])
    say(f"{report['requests']:,} request(s); `segsync runs show {report['run']}` shows the run")


@exports_app.command("verify")
def verify_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export to verify.")],
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="Fix the drift: add missing members, remove orphans, remake lists."
        ),
    ] = False,
    json_flag: JsonOption = False,
) -> None:
    """Read the export's lists back and report drift (orphans, missing members, lists deleted or
    renamed by hand, unsubscribed members); --repair fixes it. Exit 1 when drift remains."""
    as_json = wants_json(ctx, json_flag)
    with service_context(ctx) as services:
        run = verify_service.verify_export(
            services, name, repair=repair, on_estimate=print_estimate
        )
    report = verify_service.verify_report(run)
    if as_json:
        print_json(report)
    else:
        print_report(report)
    raise typer.Exit(report["exit_code"])


@exports_app.command("verify-schedule")
def verify_schedule_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The export.")],
    kind: Annotated[
        str | None,
        typer.Argument(
            metavar="[off|daily|weekly|every]", help="Set it; without it, show the schedule."
        ),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", metavar="HH:MM", help="Local time.")] = None,
    days: Annotated[
        str | None, typer.Option("--days", metavar="DAYS", help="Weekly: mon,thu …")
    ] = None,
    hours: Annotated[
        int | None, typer.Option("--hours", metavar="N", help="Every N hours (1–24).")
    ] = None,
    tz: Annotated[str | None, typer.Option("--tz", metavar="ZONE", help="IANA zone.")] = None,
    json_flag: JsonOption = False,
) -> None:
    """Show or set when the export is verified on its own (off by default)."""
    with service_context(ctx) as services:
        if kind is None:
            view = schedule_service.show_verify_schedule(services, name)
        else:
            chosen = schedule_service.verify_schedule_from_options(
                kind, at=at, days=days, hours=hours, tz=tz
            )
            view = schedule_service.set_verify_schedule(services, name, chosen)
    if wants_json(ctx, json_flag):
        print_json(view.to_dict())
        return
    due = "" if view.next_due is None else f"; next {view.next_due:%Y-%m-%d %H:%M} UTC"
    say(f"Verify schedule of {view.export!r}: {view.description}{due}")
