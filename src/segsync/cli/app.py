"""The root ``segsync`` command: global options and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from segsync import __version__
from segsync.cli.audit import audit_command
from segsync.cli.connections import connections_app
from segsync.cli.demo import demo_command
from segsync.cli.exports import exports_app
from segsync.cli.forget import erasures_app, forget_command, notifications_app
from segsync.cli.init import init_command
from segsync.cli.output import CliState, configure_logging, report_error
from segsync.cli.profiles import profiles_app
from segsync.cli.run_guard import approve_command as approve_command  # adds `runs approve`
from segsync.cli.runs import runs_app
from segsync.cli.schedule import schedule_app
from segsync.cli.secrets import secrets_app
from segsync.cli.segments import segments_app
from segsync.cli.serve import serve_command
from segsync.cli.simulator import simulator_command
from segsync.cli.status import status_command
from segsync.cli.users import tokens_app, users_app
from segsync.cli.verify import verify_command as verify_command  # adds `exports verify`
from segsync.cli.worker import worker_command
from segsync.errors import SegsyncError


class SegsyncGroup(TyperGroup):
    """Turns a ``SegsyncError`` raised by any command into a message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SegsyncError as err:
            raise typer.Exit(report_error(err)) from None


app = typer.Typer(
    name="segsync",
    cls=SegsyncGroup,
    help="Export segments of unified customer profiles to Autopilot.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segsync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="SEGSYNC_DATA_DIR",
            help="Where the metadata DB, the profile DuckDB file and the secret key file live.",
        ),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option("--as", metavar="EMAIL", help="Act as this user (their permissions apply)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print machine-readable JSON (also per command).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """segsync: the right people on the right Autopilot lists, every morning."""
    # Imported here, not at the top: `segsync --help` and `--version` never get this far.
    from segsync.settings import Settings

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    configure_logging(settings.log_level)
    ctx.obj = CliState(settings=settings, as_user=as_user, json=json_output)


app.command("simulator")(simulator_command)
app.command("serve")(serve_command)
app.command("demo")(demo_command)
app.command("init")(init_command)
app.add_typer(profiles_app, name="profiles")
app.add_typer(segments_app, name="segments")
app.add_typer(connections_app, name="connections")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(secrets_app, name="secrets")
app.command("audit")(audit_command)
app.add_typer(exports_app, name="exports")
app.add_typer(runs_app, name="runs")
app.add_typer(schedule_app, name="schedule")
app.command("status")(status_command)
app.command("worker")(worker_command)
app.command("forget")(forget_command)
app.add_typer(erasures_app, name="erasures")
app.add_typer(notifications_app, name="notifications")


def main() -> None:
    app()
