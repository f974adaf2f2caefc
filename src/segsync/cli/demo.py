"""``segsync demo``: the whole job on embedded defaults (I5), against the local simulator."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from segsync.cli.output import console, print_table, state
from segsync.cli.run_views import RunProgressBar, print_run

DEMO_KEY = "demo-simulator-key"
MARKER = ".segsync-demo"


def _fresh_dir(path: Path) -> None:
    """Start from an empty demo dir; only ever delete a dir an earlier demo made."""
    if path.exists():
        if not (path / MARKER).exists():
            raise typer.BadParameter(
                f"{path} exists and was not made by `segsync demo`; pass another --dir",
                param_hint="--dir",
            )
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by segsync demo; deleted by the next demo run\n")


def demo_command(
    ctx: typer.Context,
    profiles: Annotated[
        int, typer.Option("--profiles", min=100, help="How many sample profiles to generate.")
    ] = 50_000,
    rate_limit: Annotated[
        float,
        typer.Option(
            "--rate-limit",
            min=1,
            help="Requests/s of the simulator and the connection (Autopilot's real limit is 5).",
        ),
    ] = 50.0,
    directory: Annotated[
        Path, typer.Option("--dir", help="The demo's data dir, made fresh each time.")
    ] = Path("demo-data"),
    destination: Annotated[
        str,
        typer.Option(
            "--destination", metavar="TYPE", help="The simulated destination: autopilot or ortto."
        ),
    ] = "autopilot",
) -> None:
    """Show the whole job: sample profiles → segments → an export to a local Autopilot (or
    Ortto) simulator, run twice (the second run sends nothing), then a summary."""
    from segsync.services import runs as run_service
    from segsync.services.context import open_context
    from segsync.services.system.demo import set_up_demo
    from segsync.settings import Settings
    from segsync.simulator import SimulatorConfig, create_simulator, serve_in_thread

    directory = directory.resolve()
    _fresh_dir(directory)
    settings = Settings(
        **{**state(ctx).settings.model_dump(), "data_dir": directory, "database_url": None}
    )
    try:
        config = SimulatorConfig(
            api_keys=[DEMO_KEY], rate_limit=rate_limit, api=destination.strip().lower()
        )
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--destination") from None
    simulator = create_simulator(config)
    with serve_in_thread(simulator) as server, open_context(settings) as services:
        console.print(f"[bold]1.[/] {simulator.api_name} simulator listening at {server.base_url}")
        console.print(f"[bold]2.[/] Generating {profiles:,} sample profiles with their orders …")
        setup = set_up_demo(
            services,
            base_url=server.base_url,
            api_key=DEMO_KEY,
            profiles_count=profiles,
            rate_limit=rate_limit,
            destination=config.api,
        )
        console.print(
            f"   {setup.customers:,} customers and {setup.orders:,} orders in {directory}"
        )
        console.print("[bold]3.[/] Segments, refreshed:")
        for name, members in setup.segments:
            console.print(f"   • {name}: {members:,} members", highlight=False)
        console.print(
            f"[bold]4.[/] Connection {setup.connection!r} checked and saved; "
            f"export {setup.export!r} saved (saving never runs it)",
            highlight=False,
        )
        for step, title in ((5, "First run: everyone is sent"), (6, "Second run: nothing changed")):
            console.print(f"[bold]{step}.[/] {title}")
            started = time.perf_counter()
            with RunProgressBar() as bar:
                run = run_service.run_export(services, setup.export, progress=bar)
            print_run(run)
            console.print(f"   ({time.perf_counter() - started:.1f} s)\n")
        contacts = len(simulator.contacts_snapshot())
        stats = simulator.stats.snapshot()
        console.print("[bold]7.[/] What the simulator holds now")
        print_table(
            None,
            [f"{simulator.api_name} list", "Contacts"],
            [[item["title"], f"{item['members']:,}"] for item in simulator.lists_view()["lists"]],
        )
        console.print(
            f"   {contacts:,} contacts; {stats['total']:,} API requests in all, "
            f"{stats['throttled']:,} throttled (429)."
        )
    console.print(
        f"\nNext: `segsync --data-dir {directory} serve` opens the web UI on this data (its "
        "first-run page creates the first administrator). The demo's simulator stopped with the "
        "demo: to run the export again, start `segsync simulator` and point the connection at "
        "it with `segsync connections edit`. docs/quickstart.md takes you from here to your own "
        "data.",
        highlight=False,
    )
