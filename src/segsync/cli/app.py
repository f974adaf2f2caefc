"""The root ``segsync`` command: global options and the command groups."""

from __future__ import annotations

import atexit
import gc
import importlib
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer
from typer.core import TyperGroup

from segsync import __version__
from segsync.cli.output import CliState, fresh_consoles, report_error
from segsync.errors import SegsyncError


class _Lazy(NamedTuple):
    """Where a top-level command lives: the module imported when it is first needed, and its
    Typer app (a group) or function (a command). ``also`` names the modules that add commands to
    that app from elsewhere (``exports run`` lives beside the ``runs`` commands)."""

    module: str
    attribute: str
    also: tuple[str, ...] = ()


COMMANDS: dict[str, _Lazy] = {
    "simulator": _Lazy("segsync.cli.simulator", "simulator_command"),
    "serve": _Lazy("segsync.cli.serve", "serve_command"),
    "demo": _Lazy("segsync.cli.demo", "demo_command"),
    "init": _Lazy("segsync.cli.init", "init_command"),
    "audit": _Lazy("segsync.cli.audit", "audit_command"),
    "status": _Lazy("segsync.cli.status", "status_command"),
    "worker": _Lazy("segsync.cli.worker", "worker_command"),
    "explain": _Lazy("segsync.cli.explain", "explain_command"),
    "forget": _Lazy("segsync.cli.forget", "forget_command"),
    "profiles": _Lazy("segsync.cli.profiles", "profiles_app"),
    "segments": _Lazy("segsync.cli.segments", "segments_app"),
    "connections": _Lazy("segsync.cli.connections", "connections_app"),
    "users": _Lazy("segsync.cli.users", "users_app"),
    "tokens": _Lazy("segsync.cli.users", "tokens_app"),
    "secrets": _Lazy("segsync.cli.secrets", "secrets_app"),
    "exports": _Lazy("segsync.cli.exports", "exports_app", also=("segsync.cli.runs",)),
    "runs": _Lazy("segsync.cli.runs", "runs_app", also=("segsync.cli.run_guard",)),
    "schedule": _Lazy("segsync.cli.schedule", "schedule_app"),
    "erasures": _Lazy("segsync.cli.forget", "erasures_app"),
    "notifications": _Lazy("segsync.cli.forget", "notifications_app"),
}
"""The top-level commands in the order ``segsync --help`` lists them (commands, then groups,
as Typer orders them). Each is imported and
built only when it runs or its help is shown, so ``segsync runs list`` loads the ``runs``
commands and nothing of ``profiles`` or ``serve`` (docs/design.md, "Start-up")."""


def build_command(name: str, *, summary: bool = False) -> Any:
    """The click command (or group) for the top-level command ``name``, built the way
    ``Typer.add_typer``/``Typer.command`` on the root app would build it.

    ``summary``: a group is built without its commands — its name, help and panel only, what
    ``segsync --help`` lists (building a command reads its whole signature)."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    for module in entry.also:
        importlib.import_module(module)
    holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    holder.callback()(_no_options)  # a group, even with one command in it
    if isinstance(target, typer.Typer):
        if summary:
            shallow = typer.Typer()
            shallow.info = target.info
            shallow.registered_callback = target.registered_callback
            target = shallow
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    group = typer.main.get_group(holder)
    return group.commands[name]


def _no_options() -> None:
    """The stand-in group that ``build_command`` takes its one command from."""


class LazyCommands(MutableMapping[str, Any]):
    """The root group's commands: every name of ``COMMANDS``, each built when first read. While
    ``summaries_only`` is set (``segsync --help`` being drawn) a group is read as its summary and
    not kept."""

    def __init__(self) -> None:
        self.built: dict[str, Any] = {}
        self.summaries_only = False

    def __getitem__(self, name: str) -> Any:
        if name in self.built:
            return self.built[name]
        if name not in COMMANDS:
            raise KeyError(name)
        if self.summaries_only:
            return build_command(name, summary=True)
        command = self.built[name] = build_command(name)
        return command

    def __setitem__(self, name: str, command: Any) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.built[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self.built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for name in self.built if name not in COMMANDS)


def readable_help(command: Any, ctx: Any) -> None:
    """Help that reads as words, in every command: a flag shows no type (Typer's default is
    ``<bool>``) and a text option or argument shows its name (``--name NAME``, not
    ``--name <str>``).
    Duck-typed: Typer bundles its own copy of click's classes. ``get_params`` includes the
    ``--help`` option, which each command makes once and keeps."""
    for param in command.get_params(ctx):
        if param.param_type_name == "argument" and _type_name(param) == "str":
            param.display_type_rich = _no_type  # its name (NAME, EMAIL) says it all
        if param.metavar is not None:
            continue
        if param.param_type_name == "option" and param.is_flag:
            param.metavar = ""
        elif _type_name(param) == "str" and param.name:
            param.metavar = param.name.upper()
    for name in _built_commands(command):
        readable_help(command.commands[name], ctx)


def _no_type(ctx: Any) -> None:
    return None


def _type_name(param: Any) -> str | None:
    bare_type = getattr(param, "bare_type", None)  # how Typer names a parameter's type
    return str(bare_type()) if callable(bare_type) else None


def _built_commands(command: Any) -> list[str]:
    """The subcommands of ``command`` already built (the root's are built on first use:
    reading the others would build them all)."""
    commands = getattr(command, "commands", {})
    if isinstance(commands, LazyCommands):
        return list(commands.built)
    return list(commands)


class SegsyncGroup(TyperGroup):
    """The root group: its commands are built on first use (``LazyCommands``), each with
    readable help (:func:`readable_help`), and a ``SegsyncError`` raised by any command becomes
    a message and an exit code."""

    _readable = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.lazy = LazyCommands()
        for name, command in self.commands.items():
            self.lazy[name] = command
        self.commands = self.lazy

    def get_params(self, ctx: Any) -> Any:
        if not self._readable:
            self._readable = True
            readable_help(self, ctx)  # the root's options, and the commands built so far
        return super().get_params(ctx)

    def get_command(self, ctx: Any, name: str) -> Any:
        fresh = name not in self.lazy.built
        command = super().get_command(ctx, name)
        if command is not None and fresh and name in self.lazy.built:
            readable_help(command, ctx)
        return command

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.lazy)  # the names only: Typer's own reads every command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.lazy.summaries_only = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.lazy.summaries_only = False

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
    add_completion=True,
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
            metavar="DIR",
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
    # The settings are read when a command first needs them (CliState.settings): help screens
    # below this one run this callback too.
    ctx.obj = CliState(data_dir=data_dir, as_user=as_user, json=json_output)
    fresh_consoles()


def main() -> None:
    """The ``segsync`` command.

    At exit, Python takes the modules apart and runs full garbage collections as it goes; with
    Ibis, DuckDB, pyarrow and SQLAlchemy loaded each of them walked some 180,000 objects, and a
    rerun of bench/export.py's export spent 0.50–0.72 s between its last exit handler and its
    end. So everything is set apart from the collector (``gc.freeze``) at exit, after the exit
    handlers registered while the command ran (those registered at import, such as logging's
    flush, run after it and need no collector; the commands close their databases themselves):
    shutting down then took 0.06 s. Objects are still freed as their last reference goes; only
    reference cycles are left for the operating system to reclaim with the process."""
    atexit.register(gc.freeze)  # after the handlers registered from now on, before earlier ones
    app()
