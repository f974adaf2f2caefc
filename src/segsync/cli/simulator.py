"""``segsync simulator``: serve the local Autopilot (or, ``--api ortto``, Ortto) simulator
until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from segsync.errors import InputError
from segsync.simulator.keys import DEFAULT_API_KEY

if TYPE_CHECKING:
    from segsync.simulator.config import SimulatorConfig


def config_from_options(
    *,
    api_keys: list[str] | None = None,
    rate_limit: float = 5.0,
    latency_ms: float = 0.0,
    state_file: Path | None = None,
    retry_after: float | None = None,
    reject_emails: str | None = None,
    fail_next: int = 0,
    timeout_next_writes: int = 0,
    throttle_next: int = 0,
    hold_after_writes: int | None = None,
    revoked_keys: list[str] | None = None,
    seed: int | None = None,
    api: str = "autopilot",
) -> SimulatorConfig:
    """Turn the command's options into a :class:`SimulatorConfig` (``InputError`` if invalid)."""
    from segsync.simulator.config import SimulatorConfig

    try:
        return SimulatorConfig(
            api_keys=list(api_keys) if api_keys else [DEFAULT_API_KEY],
            rate_limit=rate_limit,
            latency_ms=latency_ms,
            state_file=state_file,
            retry_after=retry_after,
            reject_email_pattern=reject_emails,
            fail_next=fail_next,
            timeout_next_writes=timeout_next_writes,
            throttle_next=throttle_next,
            hold_after_writes=hold_after_writes,
            revoked_keys=list(revoked_keys or []),
            seed=seed,
            api=api.strip().lower(),
        )
    except ValueError as err:
        raise InputError(f"simulator options: {err}") from err


def simulator_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on.")] = 8765,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            metavar="KEY",
            help=f"An accepted API key; repeat for several. Default: {DEFAULT_API_KEY}.",
        ),
    ] = None,
    rate_limit: Annotated[
        float,
        typer.Option("--rate-limit", metavar="R", help="Requests per second per key; 0 = off."),
    ] = 5.0,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", metavar="L", help="Added latency per request.")
    ] = 0.0,
    state_file: Annotated[
        Path | None,
        typer.Option("--state-file", metavar="F", help="Keep the state in this JSON file."),
    ] = None,
    retry_after: Annotated[
        float | None,
        typer.Option("--retry-after", metavar="S", help="Add Retry-After: S to every 429."),
    ] = None,
    reject_emails: Annotated[
        str | None,
        typer.Option("--reject-emails", metavar="REGEX", help="Answer 400 for matching emails."),
    ] = None,
    fail_next: Annotated[
        int, typer.Option("--fail-next", metavar="N", help="Answer the next N requests with 500.")
    ] = 0,
    timeout_next_writes: Annotated[
        int,
        typer.Option(
            "--timeout-next-writes", metavar="N", help="Commit the next N writes, answer 408."
        ),
    ] = 0,
    throttle_next: Annotated[
        int,
        typer.Option("--throttle-next", metavar="N", help="Answer the next N requests with 429."),
    ] = 0,
    hold_after_writes: Annotated[
        int | None,
        typer.Option(
            "--hold-after-writes",
            metavar="N",
            help="Hold every request after N writes, until POST /_sim/faults releases them.",
        ),
    ] = None,
    revoke_key: Annotated[
        list[str] | None,
        typer.Option("--revoke-key", metavar="KEY", help="Answer 401 for this key; repeatable."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Make contact and list ids reproducible.")
    ] = None,
    api: Annotated[
        str,
        typer.Option("--api", metavar="API", help="The API to simulate: autopilot or ortto."),
    ] = "autopilot",
) -> None:
    """Run a local Autopilot (or Ortto) API simulator (see docs/simulator.md) until Ctrl-C."""
    from segsync.simulator import create_simulator, serve

    config = config_from_options(
        api_keys=api_key,
        rate_limit=rate_limit,
        latency_ms=latency_ms,
        state_file=state_file,
        retry_after=retry_after,
        reject_emails=reject_emails,
        fail_next=fail_next,
        timeout_next_writes=timeout_next_writes,
        throttle_next=throttle_next,
        hold_after_writes=hold_after_writes,
        revoked_keys=revoke_key,
        seed=seed,
        api=api,
    )
    try:
        simulator = create_simulator(config)
    except ValueError as err:
        raise InputError(str(err)) from err
    limit = "off" if config.rate_limit == 0 else f"{config.rate_limit:g} r/s per key"
    typer.echo(
        f"{simulator.api_name} simulator on http://{host}:{port}/v1 (inspection: /_sim/stats)"
    )
    typer.echo(f"API key(s): {', '.join(config.api_keys)}   rate limit: {limit}")
    if config.state_file is not None:
        typer.echo(f"State file: {config.state_file}")
    typer.echo("Press Ctrl-C to stop.")
    serve(simulator, host, port, log_level="info")
