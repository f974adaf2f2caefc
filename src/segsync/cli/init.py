"""``segsync init``: create the data dir, the metadata DB, the secret key and the first
administrator."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from segsync.cli.output import JsonOption, console, print_json, state, wants_json
from segsync.cli.users import password_from_env
from segsync.errors import InputError


def init_command(
    ctx: typer.Context,
    admin_email: Annotated[
        str | None,
        typer.Option("--admin-email", metavar="E", help="Create this first administrator."),
    ] = None,
    admin_password_env: Annotated[
        str | None,
        typer.Option(
            "--admin-password-env",
            metavar="VAR",
            help="Read the administrator's password (12+ characters) from this variable.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create the data dir, the metadata DB (applying every migration), the secret key file and
    optionally the first administrator (safe to re-run)."""
    from segsync.services.context import initialise, open_context
    from segsync.services.privacy.secrets import ensure_key
    from segsync.services.users import init_admin

    if admin_password_env is not None and admin_email is None:
        raise InputError("--admin-password-env needs --admin-email")
    settings = state(ctx).settings
    password = password_from_env(admin_password_env, "--admin-password-env")
    report = initialise(settings)
    key_source = ensure_key(settings)
    admin: dict[str, Any] | None = None
    if admin_email is not None:
        with open_context(settings) as services:
            user, created = init_admin(services, admin_email, password)
        admin = {"email": user.email, "created": created}
    if wants_json(ctx, json_output):
        print_json(
            {
                "data_dir": report.data_dir,
                "database": report.database,
                "revision": report.revision,
                "secret_key": key_source,
                "admin": admin,
            }
        )
        return
    console.print(f"Data dir: {report.data_dir}", highlight=False, soft_wrap=True)
    console.print(
        f"Metadata DB: {report.database} (schema {report.revision or 'empty'})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"Secret key: {key_source}", highlight=False, soft_wrap=True)
    if admin is not None:
        verb = "Created" if admin["created"] else "Already there:"
        console.print(f"{verb} administrator {admin['email']}", highlight=False)
