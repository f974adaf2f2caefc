"""The ``segsync`` command line (Typer)."""

from __future__ import annotations

from segsync.cli.app import app, main

__all__ = ["app", "main"]
