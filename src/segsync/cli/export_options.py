"""The options ``segsync exports create`` and ``exports edit`` share."""

from __future__ import annotations

from typing import Annotated

import typer

EmailOption = Annotated[
    str | None,
    typer.Option("--email", metavar="ATTR", help="The profile attribute holding the email."),
]
FirstNameOption = Annotated[
    str | None,
    typer.Option("--first-name", metavar="ATTR", help="The attribute for the first name."),
]
LastNameOption = Annotated[
    str | None,
    typer.Option("--last-name", metavar="ATTR", help="The attribute for the last name."),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="FIELD=ATTR",
        help="Map a standard field (Company=CompanyName) or a custom one "
        "(custom:integer:Rating=Score). Repeatable.",
    ),
]
SegmentOption = Annotated[
    list[str] | None,
    typer.Option("--segment", metavar="NAME", help="A segment to export. Repeatable."),
]
RemovalOption = Annotated[
    str | None,
    typer.Option("--removal", metavar="mirror|add-only", help="When a person leaves a segment."),
]
PrefixOption = Annotated[
    str | None,
    typer.Option("--list-prefix", metavar="P", help="Put P before each list title."),
]
HoldRemovalsOption = Annotated[
    str | None,
    typer.Option(
        "--hold-removals",
        metavar="N%|off",
        help="Hold a run that would remove more than N% of a list (default 20%).",
    ),
]
HoldGrowthOption = Annotated[
    str | None,
    typer.Option(
        "--hold-growth",
        metavar="Nx|off",
        help="Hold a run that would grow a list more than N times, by 1,000+ (default 3x).",
    ),
]
ScheduleOption = Annotated[
    str | None,
    typer.Option(
        "--schedule",
        metavar="KIND",
        help="with-system (default), off, daily, weekly or every.",
    ),
]
AtOption = Annotated[
    str | None, typer.Option("--at", metavar="HH:MM", help="Local time of the schedule.")
]
DaysOption = Annotated[
    str | None, typer.Option("--days", metavar="DAYS", help="Weekdays for weekly, e.g. mon,thu.")
]
HoursOption = Annotated[
    int | None, typer.Option("--hours", metavar="N", help="Hours between runs for every.")
]
TzOption = Annotated[
    str | None, typer.Option("--tz", metavar="ZONE", help="IANA time zone (default UTC).")
]
