"""What every command shares: the global state, JSON or human output, exit codes."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from segsync.errors import FatalError, InputError, PermissionDenied, SegsyncError

if TYPE_CHECKING:
    from segsync.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

console = Console(emoji=False, highlight=False)
err_console = Console(stderr=True, emoji=False, highlight=False)


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


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[Text("" if cell is None else str(cell)) for cell in row])
    console.print(table)


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
    line = Text("error: ", style="bold red")
    line.append(err.message)
    err_console.print(line)
    return exit_code_for(err)
