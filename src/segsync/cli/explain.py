"""``segsync explain EMAIL [--export NAME]``: why a person is, or is not, on a list
(docs/explain.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, console, print_json, print_table, wants_json

if TYPE_CHECKING:
    from segsync.services import people as people_service
    from segsync.services.people.report import PersonReport
else:
    people_service = lazy_module("segsync.services.people")


def explain_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The person's email address.")],
    export: Annotated[
        str | None,
        typer.Option("--export", metavar="NAME", help="Only this export (default: all)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Explain a person: the profiles carrying EMAIL and how it was cleaned, each segment they
    are in (or the first condition that kept them out), the lists the sync state has them on,
    every run that touched them, and whether they were forgotten."""
    with service_context(ctx) as services:
        report = people_service.explain_person(services, email, export=export)
    if wants_json(ctx, json_output):
        print_json(report.to_dict())
        return
    print_report(report)


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False)


def print_report(report: PersonReport) -> None:
    shown = report.email or report.query
    console.print(shown, style="bold", highlight=False, markup=False)
    if report.email_problem:
        _say(f"  not a usable email: {report.email_problem}")
    _say(f"  {report.summary}")
    if report.erasures:
        print_table(
            "Erasures",
            ["Connection", "Status", "Requested", "Done"],
            [
                [e.connection or "—", e.status, e.requested_at.strftime("%Y-%m-%d"), e.done_at]
                for e in report.erasures
            ],
        )
    if report.forgotten:
        return
    if report.profiles_note:
        _say(f"profiles: {report.profiles_note}")
    for profile in report.profiles:
        _say("")
        _say(f"Profile {profile.profile_id} ({profile.attribute}: {profile.raw!r})")
        _say(f"  email: {profile.cleaning}")
        for status in profile.exports:
            _say(f"  export {status.export!r}: {status.status} — {status.detail}")
        rows = [
            [check.segment, "yes" if check.member else "no", check.reason or ""]
            for check in profile.segments
        ]
        if rows:
            print_table(None, ["Segment", "Member", "Why not"], rows)
    for state in report.exports:
        _say("")
        synced = (
            "" if state.synced_at is None else f", last synced {state.synced_at:%Y-%m-%d %H:%M}"
        )
        _say(f"Export {state.export!r}: contact {state.contact}{synced}")
        print_table(
            None,
            ["List", "Segment", "On it"],
            [
                [line.list_title or "(not made yet)", line.segment, line.state]
                for line in state.lists
            ],
        )
    if report.runs:
        print_table(
            "Runs that touched this person",
            ["Run", "Export", "When", "What", "List", "Profile", "Fields / why"],
            [
                [
                    touch.run_id,
                    touch.export,
                    touch.at.strftime("%Y-%m-%d %H:%M"),
                    touch.action,
                    touch.list_title or "",
                    touch.profile_id or "",
                    ", ".join(touch.fields) or touch.detail or "",
                ]
                for touch in report.runs
            ],
        )
