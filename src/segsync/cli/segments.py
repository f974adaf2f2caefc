"""``segsync segments``: create, update, list, show, delete, refresh, count, preview, download
members, and suggest quick segments."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import (
    EXIT_FAILED,
    JsonOption,
    WideOption,
    console,
    err_console,
    print_json,
    print_table,
    rich_console,
    wants_json,
)
from segsync.errors import InputError

if TYPE_CHECKING:
    from segsync.services import segments as segment_service
    from segsync.services.segments import members as segment_members
else:
    segment_service = lazy_module("segsync.services.segments")
    segment_members = lazy_module("segsync.services.segments.members")

segments_app = typer.Typer(
    name="segments",
    help="Segments of the profile table: define, refresh, inspect and download members.",
    no_args_is_help=True,
)

FileOption = Annotated[
    str,
    typer.Option(
        "--file", "-f", metavar="DEF.yaml", help="The definition (YAML or JSON); '-' reads stdin."
    ),
]


def _read_definition(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"--file: {source} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--file: cannot read {source}: {err}") from None


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True, markup=False)


@segments_app.command("create")
def create_command(ctx: typer.Context, file: FileOption, json_output: JsonOption = False) -> None:
    """Save a new segment from a definition file, as an inactive draft (no members yet)."""
    text = _read_definition(file)
    with service_context(ctx) as services:
        record = segment_service.create_segment(services, text)
    if wants_json(ctx, json_output):
        print_json(segment_service.segment_to_dict(record))
        return
    _say(
        f"Created segment {record.name!r} as a draft. "
        f"Run `segsync segments refresh {_quoted(record.name)}` to compute its members."
    )


def _quoted(name: str) -> str:
    return f'"{name}"' if any(c.isspace() for c in name) else name


@segments_app.command("update")
def update_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The segment to change.")],
    file: FileOption,
    json_output: JsonOption = False,
) -> None:
    """Replace a segment's definition (a different name in it renames the segment)."""
    text = _read_definition(file)
    with service_context(ctx) as services:
        report = segment_service.update_segment(services, name, text)
    if wants_json(ctx, json_output):
        print_json(
            {
                **segment_service.segment_to_dict(report.segment),
                "renamed_from": report.renamed_from,
                "rules_changed": report.rules_changed,
                "members_stale": report.members_stale,
            }
        )
        return
    renamed = f" (renamed from {report.renamed_from!r})" if report.renamed_from else ""
    _say(f"Updated segment {report.segment.name!r}{renamed}.")
    if report.members_stale:
        _say(
            f"Its member count ({_count(report.segment.member_count)}) is out of date until "
            f"`segsync segments refresh {_quoted(report.segment.name)}`."
        )


@segments_app.command("list")
def list_command(
    ctx: typer.Context, wide: WideOption = False, json_output: JsonOption = False
) -> None:
    """Every segment with its status, member count and last refresh."""
    with service_context(ctx) as services:
        records = segment_service.list_segments(services)
    if wants_json(ctx, json_output):
        print_json([segment_service.segment_to_dict(r) for r in records])
        return
    if not records:
        _say("No segments yet: `segsync segments create --file DEF.yaml` saves one.")
        return
    print_table(
        None,
        ["name", "status", "members", "last refresh", "description"],
        [
            [
                r.name,
                r.status.value,
                _count(r.member_count),
                _when(r.last_refreshed_at),
                r.description,
            ]
            for r in records
        ],
        wide=wide,
    )


@segments_app.command("show")
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The segment.")],
    json_output: JsonOption = False,
) -> None:
    """A segment's definition, status, member count history and the exports using it."""
    with service_context(ctx) as services:
        details = segment_service.show_segment(services, name)
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    seg = details.segment
    _say(f"{seg.name} — {seg.status.value}, {_count(seg.member_count)} members")
    if seg.description:
        _say(seg.description)
    _say(f"Last refresh: {_when(seg.last_refreshed_at)}")
    last = details.last_refresh
    if last is not None and last.entered is not None:
        _say(f"At the last refresh {last.entered:,} entered and {last.left:,} left.")
    if details.last_error:
        _say(f"The latest refresh failed: {details.last_error}")
    exports = ", ".join(details.exports) if details.exports else "none"
    _say(f"Used by exports: {exports}")
    _say("")
    _say(details.definition_text("yaml").rstrip())
    if details.history:
        print_table(
            "refresh history (newest first)",
            ["started", "status", "members", "entered", "left", "error"],
            [
                [
                    _when(h.started_at),
                    h.status.value,
                    _count(h.member_count),
                    _count(h.entered),
                    _count(h.left),
                    h.error,
                ]
                for h in details.history
            ],
        )


@segments_app.command("delete")
def delete_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The segment.")],
    json_output: JsonOption = False,
) -> None:
    """Delete a segment, its history and its snapshot (refused while exports use it)."""
    with service_context(ctx) as services:
        segment_service.delete_segment(services, name)
    if wants_json(ctx, json_output):
        print_json({"deleted": name})
        return
    _say(f"Deleted segment {name!r}.")


@contextmanager
def _refresh_progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=rich_console(err_console),
        transient=True,
    ) as bar:
        task = bar.add_task("Refreshing", total=None)

        def update(name: str, done: int, total: int) -> None:
            label = f"Refreshing {name}" if name else "Refreshed"
            bar.update(task, description=label, completed=done, total=total)

        yield update


@segments_app.command("refresh")
def refresh_command(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(metavar="[NAME]...", help="Segments to refresh.")
    ] = None,
    all_segments: Annotated[
        bool, typer.Option("--all", help="Refresh every segment, drafts included.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Evaluate segments now: activate them, store member counts and who entered or left.

    Exits 1 when any segment failed (the others are still refreshed)."""
    if names and all_segments:
        raise InputError("name segments or use --all, not both")
    as_json = wants_json(ctx, json_output)
    with service_context(ctx) as services, _refresh_progress(not as_json) as progress:
        outcomes = segment_service.refresh_segments(
            services, names, all_segments=all_segments, progress=progress
        )
    if as_json:
        print_json([o.to_dict() for o in outcomes])
    elif not outcomes:
        _say("No segments to refresh.")
    else:
        print_table(
            None,
            ["segment", "status", "members", "entered", "left", "error"],
            [
                [
                    o.name,
                    o.status.value,
                    _count(o.member_count),
                    _count(o.entered),
                    _count(o.left),
                    o.error,
                ]
                for o in outcomes
            ],
        )
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        if not as_json:
            err_console.print(
                f"[bold red]error:[/] {len(failed)} of {len(outcomes)} segments failed to "
                f"refresh: {', '.join(failed)}",
                highlight=False,
            )
        raise typer.Exit(EXIT_FAILED)


@segments_app.command("count")
def count_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The segment.")],
    json_output: JsonOption = False,
) -> None:
    """Count a segment's members now (nothing is stored)."""
    with service_context(ctx) as services:
        members = segment_members.count_segment(services, name)
    if wants_json(ctx, json_output):
        print_json({"name": name, "count": members})
        return
    _say(f"{members:,}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


@segments_app.command("preview")
def preview_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The segment.")],
    limit: Annotated[int, typer.Option("--limit", min=0, help="How many members.")] = 100,
    wide: WideOption = False,
    json_output: JsonOption = False,
) -> None:
    """The first members by profile id, with the profile attributes that fit the terminal
    (--wide: every one)."""
    with service_context(ctx) as services:
        result = segment_members.preview_segment(services, name, limit)
    if wants_json(ctx, json_output):
        print_json(result.to_dict())
        return
    print_table(
        f"first {len(result.rows):,} members of {name} by {result.key}",
        list(result.columns),
        [[_cell(row[c]) for c in result.columns] for row in result.rows],
        wide=wide,
    )


@segments_app.command("members")
def members_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The segment.")],
    csv: Annotated[Path, typer.Option("--csv", metavar="FILE", help="Write the CSV here.")],
    json_output: JsonOption = False,
) -> None:
    """Download every member with all profile attributes as CSV."""
    as_json = wants_json(ctx, json_output)
    with service_context(ctx) as services:
        if as_json:
            rows = segment_members.export_members_csv(services, name, csv)
        else:
            with err_console.status(f"Writing the members of {name} to {csv}..."):
                rows = segment_members.export_members_csv(services, name, csv)
    if as_json:
        print_json({"name": name, "rows": rows, "file": str(csv)})
        return
    _say(f"Wrote {rows:,} members of {name!r} to {csv}.")


@segments_app.command("suggest")
def suggest_command(
    ctx: typer.Context,
    attribute: Annotated[
        str, typer.Argument(help="A profile attribute, or TABLE.ATTRIBUTE of a related table.")
    ],
    json_output: JsonOption = False,
) -> None:
    """Quick segment: top 10 values with counts, or percentiles, with estimated sizes."""
    with service_context(ctx) as services:
        quick = segment_members.suggest(services, attribute)
    if wants_json(ctx, json_output):
        print_json(quick.to_dict())
        return
    s = quick.suggestion
    what = "profiles" if quick.table == quick.profile_table else f"{quick.table} rows"
    _say(
        f"{quick.table}.{s.attribute} ({s.type.value}): {s.total:,} rows, "
        f"{s.distinct_count:,} distinct values, {s.empty_count:,} empty."
    )
    if s.top_values:
        _say(f"Top values; the count is how many {what} `{attribute} equals VALUE` matches.")
        print_table(
            None,
            ["value", "count", "share"],
            [
                [_cell(v.value), f"{v.count:,}", f"{v.count / s.total:.1%}" if s.total else ""]
                for v in s.top_values
            ],
        )
    if s.percentiles:
        _say(f"Percentiles; the estimate is how many {what} `greater_or_equal` each matches.")
        print_table(
            None,
            ["percentile", "value", "estimated size"],
            [[p, _cell(v), _count(quick.at_or_above.get(p))] for p, v in s.percentiles.items()],
        )
