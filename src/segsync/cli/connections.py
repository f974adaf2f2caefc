"""``segsync connections``: add, list, show, test, edit and remove destination connections.

The API key is never taken from the command line (it would land in the shell history and the
process list): ``--api-key-env VAR`` names an environment variable holding it, or
``--secret-ref`` stores a reference resolved at run time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand

from segsync.cli.context import service_context
from segsync.cli.lazy import lazy_module
from segsync.cli.output import (
    EXIT_FAILED,
    JsonOption,
    WideOption,
    console,
    print_json,
    print_table,
    wants_json,
)
from segsync.errors import InputError

if TYPE_CHECKING:
    from segsync.services import connections as connection_service
    from segsync.services.connections.views import ConnectionSummary
else:
    connection_service = lazy_module("segsync.services.connections")

connections_app = typer.Typer(
    name="connections",
    help="Connections to destination accounts (administrators only).",
    no_args_is_help=True,
)


class _AddCommand(TyperCommand):
    """``connections add`` and ``edit``: the help names the known destination types and the
    settings of their own (``--region`` for Ortto), asked of the registry only when the help is
    shown (the registry loads every destination and its HTTP client)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            if isinstance(param, TyperArgument) and param.name == "type_name":
                known = ", ".join(connection_service.listed_type_names())
                param.help = f"The destination type: {known}."
        own = [
            f"--{s.name.replace('_', '-')} {'|'.join(s.choices) or 'VALUE'} "
            f"({kind.display_name} only: {s.label}; {s.help})"
            for kind in connection_service.connection_types()
            for s in kind.own_settings()
        ]
        if own:
            self.epilog = "Settings of a type's own: " + "; ".join(own) + "."
        super().format_help(ctx, formatter)


_OWN_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Options beyond the declared ones are a type's own settings (``--region eu``), checked
against its capabilities by the connection service."""


def _own_settings(args: list[str]) -> dict[str, str]:
    """``["--region", "eu"]`` (or ``["--region=eu"]``) as ``{"region": "eu"}``."""
    found: dict[str, str] = {}
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if not word.startswith("--") or len(word) < 3:
            raise InputError(f"unexpected argument {word!r}")
        name, equals, value = word[2:].partition("=")
        if not equals:
            if not rest or rest[0].startswith("--"):
                raise InputError(f"{word} needs a value")
            value = rest.pop(0)
        found[name.replace("-", "_")] = value
    return found


ApiKeyEnvOption = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        metavar="VAR",
        help="Read the API key from this environment variable (never typed on the command line).",
    ),
]
SecretRefOption = Annotated[
    str | None,
    typer.Option(
        "--secret-ref",
        metavar="REF",
        help="Store a reference instead of the key: env:NAME or file:PATH, read at run time.",
    ),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option("--base-url", metavar="URL", help="API base URL (default: the type's)."),
]
RateLimitOption = Annotated[
    float | None,
    typer.Option(
        "--rate-limit", metavar="R", help="Requests per second (default: the type's, e.g. 5)."
    ),
]
ContractLimitOption = Annotated[
    int | None,
    typer.Option("--contract-limit", metavar="N", help="Most profiles sent (default 100,000)."),
]
ExportUserOption = Annotated[
    str | None,
    typer.Option(
        "--export-user",
        metavar="EMAIL",
        help="The administrator under whose authority scheduled runs act (default: you).",
    ),
]
AgreeOption = Annotated[
    bool,
    typer.Option("--agree", help="Agree to the data-privacy statement (required)."),
]


def _key_from_env(variable: str | None) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable, "")
    if not value.strip():
        raise InputError(f"--api-key-env {variable}: the environment variable is not set or empty")
    return value


def _print_details(details: connection_service.ConnectionDetails) -> None:
    rows = [
        ("Name", details.name),
        ("Type", details.type_display),
        ("Who may use it", details.who_may_use),
        ("API key", details.secret_hint if not details.secret_ref else "(secret reference)"),
        ("Secret reference", details.secret_ref or ""),
        ("Base URL", details.base_url),
        ("Rate limit", f"{details.rate_limit:g} requests/second"),
        ("Contract limit", f"{details.contract_limit:,} profiles"),
        ("Export user", details.export_user),
        (
            "Health",
            details.health + (f": {details.health_message}" if details.health_message else ""),
        ),
        (
            "Checked",
            details.health_checked_at.isoformat() if details.health_checked_at else "never",
        ),
        ("Created", f"{details.created_at.isoformat()} by {details.created_by}"),
        ("Exports", ", ".join(details.exports) if details.exports else "none"),
    ]
    if details.consent is not None:
        consent = details.consent
        rows.append(("Consent", f"{consent.agreed_by} at {consent.agreed_at.isoformat()}"))
    for label, value in rows:
        if value:
            console.print(f"[bold]{label}:[/] {value}", highlight=False)
    if details.consent is not None:
        console.print(f"[bold]Statement:[/] {details.consent.statement}", highlight=False)


def _print_one(connection: ConnectionSummary) -> None:
    if isinstance(connection, connection_service.ConnectionDetails):
        _print_details(connection)
    else:
        console.print(f"{connection.name} ({connection.type_display})", highlight=False)


@connections_app.command("add", cls=_AddCommand, context_settings=_OWN_SETTINGS)
def add_command(
    ctx: typer.Context,
    type_name: Annotated[str, typer.Argument(metavar="TYPE", help="The destination type.")],
    name: Annotated[str, typer.Option("--name", help="The display name.")],
    api_key_env: ApiKeyEnvOption = None,
    secret_ref: SecretRefOption = None,
    base_url: BaseUrlOption = None,
    rate_limit: RateLimitOption = None,
    contract_limit: ContractLimitOption = None,
    share: Annotated[
        bool,
        typer.Option("--share-with-contributors", help="Let contributors use it for exports."),
    ] = False,
    export_user: ExportUserOption = None,
    agree: AgreeOption = False,
    json_output: JsonOption = False,
) -> None:
    """Check the key against the destination (Connect), then save the connection. A type's
    own settings follow as options (``--region eu`` for Ortto)."""
    kind = connection_service.connection_type(type_name)  # an unknown TYPE names the known ones
    new = connection_service.NewConnection(
        name,
        type=kind.name,
        api_key=_key_from_env(api_key_env),
        secret_ref=secret_ref,
        base_url=base_url,
        rate_limit=rate_limit,
        contract_limit=contract_limit,
        share_with_contributors=share,
        export_user_email=export_user,
        settings=_own_settings(ctx.args),
    )
    with service_context(ctx) as services:
        details = connection_service.add_connection(services, new, agree=agree)
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    console.print(
        f"Connected and saved {details.type_display} connection {details.name!r} "
        f"(key {details.secret_hint}): {details.health_message}",
        highlight=False,
    )


@connections_app.command("list")
def list_command(
    ctx: typer.Context, wide: WideOption = False, json_output: JsonOption = False
) -> None:
    """List connections (others than administrators see only shared ones' name and type)."""
    with service_context(ctx) as services:
        found = connection_service.list_connections(services)
    if wants_json(ctx, json_output):
        print_json([connection.to_dict() for connection in found])
        return
    if not found:
        console.print("No connections.")
        return
    if all(isinstance(c, connection_service.ConnectionDetails) for c in found):
        rows = [
            [c.name, c.type_display, c.health, c.who_may_use, c.secret_hint, len(c.exports)]
            for c in found
            if isinstance(c, connection_service.ConnectionDetails)
        ]
        columns = ["name", "type", "health", "who may use", "key", "exports"]
        print_table("Connections", columns, rows, wide=wide)
    else:
        print_table(
            "Connections", ["name", "type"], [[c.name, c.type_display] for c in found], wide=wide
        )


@connections_app.command("show")
def show_command(ctx: typer.Context, name: str, json_output: JsonOption = False) -> None:
    """Show one connection's settings (never its key: only a masked hint)."""
    with service_context(ctx) as services:
        connection_id = connection_service.connection_id(services, name)
        connection = connection_service.show_connection(services, connection_id)
    if wants_json(ctx, json_output):
        print_json(connection.to_dict())
        return
    _print_one(connection)


@connections_app.command("test")
def check_command(ctx: typer.Context, name: str, json_output: JsonOption = False) -> None:
    """Connect again with the saved key; exit 1 if the check fails."""
    with service_context(ctx) as services:
        connection_id = connection_service.connection_id(services, name)
        result = connection_service.test_connection(services, connection_id)
    if wants_json(ctx, json_output):
        print_json(result.to_dict())
    else:
        console.print(f"{result.name}: {result.health} — {result.message}", highlight=False)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@connections_app.command("edit", cls=_AddCommand, context_settings=_OWN_SETTINGS)
def edit_command(
    ctx: typer.Context,
    name: str,
    new_name: Annotated[
        str | None, typer.Option("--name", metavar="NEW", help="A new display name.")
    ] = None,
    api_key_env: ApiKeyEnvOption = None,
    secret_ref: SecretRefOption = None,
    base_url: BaseUrlOption = None,
    rate_limit: RateLimitOption = None,
    contract_limit: ContractLimitOption = None,
    share: Annotated[
        bool | None,
        typer.Option(
            "--share-with-contributors/--administrators-only",
            help="Widen or narrow who may use it (exports stay as they are).",
            show_default=False,
        ),
    ] = None,
    export_user: ExportUserOption = None,
    agree: Annotated[
        bool,
        typer.Option("--agree", help="Agree again: needed with a new key, reference or base URL."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Change a connection's settings; a new key or base URL is checked before saving."""
    from segsync.services.connections import ConnectionEdit, or_unset

    edit = ConnectionEdit(
        name=or_unset(new_name),
        api_key=or_unset(_key_from_env(api_key_env)),
        secret_ref=or_unset(secret_ref),
        base_url=or_unset(base_url),
        rate_limit=or_unset(rate_limit),
        contract_limit=or_unset(contract_limit),
        share_with_contributors=or_unset(share),
        export_user_email=or_unset(export_user),
        settings=_own_settings(ctx.args),
    )
    with service_context(ctx) as services:
        connection_id = connection_service.connection_id(services, name)
        details = connection_service.edit_connection(services, connection_id, edit, agree=agree)
    if wants_json(ctx, json_output):
        print_json(details.to_dict())
        return
    console.print(f"Saved connection {details.name!r}.", highlight=False)


@connections_app.command("remove")
def remove_command(ctx: typer.Context, name: str) -> None:
    """Remove a connection (refused while exports use it)."""
    with service_context(ctx) as services:
        connection_service.remove_connection(
            services, connection_service.connection_id(services, name)
        )
    console.print(f"Removed connection {name!r}.", highlight=False)
