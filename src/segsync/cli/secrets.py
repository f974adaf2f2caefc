"""``segsync secrets rotate``: re-encrypt every stored API key with a new key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, console, print_json, wants_json

if TYPE_CHECKING:
    from segsync.services.privacy import secrets as secret_service
else:
    secret_service = lazy_module("segsync.services.privacy.secrets")

secrets_app = typer.Typer(
    name="secrets",
    help="The key that encrypts API keys at rest (administrators only).",
    no_args_is_help=True,
)


@secrets_app.command("rotate")
def rotate_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Re-encrypt every stored API key with a new secret key (see docs/security.md)."""
    with service_context(ctx) as services:
        report = secret_service.rotate(services)
    if wants_json(ctx, json_output):
        print_json(
            {"connections": report.connections, "source": report.source, "next": report.next_step}
        )
        return
    console.print(
        f"Re-encrypted {report.connections} stored key(s) with a new key ({report.source}).",
        highlight=False,
    )
    if report.next_step:
        console.print(f"Next: {report.next_step}.", highlight=False)
