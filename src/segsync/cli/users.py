"""``segsync users`` (administrators manage users and roles) and ``segsync tokens`` (a user's
own API tokens). Passwords are read from an environment variable, never from the command line."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import JsonOption, WideOption, console, print_json, print_table, wants_json
from segsync.errors import InputError

if TYPE_CHECKING:
    from segsync.services import users as user_service
else:
    user_service = lazy_module("segsync.services.users")

users_app = typer.Typer(
    name="users",
    help="Users and their roles: administrator, contributor, viewer (administrators only).",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    name="tokens",
    help="Your API tokens for /api/v1 (run with --as EMAIL: tokens belong to users).",
    no_args_is_help=True,
)

PasswordEnvOption = Annotated[
    str | None,
    typer.Option(
        "--password-env",
        metavar="VAR",
        help="Read the password (12+ characters) from this environment variable.",
    ),
]


def password_from_env(variable: str | None, option: str = "--password-env") -> str | None:
    """The password held by ``variable`` (``None`` if no variable was named)."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise InputError(f"{option} {variable}: the environment variable is not set or empty")
    return value


@users_app.command("add")
def add_command(
    ctx: typer.Context,
    email: str,
    role: Annotated[str, typer.Option("--role", help="administrator, contributor or viewer.")],
    password_env: PasswordEnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a user with a role (and a password for the web UI)."""
    with service_context(ctx) as services:
        user = user_service.add_user(services, email, role, password_from_env(password_env))
    if wants_json(ctx, json_output):
        print_json(user.to_dict())
        return
    console.print(f"Added {user.email} as {user.role.value}.", highlight=False)


@users_app.command("list")
def list_command(
    ctx: typer.Context, wide: WideOption = False, json_output: JsonOption = False
) -> None:
    """List users and their roles."""
    with service_context(ctx) as services:
        users = user_service.list_users(services)
    if wants_json(ctx, json_output):
        print_json([user.to_dict() for user in users])
        return
    rows = [
        [
            u.email,
            u.role.value,
            "yes" if u.has_password else "no",
            u.created_at.isoformat(timespec="seconds"),
        ]
        for u in users
    ]
    print_table("Users", ["email", "role", "password", "created"], rows, wide=wide)


@users_app.command("set-role")
def set_role_command(
    ctx: typer.Context, email: str, role: str, json_output: JsonOption = False
) -> None:
    """Change a user's role (the last administrator cannot be demoted)."""
    with service_context(ctx) as services:
        user = user_service.set_role(services, email, role)
    if wants_json(ctx, json_output):
        print_json(user.to_dict())
        return
    console.print(f"{user.email} is now {user.role.value}.", highlight=False)


@users_app.command("set-password")
def set_password_command(
    ctx: typer.Context,
    email: str,
    password_env: Annotated[
        str,
        typer.Option("--password-env", metavar="VAR", help="The variable holding the password."),
    ],
) -> None:
    """Set a user's password (administrators, or the user themselves with --as)."""
    password = password_from_env(password_env)
    assert password is not None
    with service_context(ctx) as services:
        user_service.set_password(services, email, password)
    console.print(f"Password set for {email.strip().lower()}.", highlight=False)


@users_app.command("remove")
def remove_command(ctx: typer.Context, email: str) -> None:
    """Remove a user (the last administrator cannot be removed); their tokens are revoked."""
    with service_context(ctx) as services:
        user_service.remove_user(services, email)
    console.print(f"Removed {email.strip().lower()}.", highlight=False)


@tokens_app.command("create")
def token_create_command(ctx: typer.Context, name: str, json_output: JsonOption = False) -> None:
    """Create an API token; it is printed once, keep it safe."""
    with service_context(ctx) as services:
        created = user_service.create_token(services, name)
    if wants_json(ctx, json_output):
        print_json({"id": created.id, "name": created.name, "token": created.token})
        return
    console.print(f"Token {created.id} ({created.name}) — shown only now:", highlight=False)
    console.print(created.token, highlight=False, soft_wrap=True)


@tokens_app.command("list")
def token_list_command(
    ctx: typer.Context, wide: WideOption = False, json_output: JsonOption = False
) -> None:
    """List your API tokens (masked)."""
    with service_context(ctx) as services:
        tokens = user_service.list_tokens(services)
    if wants_json(ctx, json_output):
        print_json(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "hint": t.hint,
                    "created_at": t.created_at,
                    "last_used_at": t.last_used_at,
                    "revoked_at": t.revoked_at,
                }
                for t in tokens
            ]
        )
        return
    rows = [
        [t.id, t.name, t.hint, t.created_at.isoformat(), t.last_used_at, t.revoked_at]
        for t in tokens
    ]
    columns = ["id", "name", "token", "created", "last used", "revoked"]
    print_table("API tokens", columns, rows, wide=wide)


@tokens_app.command("revoke")
def token_revoke_command(
    ctx: typer.Context, token_id: Annotated[int, typer.Argument(metavar="ID")]
) -> None:
    """Revoke an API token by its id."""
    with service_context(ctx) as services:
        revoked = user_service.revoke_token(services, token_id)
    console.print(f"Revoked token {revoked.id} ({revoked.name}).", highlight=False)
