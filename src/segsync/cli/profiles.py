"""``segsync profiles``: import files, register tables read in place, relate tables, show the
schema, load sample data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import (
    JsonOption,
    console,
    err_console,
    print_json,
    print_table,
    rich_console,
    wants_json,
)

if TYPE_CHECKING:
    from segsync.services import profiles as profile_service
else:
    profile_service = lazy_module("segsync.services.profiles")

profiles_app = typer.Typer(
    name="profiles",
    help="The profile table and related tables: import, register, relate, schema, sample data.",
    no_args_is_help=True,
)


@contextmanager
def _progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=rich_console(err_console),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@profiles_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A .csv, .tsv, .parquet, .jsonl or .ndjson file.")],
    table: Annotated[str, typer.Option("--table", help="The table to load it into.")],
    key: Annotated[
        str | None,
        typer.Option("--key", metavar="COLUMN", help="The column that identifies a row."),
    ] = None,
    profile: Annotated[
        bool,
        typer.Option("--profile", help="This is the unified profile table (key = profile id)."),
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the table if it exists.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Import FILE into a table of the profile engine (atomic: a failure keeps the old table)."""
    as_json = wants_json(ctx, json_output)
    with (
        service_context(ctx) as services,
        _progress_bar(f"Importing {file.name}", not as_json) as progress,
    ):
        report = profile_service.import_profiles(
            services, file, table, key=key, profile=profile, replace=replace, progress=progress
        )
    if as_json:
        print_json(report.to_dict())
        return
    role = " (the profile table)" if report.is_profile else ""
    console.print(
        f"Imported {report.rows:,} rows into {report.table}{role} from {file.name}; "
        f"{len(report.columns)} attributes.",
        highlight=False,
        soft_wrap=True,
    )
    if report.previous_profile_table:
        console.print(
            f"{report.previous_profile_table} is no longer the profile table.",
            highlight=False,
            soft_wrap=True,
        )


@profiles_app.command("register")
def register_command(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="A table that exists in the profile engine.")],
    key: Annotated[
        str | None,
        typer.Option("--key", metavar="COLUMN", help="The column that identifies a row."),
    ] = None,
    profile: Annotated[
        bool,
        typer.Option("--profile", help="This is the unified profile table (key = profile id)."),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="With --profile: take the mark from the profile table."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Use TABLE of the profile engine in place (nothing is copied); checks its key."""
    with service_context(ctx) as services:
        report = profile_service.register_table(
            services, table, key=key, profile=profile, replace=replace
        )
    if wants_json(ctx, json_output):
        print_json(report.to_dict())
        return
    role = " as the profile table" if report.is_profile else ""
    key_text = f", key {report.key}" if report.key else ""
    console.print(
        f"Registered {report.table}{role}, read in place: {report.rows:,} rows, "
        f"{len(report.columns)} attributes{key_text}.",
        highlight=False,
        soft_wrap=True,
    )
    if report.previous_profile_table:
        console.print(
            f"{report.previous_profile_table} is no longer the profile table.",
            highlight=False,
            soft_wrap=True,
        )


@profiles_app.command("relate")
def relate_command(
    ctx: typer.Context,
    child: Annotated[str, typer.Argument(metavar="CHILD.COLUMN", help="e.g. orders.CustomerId")],
    parent: Annotated[
        str, typer.Argument(metavar="PARENT.COLUMN", help="e.g. customers.CustomerId")
    ],
    json_output: JsonOption = False,
) -> None:
    """Declare that CHILD.COLUMN references PARENT.COLUMN (checked: columns exist, same type)."""
    child_table, child_column = profile_service.parse_column_ref(child)
    parent_table, parent_column = profile_service.parse_column_ref(parent)
    with service_context(ctx) as services:
        rel, created = profile_service.relate(
            services, child_table, child_column, parent_table, parent_column
        )
    if wants_json(ctx, json_output):
        print_json({"child": child, "parent": parent, "created": created})
        return
    what = "Related" if created else "Already related:"
    console.print(f"{what} {profile_service.describe(rel)}", highlight=False, soft_wrap=True)


@profiles_app.command("schema")
def schema_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Tables, their attributes with types, row counts, and relationships."""
    with service_context(ctx) as services:
        report = profile_service.schema(services)
    if wants_json(ctx, json_output):
        print_json(report.to_dict())
        return
    if not report.tables:
        console.print(profile_service.NO_PROFILE_TABLE, highlight=False, soft_wrap=True)
        return
    for table in report.tables:
        role = f", profile table keyed by {table.key}" if table.is_profile else ""
        key = f", key {table.key}" if table.key and not table.is_profile else ""
        rows = "missing" if table.row_count is None else f"{table.row_count:,} rows"
        console.print(
            f"[bold]{table.name}[/bold] ({rows}{role}{key})", highlight=False, soft_wrap=True
        )
        print_table(None, ["attribute", "type"], [[c, k.value] for c, k in table.columns.items()])
    if report.relationships:
        print_table(
            "relationships",
            ["child", "parent"],
            [
                [f"{r.child_table}.{r.child_column}", f"{r.parent_table}.{r.parent_column}"]
                for r in report.relationships
            ],
        )


@profiles_app.command("sample")
def sample_command(
    ctx: typer.Context,
    profiles: Annotated[
        int, typer.Option("--profiles", min=1, help="How many customers.")
    ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 42,
    json_output: JsonOption = False,
) -> None:
    """Generate and load sample customers (the profile table) and their orders."""
    as_json = wants_json(ctx, json_output)
    with service_context(ctx) as services:
        if as_json:
            report = profile_service.load_sample(services, profiles=profiles, seed=seed)
        else:
            with err_console.status(f"Generating {profiles:,} sample profiles..."):
                report = profile_service.load_sample(services, profiles=profiles, seed=seed)
    if as_json:
        print_json({"customers": report.customers, "orders": report.orders, "seed": report.seed})
        return
    console.print(
        f"Loaded {report.customers:,} customers (the profile table, key CustomerId) and "
        f"{report.orders:,} orders, related by orders.CustomerId → customers.CustomerId "
        f"(seed {report.seed}).",
        highlight=False,
        soft_wrap=True,
    )
