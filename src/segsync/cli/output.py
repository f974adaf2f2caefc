"""What every command shares: the global state, JSON or human output, exit codes."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from segsync.errors import FatalError, InputError, PermissionDenied, SegsyncError

if TYPE_CHECKING:
    from rich.console import Console

    from segsync.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


class _ConsoleOnFirstUse:
    """A rich ``Console`` made when it is first used: a command that prints JSON (a run's
    ``--json``, the bench's) never imports rich, some 0.04 s of its start (docs/design.md,
    "Start-up")."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def forget(self) -> None:
        self._console = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)


_CONSOLES = (
    _ConsoleOnFirstUse(emoji=False, highlight=False),
    _ConsoleOnFirstUse(stderr=True, emoji=False, highlight=False),
)
console = cast("Console", _CONSOLES[0])
err_console = cast("Console", _CONSOLES[1])


def fresh_consoles() -> None:
    """Let each command make its consoles anew, from its own environment (rich fixes a console's
    width from ``COLUMNS`` when it is made): a process runs one command, tests many."""
    for stand_in in _CONSOLES:
        stand_in.forget()


def rich_console(console: Console) -> Console:
    """The rich ``Console`` itself, for what takes one as an argument (a ``Progress``): such
    code uses it as a context manager too, which the stand-in is not."""
    return console.made() if isinstance(console, _ConsoleOnFirstUse) else console


@dataclass
class CliState:
    """Global options, parsed once by the root callback and kept on ``ctx.obj``.

    The settings are read (and logging set up at their level) on first use, not by the root
    callback: ``segsync runs --help`` runs that callback too, and reading the settings costs
    pydantic-settings and the environment (docs/design.md, "Start-up")."""

    data_dir: Path | None = None
    as_user: str | None = None
    json: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is not None:
            return self._settings
        from segsync.settings import Settings

        settings = Settings() if self.data_dir is None else Settings(data_dir=self.data_dir)
        configure_logging(settings.log_level)
        self._settings = settings
        return settings


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    return flag or state(ctx).json


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, indent=2, ensure_ascii=False) + "\n")


WideOption = Annotated[
    bool,
    typer.Option("--wide", help="Show every column (by default a table keeps to the terminal)."),
]

WRAP_AT = 14
"""A text column may wrap to this width before columns are left out (a word is never cut)."""


def print_table(
    title: str | None,
    columns: list[str],
    rows: list[list[Any]],
    *,
    wide: bool = True,
    keep: int = 1,
) -> None:
    """A table whose cells are shown as typed (no markup); long values wrap. A list command
    passes its ``--wide`` option as ``wide``: without it the table keeps to the console's
    width, its columns being in order of importance; those at the end that do not fit are
    left out (never the first ``keep``), with a line naming them and ``--wide``. Other tables
    (``wide`` by default) show every column."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    shown = list(range(len(columns)))
    if not wide:
        shown = fitting_columns(columns, cells, width=console.width, keep=keep)
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True
    )
    for index in shown:
        table.add_column(columns[index], overflow="fold")
    for row in cells:
        table.add_row(*[Text(row[index]) for index in shown])
    console.print(table)
    hidden = [column for index, column in enumerate(columns) if index not in shown]
    if hidden:
        console.print(
            Text(f"(left out to fit the terminal: {', '.join(hidden)}; --wide shows them)"),
            style="dim",
        )


def fitting_columns(
    columns: list[str], cells: list[list[str]], *, width: int, keep: int = 1
) -> list[int]:
    """The indexes of the leading columns that fit ``width`` (at least the first ``keep``):
    each needs its header, and its longest value up to :data:`WRAP_AT` (text wraps there, at
    words, so never less than its longest word); columns are two characters apart."""
    needs = []
    for index, header in enumerate(columns):
        values = [row[index] for row in cells]
        longest = max((len(value) for value in values), default=0)
        word = max((len(part) for value in values for part in value.split()), default=0)
        needs.append(max(len(header), min(longest, max(WRAP_AT, word))))
    shown: list[int] = []
    used = 0
    for index, need in enumerate(needs):
        extra = need + (2 if shown else 0)
        if index >= keep and used + extra > width:
            break
        shown.append(index)
        used += extra
    return shown


# Third-party loggers that would write request URLs, which may hold an email (P5).
_QUIET_LOGGERS = ("httpx", "httpcore", "uvicorn.access")


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``; HTTP client loggers stay at WARNING so no URL (which can
    name a contact's email) reaches the log. segsync's own loggers mask emails themselves."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def exit_code_for(err: SegsyncError) -> int:
    if isinstance(err, InputError | PermissionDenied):
        return EXIT_USAGE
    if isinstance(err, FatalError):
        return EXIT_FAILED
    return EXIT_FAILED


def report_error(err: SegsyncError) -> int:
    from rich.text import Text

    line = Text("error: ", style="bold red")
    line.append(err.message)
    err_console.print(line)
    return exit_code_for(err)
