"""Every CLI command and every setting is documented (docs/cli.md, docs/settings.md)."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main
from typer.core import TyperGroup

from segsync.cli import app
from segsync.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _command_paths(group: TyperGroup, prefix: str) -> list[str]:
    """Every command below ``group``, resolved the way the CLI resolves them (the top level
    builds its commands on first use, so ``group.commands`` alone may be empty)."""
    paths: list[str] = []
    context = typer.Context(group)
    for name in sorted(group.list_commands(context)):
        command = group.get_command(context, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        if isinstance(command, TyperGroup):
            paths.extend(_command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_cli_command_is_documented_in_cli_md() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    text = (DOCS / "cli.md").read_text()
    headings = set(re.findall(r"^#+ `([^`]+)`", text, flags=re.MULTILINE))
    missing = [
        path
        for path in _command_paths(root, "segsync")
        if not any(h == path or h.startswith(path + " ") for h in headings)
    ]
    assert not missing, f"commands without a heading in docs/cli.md: {missing}"


def test_every_setting_is_documented_in_settings_md() -> None:
    text = (DOCS / "settings.md").read_text()
    missing = [
        f"SEGSYNC_{name.upper()}"
        for name in Settings.model_fields
        if f"`SEGSYNC_{name.upper()}`" not in text
    ]
    assert not missing, f"settings missing from docs/settings.md: {missing}"
